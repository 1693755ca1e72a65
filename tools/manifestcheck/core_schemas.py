"""Core Kubernetes kinds against kubernetes-validate's strict schemas, for 1.31 and the newest version it knows.

kubernetes-validate's own `validate()` reloads a 1.3 MB definitions file per document and stops at the first error;
we reuse its schema files and loader but build each validator once and report every error.
"""
from __future__ import annotations

import re
from functools import lru_cache

import jsonschema
from kubernetes_validate import utils as kv
from referencing import Registry, Resource

from .model import Document, Problem

OLDEST_SUPPORTED = "1.31"  # the oldest Kubernetes the lab supports (kind/minikube defaults are newer)


def target_versions() -> list[str]:
    newest = kv.major_minor(kv.latest_version())
    return sorted({OLDEST_SUPPORTED, newest}, key=lambda v: tuple(int(p) for p in v.split(".")))


@lru_cache(maxsize=None)
def schema_dir(version: str) -> str:
    candidates = [v for v in kv.all_versions() if kv.major_minor(v) == version]
    if not candidates:
        raise kv.VersionNotSupportedError(version)
    return f"v{candidates[-1]}-local-strict"


@lru_cache(maxsize=None)
def _registry(version: str) -> Registry:
    definitions = kv.schema_contents(f"kubernetes-json-schema/{schema_dir(version)}/_definitions.json", version)
    return Resource.from_contents(definitions) @ Registry()


@lru_cache(maxsize=None)
def validator(version: str, kind: str, api_version: str):
    """The strict validator for one kind, or None when kubernetes-validate has no schema for it."""
    # kubernetes-validate names files <kind>-<group without domain>-<version>.json (rbac.authorization.k8s.io/v1 -> rbac-v1)
    flat_api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = kv.schema_contents(f"kubernetes-json-schema/{schema_dir(version)}/{kind.lower()}-{flat_api}.json", version)
    except FileNotFoundError:
        return None
    registry = Resource.from_contents(schema) @ _registry(version)
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def check(docs: list[Document], partial: bool = False) -> list[Problem]:
    """`partial`: kustomize patches, which may leave out required fields. The caller leaves out the kinds of the
    pinned CRDs' groups (crds.toml), so an unknown kind here is a typo or a CRD we do not pin."""
    problems: list[Problem] = []
    versions = target_versions()
    for doc in docs:
        found: dict[tuple[str, str], list[str]] = {}  # (path, message) -> versions that report it
        unknown_in: list[str] = []
        for version in versions:
            v = validator(version, doc.kind, doc.api_version)
            if v is None:
                unknown_in.append(version)
                continue
            for error in v.iter_errors(doc.obj):
                if partial and error.validator == "required":
                    continue
                path = ".".join(str(p) for p in error.absolute_path) or "(top)"
                found.setdefault((path, error.message), []).append(version)
        if unknown_in:
            problems.append(doc.problem(
                f"unknown kind {doc.kind!r} in apiVersion {doc.api_version!r} for Kubernetes {', '.join(unknown_in)} "
                "(not a core kind and no pinned CRD defines it)"))
        for (path, message), where in found.items():
            problems.append(doc.problem(f"{path}: {short(message)} (kubernetes-validate --strict, Kubernetes {', '.join(where)})"))
    return problems


def short(message: str, limit: int = 300) -> str:
    message = " ".join(message.split())
    return message if len(message) <= limit else message[: limit - 3] + "..."
