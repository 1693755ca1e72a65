"""Kustomization files: known fields, every referenced path exists, and (when kubectl is at hand) it renders."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from .model import Document, Problem, Tree, as_dict, as_list

# The fields of kustomize.config.k8s.io/v1beta1 Kustomization (kustomize's types/kustomization.go); a misspelled
# field is silently ignored by kustomize, so we reject it here.
KUSTOMIZATION_FIELDS = frozenset(
    """apiVersion kind metadata resources bases components namespace namePrefix nameSuffix commonLabels labels
    commonAnnotations images replicas patches patchesStrategicMerge patchesJson6902 configMapGenerator
    secretGenerator generatorOptions vars replacements crds generators transformers validators openapi helmCharts
    helmGlobals buildMetadata sortOptions configurations""".split()
)


KLOG_PREFIX = re.compile(r"^[EWIF]\d{4} [\d:.]+\s+\d+ \S+\] ")


def check(tree: Tree, render: bool = True) -> list[Problem]:
    problems: list[Problem] = []
    kubectl = shutil.which("kubectl") if render else None
    for kust in tree.kustomizations():
        base = (tree.root / kust.path).parent
        found_before = len(problems)
        for key in kust.obj:
            if key not in KUSTOMIZATION_FIELDS:
                problems.append(kust.problem(f"unknown Kustomization field {key!r}"))
        for entry, what in referenced_paths(kust):
            if "://" in entry or entry.startswith("github.com/"):
                continue  # remote bases are fetched by kustomize at apply time
            if not (base / entry).exists():
                problems.append(kust.problem(f"{what} {entry!r} does not exist (relative to {base.relative_to(tree.root)}/)"))
        if kubectl and len(problems) == found_before:
            problems.extend(render_with_kubectl(kubectl, kust, base))
    return problems


def referenced_paths(kust: Document) -> list[tuple[str, str]]:
    obj = kust.obj
    out = [(e, "resource") for e in as_list(obj.get("resources")) + as_list(obj.get("bases")) if isinstance(e, str)]
    out += [(e, "component") for e in as_list(obj.get("components")) if isinstance(e, str)]
    out += [(e, "patch") for e in as_list(obj.get("patchesStrategicMerge")) if isinstance(e, str) and "\n" not in e]
    for patch in as_list(obj.get("patches")) + as_list(obj.get("patchesJson6902")):
        if isinstance(as_dict(patch).get("path"), str):
            out.append((patch["path"], "patch"))
    for generator in as_list(obj.get("configMapGenerator")) + as_list(obj.get("secretGenerator")):
        for key in ("files", "envs"):
            for entry in as_list(as_dict(generator).get(key)):
                if isinstance(entry, str):
                    out.append((entry.split("=", 1)[-1], f"generator {key[:-1]}"))
        if isinstance(as_dict(generator).get("env"), str):
            out.append((generator["env"], "generator env"))
    return out


def render_with_kubectl(kubectl: str, kust: Document, base: Path) -> list[Problem]:
    """`kubectl kustomize` runs offline; a failure here is what `kubectl apply -k` would hit."""
    try:
        result = subprocess.run([kubectl, "kustomize", str(base)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [kust.problem(f"kubectl kustomize could not run: {exc}")]
    if result.returncode != 0:
        message = KLOG_PREFIX.sub("", " ".join(result.stderr.split()))[:400]
        return [kust.problem(f"kubectl kustomize {base.name}/ fails: {message}")]
    return []


def generated_names(tree: Tree, kind: str) -> dict[str, Document]:
    """Names of the ConfigMaps/Secrets that kustomize generators create, mapped to their kustomization."""
    key = "configMapGenerator" if kind == "ConfigMap" else "secretGenerator"
    out = {}
    for kust in tree.kustomizations():
        for generator in as_list(kust.obj.get(key)):
            name = as_dict(generator).get("name")
            if isinstance(name, str):
                out[name] = kust
    return out
