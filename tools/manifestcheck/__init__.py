"""Offline, strict checks of the lab's manifests (kubernetes/, istio/, linkerd/, monitoring/).

`python -m tools.manifestcheck --help` lists the checks; docs/validation.md explains them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import (access_matrix, connections, core_schemas, crd_schemas, dashboards, hardening, images, kustomize,
               mesh_config, ownership, references, routes, workloads)
from .model import Problem, Tree

# name -> what it checks; the order is the order they run in.
CHECKS = {
    "parse": "every YAML/JSON file under the manifest folders parses; documents have apiVersion, kind, name",
    "kustomize": "Kustomization fields are known, referenced files exist, `kubectl kustomize` renders (when kubectl is present)",
    "core": "core kinds pass kubernetes-validate --strict for Kubernetes 1.31 and the newest version it knows",
    "crd": "Istio/Linkerd/Gateway API/Flagger kinds against the pinned CRDs (unknown field = error)",
    "refs": "selectors, ports, ServiceAccounts, Secrets, ConfigMaps, subsets, principals, route parents/backends exist",
    "routes": "canary weights add up to 100 and match across a Service's routes; no retried POST; timeouts; no ServiceProfile",
    "workloads": "PORT = port http = prometheus.io/port = Service targetPort; *_URL name Services; known env names; /tmp; Redis AOF",
    "mesh": "Istio gateway selector and tracing provider; Linkerd annotation keys, values and places; no HTTP/2 Server; "
            "prometheus-scrape policy; Flagger Canary timeout",
    "connections": "DestinationRule idleTimeout below the apps' keep-alive; istio-proxy drain covers the apps' shutdown",
    "ownership": "every object carries the lab's part-of/managed-by labels (kustomize labels, or in the scenario file)",
    "matrix": "the access matrix of the Istio policies = the Linkerd policies' = the README's",
    "images": "container images match `./build.sh --list-images`",
    "metrics": "Grafana queries, Prometheus rules and Flagger MetricTemplates name metrics that our services or the meshes export",
    "hardening": "checkov's Kubernetes policies, minus the reasoned skips in checkov-skips.yaml",
}


@dataclass
class Options:
    root: Path
    crds: str | None = None
    checkov: Path | None = None
    checks: list[str] = field(default_factory=lambda: list(CHECKS))
    render: bool = True


def run(options: Options) -> tuple[list[Problem], Tree]:
    root = options.root.resolve()
    tree = Tree.load(root)
    selected = set(options.checks)
    problems: list[Problem] = []
    if "parse" in selected:
        problems += tree.parse_problems
    if "kustomize" in selected:
        problems += kustomize.check(tree, render=options.render)
    crds = None
    if selected & {"core", "crd"}:
        folder, how = crd_schemas.resolve_folder(root, options.crds)
        if not folder.is_dir():
            problems.append(crd_schemas.missing_folder_problem(folder, how, "CRD folder not found"))
        else:
            crds = crd_schemas.load(folder)
            if not crds.by_group_kind:
                problems.append(crd_schemas.missing_folder_problem(folder, how, "no CustomResourceDefinition in the CRD folder"))
                crds = None
        custom_groups = crds.groups if crds else set()
        core_docs = [d for d in tree.docs if d.kind != "Kustomization" and d.group not in custom_groups]
        core_patches = [d for d in tree.patches if d.group not in custom_groups]
        if "core" in selected:
            # Without CRDs an unknown kind may be a custom one: the missing folder is the problem reported.
            unknown_ok = crds is None
            problems += core_schemas.check(core_docs, skip_unknown=unknown_ok)
            problems += core_schemas.check(core_patches, partial=True, skip_unknown=unknown_ok)
        if "crd" in selected and crds is not None:
            custom = [d for d in tree.docs if d.group in custom_groups]
            patches = [d for d in tree.patches if d.group in custom_groups]
            problems += crd_schemas.check(custom, crds) + crd_schemas.check(patches, crds, partial=True)
    # The checks that read the whole tree, by the name --only/--skip use.
    tree_checks = {"refs": references, "routes": routes, "workloads": workloads, "mesh": mesh_config,
                   "connections": connections, "ownership": ownership, "matrix": access_matrix, "images": images,
                   "metrics": dashboards}
    for name, module in tree_checks.items():
        if name in selected:
            problems += module.check(tree)
    if "hardening" in selected:
        problems += hardening.check(tree, options.checkov or hardening.default_checkov(root))
    return sorted(set(problems), key=sort_key), tree


def sort_key(problem: Problem):
    return (problem.path, -1 if problem.index is None else problem.index, problem.kind_name or "", problem.message)
