"""The manifest tree as the checks see it: every YAML document with its file, index and effective namespace."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

# libyaml's loader when PyYAML was built with it: the pinned CRDs are 2 MB of YAML.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_all(text: str) -> list:
    return list(yaml.load_all(text, Loader=YAML_LOADER))


# The folders the checker reads, relative to the repository root.
MANIFEST_DIRS = ("kubernetes", "istio", "linkerd", "monitoring")
YAML_SUFFIXES = (".yaml", ".yml")
KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

# Kinds whose pod template the cross-reference checks look into, and where that template lives.
POD_TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True, order=True)
class Problem:
    """One finding, printed as `file:doc-index kind/name: message` (doc-index counts documents from 0)."""

    path: str
    index: int | None = None
    kind_name: str | None = None
    message: str = ""

    def __str__(self) -> str:
        where = self.path if self.index is None else f"{self.path}:{self.index}"
        if self.kind_name:
            where += f" {self.kind_name}"
        return f"{where}: {self.message}"


@dataclass
class Document:
    path: str  # relative to the repository root
    index: int  # position among the non-empty documents of the file, from 0
    obj: dict
    namespace: str | None = None  # metadata.namespace, or the namespace its kustomization sets

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion", ""))

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def name(self) -> str:
        meta = self.obj.get("metadata") or {}
        return str(meta.get("name", "")) if isinstance(meta, dict) else ""

    @property
    def metadata(self) -> dict:
        meta = self.obj.get("metadata")
        return meta if isinstance(meta, dict) else {}

    @property
    def spec(self) -> dict:
        spec = self.obj.get("spec")
        return spec if isinstance(spec, dict) else {}

    @property
    def is_scenario(self) -> bool:
        """Files under <mesh>/scenarios/ are experiments applied on top, not the steady state."""
        return "/scenarios/" in f"/{self.path}"

    def problem(self, message: str) -> Problem:
        # A Kustomization has no name of its own: its folder names it.
        name = self.name or (Path(self.path).parent.name if self.kind == "Kustomization" else "?")
        return Problem(self.path, self.index, f"{self.kind or '?'}/{name}", message)

    def pod_template(self) -> dict | None:
        keys = POD_TEMPLATE_PATHS.get(self.kind)
        if self.kind == "Pod":
            return self.obj
        if not keys:
            return None
        node: Any = self.obj
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else None


def dig(node: Any, *keys: Any, default: Any = None) -> Any:
    """Follow keys/indexes through nested dicts and lists; `default` when any step is missing."""
    for key in keys:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and -len(node) <= key < len(node):
            node = node[key]
        else:
            return default
    return node


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


@dataclass
class PodTemplate:
    """A workload's pod template, the unit most cross-reference checks work on."""

    doc: Document
    labels: dict
    spec: dict

    @property
    def containers(self) -> list[dict]:
        return [c for c in as_list(self.spec.get("containers")) if isinstance(c, dict)]

    @property
    def all_containers(self) -> list[dict]:
        return [
            c
            for key in ("initContainers", "containers", "ephemeralContainers")
            for c in as_list(self.spec.get(key))
            if isinstance(c, dict)
        ]

    @property
    def service_account(self) -> str:
        return str(self.spec.get("serviceAccountName") or self.spec.get("serviceAccount") or "default")


