"""Custom resources (Istio, Linkerd, Gateway API, Flagger) against the pinned CRDs' openAPIV3Schema, strictly.

The CRD schemas are Kubernetes "structural schemas", not plain JSON Schema. We convert them the way the API server
reads them: a field that no `properties` declares is an error (what `kubectl apply --validate=strict` reports)
unless the node says `x-kubernetes-preserve-unknown-fields`; `x-kubernetes-int-or-string` accepts an integer or a
string; `nullable` accepts null. CEL rules (`x-kubernetes-validations`) need a real API server and are not checked.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from .crd_pins import load_pins
from .model import Document, Problem, load_all


@dataclass
class CrdVersion:
    name: str
    served: bool
    deprecated: bool
    schema: dict


@dataclass
class Crd:
    group: str
    kind: str
    source: str
    versions: dict[str, CrdVersion] = field(default_factory=dict)


@dataclass
class CrdSet:
    folder: Path
    by_group_kind: dict[tuple[str, str], Crd] = field(default_factory=dict)

    @property
    def groups(self) -> set[str]:
        return {group for group, _ in self.by_group_kind}

    def kinds_in(self, group: str) -> list[str]:
        return sorted(kind for g, kind in self.by_group_kind if g == group)


def load(folder: Path) -> CrdSet:
    """The CRDs of the pinned files in `folder` (verify the folder first: crd_pins.verified_folder)."""
    return _load_cached(str(folder))


@lru_cache(maxsize=None)
def _load_cached(folder_str: str) -> CrdSet:
    folder = Path(folder_str)
    crds = CrdSet(folder)
    for pin in load_pins().files:  # only the pinned files: nothing else in the folder is read
        path = folder / pin.path
        text = path.read_text(encoding="utf-8")
        objs = [json.loads(text)] if path.suffix == ".json" else load_all(text)
        for obj in objs:
            if not isinstance(obj, dict) or obj.get("kind") != "CustomResourceDefinition":
                continue
            spec = obj["spec"]
            crd = Crd(spec["group"], spec["names"]["kind"], pin.path)
            for version in spec.get("versions", []):
                schema = (version.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema") or {}
                crd.versions[version["name"]] = CrdVersion(
                    version["name"], bool(version.get("served")), bool(version.get("deprecated")), schema)
            crds.by_group_kind[(crd.group, crd.kind)] = crd
    return crds


# -- structural schema -> JSON Schema -------------------------------------------------------------------------------
_VENDOR_KEYS = {"nullable", "default", "description", "example", "externalDocs", "format"}


def to_json_schema(node: Any, in_junctor: bool = False) -> Any:
    """Convert one structural-schema node; `in_junctor` nodes (under allOf/anyOf/oneOf/not) only add constraints,
    so they never close an object (the API server prunes by the outer `properties` alone)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            out[key] = {name: to_json_schema(sub, in_junctor) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = to_json_schema(value, in_junctor)
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = to_json_schema(value, in_junctor)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(sub, True) for sub in value]
        elif key == "not":
            out[key] = to_json_schema(value, True)
        elif key.startswith("x-kubernetes-") or key in _VENDOR_KEYS:
            continue
        else:
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if node.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = types + ["null"]
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        for name in ("apiVersion", "kind", "metadata"):
            props.setdefault(name, {})
    closes = (
        not in_junctor
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in node
        and ("properties" in node or node.get("type") == "object")
    )
    if closes:
        out["additionalProperties"] = False
    return out


@lru_cache(maxsize=None)
def _object_meta_fields() -> frozenset[str]:
    """ObjectMeta's field names, taken from kubernetes-validate's schema for the oldest version we target."""
    from kubernetes_validate import utils as kv

    from .core_schemas import OLDEST_SUPPORTED, schema_dir

    defs = kv.schema_contents(f"kubernetes-json-schema/{schema_dir(OLDEST_SUPPORTED)}/_definitions.json", OLDEST_SUPPORTED)
    return frozenset(defs["$defs"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"])


def object_meta_schema() -> dict:
    string_map = {"type": "object", "additionalProperties": {"type": "string"}}
    props: dict[str, Any] = {name: {} for name in _object_meta_fields()}
    props.update(name={"type": "string"}, namespace={"type": "string"}, labels=string_map, annotations=string_map)
    return {"type": "object", "properties": props, "additionalProperties": False}


@lru_cache(maxsize=None)
def _validator(folder_str: str, group: str, kind: str, version: str):
    crd = _load_cached(folder_str).by_group_kind[(group, kind)]
    schema = to_json_schema(crd.versions[version].schema)
    # The API server validates metadata as ObjectMeta whatever the CRD says; CRDs only write `type: object`.
    # apiVersion and kind are always allowed at the top, declared or not.
    props = schema.setdefault("properties", {})
    props["metadata"] = object_meta_schema()
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    return jsonschema.validators.Draft202012Validator(schema)


def check(docs: list[Document], crds: CrdSet, partial: bool = False) -> list[Problem]:
    """`partial`: kustomize patches, which may leave out required fields."""
    problems = []
    for doc in docs:
        group, _, version = doc.api_version.rpartition("/")
        crd = crds.by_group_kind.get((group, doc.kind))
        if crd is None:
            problems.append(doc.problem(
                f"unknown kind {doc.kind!r} in group {group!r}: the pinned CRDs define {', '.join(crds.kinds_in(group))}"))
            continue
        crd_version = crd.versions.get(version)
        if crd_version is None or not crd_version.served:
            served = ", ".join(v.name for v in crd.versions.values() if v.served)
            problems.append(doc.problem(
                f"apiVersion {doc.api_version!r} is not served by the pinned CRD ({crd.source}); served: {served}"))
            continue
        if crd_version.deprecated:
            problems.append(doc.problem(f"apiVersion {doc.api_version!r} is deprecated in the pinned CRD ({crd.source})"))
        for error in _validator(str(crds.folder), group, doc.kind, version).iter_errors(doc.obj):
            if partial and error.validator == "required":
                continue
            path = ".".join(str(p) for p in error.absolute_path) or "(top)"
            message = " ".join(error.message.split())
            if len(message) > 300:
                message = message[:297] + "..."
            problems.append(doc.problem(f"{path}: {message} (CRD {crd.source} {version})"))
    return problems
