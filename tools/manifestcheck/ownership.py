"""Everything the lab creates says so: the uninstall scripts delete only objects that carry OWNER_LABELS.

A document is labelled either by the kustomization that lists it (a `labels:` transformer with both pairs and
`includeSelectors: false`: a selector or pod template must never change with it) or, for files applied on their own
with `kubectl apply -f` (the scenarios), in its own metadata.
"""
from __future__ import annotations

from .model import Document, Problem, Tree, as_dict, as_list, relative

OWNER_LABELS = {"app.kubernetes.io/part-of": "service-mesh-lab", "app.kubernetes.io/managed-by": "service-mesh-lab"}


def labelling_transformer(kust: Document) -> bool:
    for entry in as_list(kust.obj.get("labels")):
        entry = as_dict(entry)
        pairs = as_dict(entry.get("pairs"))
        if all(pairs.get(k) == v for k, v in OWNER_LABELS.items()) and entry.get("includeSelectors") is False:
            return True
    return False


def direct_files(tree: Tree, kust: Document) -> set[str]:
    base = (tree.root / kust.path).parent
    return {relative(tree.root, (base / entry).resolve()) for entry in as_list(kust.obj.get("resources"))
            if isinstance(entry, str) and (base / entry).is_file()}


def check(tree: Tree) -> list[Problem]:
    problems, covered, listed = [], set(), set()
    for kust in tree.kustomizations():
        files = direct_files(tree, kust)
        listed |= files
        if labelling_transformer(kust):
            covered |= files
        elif files:
            problems.append(kust.problem(
                f"no `labels:` transformer with {OWNER_LABELS} and includeSelectors: false: what it creates would not "
                "say it is the lab's, and the uninstall scripts (which delete only labelled objects) would leave it"))
    for doc in tree.docs:
        if doc.kind == "Kustomization" or doc.path in covered or (doc.path in listed and not doc.is_scenario):
            continue  # labelled by its kustomization (or reported above with it)
        labels = as_dict(doc.metadata.get("labels"))
        missing = [f"{k}={v}" for k, v in OWNER_LABELS.items() if labels.get(k) != v]
        if missing:
            problems.append(doc.problem(
                f"applied on its own (no labelling kustomization lists it) without the labels {', '.join(missing)}: "
                "applied over one of ours it would strip them, and uninstall would leave it behind"))
    return problems