@dataclass
class Tree:
    root: Path
    docs: list[Document] = field(default_factory=list)
    parse_problems: list[Problem] = field(default_factory=list)
    other_files: list[str] = field(default_factory=list)  # non-YAML files under the manifest folders
    patches: list[Document] = field(default_factory=list)  # documents of files kustomizations use as patches

    # -- loading ---------------------------------------------------------------------------------------------
    @classmethod
    def load(cls, root: Path) -> "Tree":
        tree = cls(root=root)
        for path in manifest_files(root):
            rel = path.relative_to(root).as_posix()
            if path.suffix not in YAML_SUFFIXES and path.name not in KUSTOMIZATION_NAMES:
                tree.other_files.append(rel)
                if path.suffix == ".json":
                    try:
                        json.loads(path.read_text(encoding="utf-8"))
                    except (ValueError, UnicodeDecodeError) as exc:
                        tree.parse_problems.append(Problem(rel, message=f"does not parse as JSON: {exc}"))
                continue
            tree._load_yaml(path, rel)
        tree._set_patches_apart()
        tree._apply_kustomize_namespaces()
        return tree

    def _set_patches_apart(self) -> None:
        """Patch files are partial objects (or JSON patch lists): they parse, but are not resources of their own."""
        from .kustomize import referenced_paths

        patch_files = set()
        for kust in self.kustomizations():
            base = (self.root / kust.path).parent
            for entry, what in referenced_paths(kust):
                if what == "patch":
                    patch_files.add(relative(self.root, (base / entry).resolve()))
        self.patches = [d for d in self.docs if d.path in patch_files]
        self.docs = [d for d in self.docs if d.path not in patch_files]
        self.parse_problems = [p for p in self.parse_problems if p.path not in patch_files or "does not parse" in p.message]

    def _load_yaml(self, path: Path, rel: str) -> None:
        try:
            raw = load_all(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            self.parse_problems.append(Problem(rel, message=f"does not parse as YAML: {' '.join(str(exc).split())}"))
            return
        index = 0
        for obj in raw:
            if obj is None:
                continue  # an empty document between two `---`
            if not isinstance(obj, dict):
                self.parse_problems.append(Problem(rel, index, None, f"document is a {type(obj).__name__}, not a mapping"))
            elif not obj.get("apiVersion") or not obj.get("kind"):
                self.parse_problems.append(Problem(rel, index, None, "document has no apiVersion or kind"))
            else:
                meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
                doc = Document(rel, index, obj, meta.get("namespace"))
                if not doc.name and doc.kind != "Kustomization":
                    self.parse_problems.append(doc.problem("metadata.name is missing"))
                self.docs.append(doc)
            index += 1

    def _apply_kustomize_namespaces(self) -> None:
        """kustomize's `namespace:` overrides every resource it builds, so the checks use it too."""
        for kust in self.kustomizations():
            namespace = kust.obj.get("namespace")
            if not isinstance(namespace, str):
                continue
            for rel in kustomization_files(self.root, kust):
                for doc in self.docs:
                    if doc.path == rel and doc.kind != "Kustomization":
                        doc.namespace = namespace

    # -- queries ---------------------------------------------------------------------------------------------
    def kustomizations(self) -> list[Document]:
        return [d for d in self.docs if d.kind == "Kustomization"]

    def of_kind(self, *kinds: str, group: str | None = None, scenarios: bool = True) -> list[Document]:
        return [
            d
            for d in self.docs
            if d.kind in kinds and (group is None or d.group == group) and (scenarios or not d.is_scenario)
        ]

    def find(self, kind: str, name: str, namespace: str | None, group: str | None = None) -> list[Document]:
        """Documents of that kind and name in that namespace; an unknown namespace on either side matches."""
        return [
            d
            for d in self.of_kind(kind, group=group)
            if d.name == name and (namespace is None or d.namespace is None or d.namespace == namespace)
        ]

    def pod_templates(self, namespace: str | None = None) -> Iterator[PodTemplate]:
        for doc in self.docs:
            template = doc.pod_template()
            if template is None:
                continue
            if namespace is not None and doc.namespace is not None and doc.namespace != namespace:
                continue
            labels = as_dict(dig(template, "metadata", "labels", default={}))
            yield PodTemplate(doc, labels, as_dict(template.get("spec")))


def manifest_files(root: Path) -> list[Path]:
    files = []
    for name in MANIFEST_DIRS:
        folder = root / name
        if folder.is_dir():
            files.extend(p for p in folder.rglob("*") if p.is_file())
    return sorted(files)


def kustomization_files(root: Path, kust: Document) -> list[str]:
    """Files a kustomization pulls in through `resources:` (recursing into folders with their own kustomization)."""
    base = (root / kust.path).parent
    out: list[str] = []
    for entry in as_list(kust.obj.get("resources")) + as_list(kust.obj.get("bases")):
        if not isinstance(entry, str) or "://" in entry:
            continue
        target = (base / entry).resolve()
        if target.is_file():
            out.append(relative(root, target))
        elif target.is_dir():
            for name in KUSTOMIZATION_NAMES:
                nested = target / name
                if nested.is_file():
                    try:
                        nested_docs = [o for o in load_all(nested.read_text()) if isinstance(o, dict)]
                    except yaml.YAMLError:
                        nested_docs = []
                    for obj in nested_docs:
                        out.extend(kustomization_files(root, Document(relative(root, nested), 0, obj)))
                    break
    return out


def relative(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return os.path.relpath(path, root.resolve())


def matches(selector: dict, labels: dict) -> bool:
    """A non-empty equality selector matches labels that carry all of its pairs."""
    return bool(selector) and all(str(labels.get(k)) == str(v) for k, v in selector.items())


def label_selector_matches(selector: dict, labels: dict) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions); an empty selector matches everything."""
    match_labels = as_dict(selector.get("matchLabels"))
    if any(str(labels.get(k)) != str(v) for k, v in match_labels.items()):
        return False
    for expr in as_list(selector.get("matchExpressions")):
        key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in as_list(expr.get("values"))]
        if op == "In" and str(labels.get(key)) not in values:
            return False
        if op == "NotIn" and key in labels and str(labels[key]) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def iter_strings(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        if isinstance(value, str):
            yield value
