"""What both front ends share: the set of objects `kubectl apply -f` / `delete -f` leave, the documents of one
file, and the Reader that names every field it does not support (file, resource, field)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tools.manifestcheck.model import Document, as_dict, load_all

from .intent import MeshIntent, Origin, Warning_

NAMESPACE = "e-commerce"


class MeshConfigError(ValueError):
    """The configuration cannot run as written (the local mesh refuses to start or to apply it)."""


def key(doc: Document) -> tuple:
    return doc.kind, doc.namespace or NAMESPACE, doc.name


def overlay(tree_docs: list[Document], folder: str) -> dict[tuple, Document]:
    """The steady state of one overlay: every object under `folder`/ outside scenarios/."""
    return {key(d): d for d in tree_docs
            if d.path.startswith(folder + "/") and not d.is_scenario and d.kind != "Kustomization"}


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


def deployed(state: dict[tuple, Document], base: set[str], instances) -> set[str]:
    """The instances that run: those of kubernetes/ and those whose Deployment an applied file created."""
    created = {k[2] for k in state if k[0] == "Deployment"}
    return {i.name for i in instances if i.deployment in base or i.deployment in created}


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
