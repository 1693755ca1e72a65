"""Reading Istio resources: the set `kubectl apply -f` / `delete -f` leave, durations, string matches, and the
Reader that names every field it does not support."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tools.manifestcheck.model import Document, as_dict, load_all

from ..intent import MeshIntent, Origin, StringMatch, Warning_


class MeshConfigError(ValueError):
    """The configuration cannot run as written (the local mesh refuses to start or to apply it)."""


# -- the set of resources, as `kubectl apply -f` / `delete -f` leave it ----------------------------------------------
def overlay_documents(tree_docs: list[Document]) -> dict[tuple, Document]:
    """The steady state: every Istio object under istio/ outside scenarios/."""
    return {key(d): d for d in tree_docs
            if d.path.startswith("istio/") and not d.is_scenario and d.kind != "Kustomization"}


def key(doc: Document) -> tuple:
    return doc.kind, doc.namespace or "e-commerce", doc.name


def file_documents(path: Path, root: Path) -> list[Document]:
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        rel = str(path)
    try:
        objects = load_all(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MeshConfigError(f"{path}: cannot read it ({exc.strerror})") from None
    except Exception as exc:  # noqa: BLE001 - a YAML error of any kind is the user's to fix
        raise MeshConfigError(f"{rel}: does not parse as YAML: {' '.join(str(exc).split())}") from None
    docs = []
    for index, obj in enumerate(o for o in objects if o is not None):
        if not isinstance(obj, dict) or not obj.get("kind"):
            raise MeshConfigError(f"{rel}: document {index} is not a Kubernetes object")
        meta = as_dict(obj.get("metadata"))
        docs.append(Document(rel, index, obj, meta.get("namespace")))
    return docs


def apply_operations(state: dict[tuple, Document], operations: list[tuple[str, list[Document]]]) -> dict[tuple, Document]:
    state = dict(state)
    for verb, docs in operations:
        for doc in docs:
            if verb == "apply":
                state[key(doc)] = doc
            else:
                state.pop(key(doc), None)
    return state


# -- small readers ---------------------------------------------------------------------------------------------------
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")


def seconds(value, where: str) -> float:
    """A protobuf / Go duration string as Istio accepts it: 3s, 1.5s, 500ms, 1m30s."""
    text = str(value).strip()
    parts = DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise MeshConfigError(f"{where}: {value!r} is not a duration like 3s or 500ms")
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    return sum(float(n) * unit[u] for n, u in parts)


def string_match(raw, where: str) -> StringMatch:
    raw = as_dict(raw)
    kinds = [k for k in ("exact", "prefix", "regex") if k in raw]
    if len(kinds) != 1:
        raise MeshConfigError(f"{where}: a string match needs exactly one of exact, prefix, regex (got {sorted(raw)})")
    return StringMatch(kinds[0], str(raw[kinds[0]]))


def wildcard(value: str) -> StringMatch:
    """Istio's `*` patterns in policies (matcher/string.go): `*` any, `*x` suffix, `x*` prefix, else exact."""
    if value == "*":
        return StringMatch("present")
    if value.startswith("*"):
        return StringMatch("suffix", value[1:])
    if value.endswith("*"):
        return StringMatch("prefix", value[:-1])
    return StringMatch("exact", value)


@dataclass
class Reader:
    """Reads one resource's fields, recording every field it does not support."""

    doc: Document
    intent: MeshIntent

    @property
    def origin(self) -> Origin:
        return Origin(self.doc.path, self.doc.kind, self.doc.name)

    def where(self, field: str) -> str:
        return self.origin.at(field)

    def only(self, node, path: str, supported: set[str], why: str = "outside the local mesh's supported subset") -> dict:
        node = as_dict(node)
        for name in sorted(set(node) - supported):
            self.warn(f"{path}.{name}" if path else name, f"ignored: {why} (docs/local-mesh.md)")
        return node

    def warn(self, field: str, message: str) -> None:
        self.intent.warnings.append(Warning_(self.origin.at(), field, message))
