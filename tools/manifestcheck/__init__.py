"""Offline, strict checks of the lab's manifests (kubernetes/, istio/, linkerd/, monitoring/).

`python -m tools.manifestcheck --help` lists the checks; docs/validation.md explains them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import (access_matrix, connections, core_schemas, crd_pins, crd_schemas, dashboards, hardening, images,
               kustomize, mesh_config, ownership, references, routes, workloads)
from .model import Problem, Tree

# name -> what it checks; the order is the order they run in.
CHECKS = {
    "parse": "every YAML/JSON file under the manifest folders parses; documents have apiVersion, kind, name",
    "kustomize": "Kustomization fields are known, referenced files exist, `kubectl kustomize` renders (when kubectl is present)",
    "core": "core kinds pass kubernetes-validate --strict for Kubernetes 1.31 and the newest version it knows",
    "crd": "Istio/Linkerd/Gateway API/Flagger kinds against the pinned CRDs (unknown field = error)",
    "refs": "selectors, ports, ServiceAccounts, Secrets, ConfigMaps, subsets, principals, route parents/backends exist",
    "routes": "canary weights add up to 100 and match across a Service's routes; no retried POST; timeouts; no ServiceProfile",
    "workloads": "PORT = port http = prometheus.io/port = Service targetPort; probes on the admin port, in no Service; *_URL name Services; known env names; /tmp; Redis AOF",
    "mesh": "Istio gateway selector and tracing provider; Linkerd annotation keys and values; no HTTP/2 Server; Linkerd probes authorized; "
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
    crds: str | None = None  # --crds; else $CRDS_DIR, else the cache (crd_pins.locate)
    checkov: Path | None = None
    checks: list[str] = field(default_factory=lambda: list(CHECKS))
    render: bool = True


@dataclass
class Result:
    problems: list[Problem]
    tree: Tree
    # Why the CRD schema check could not run: no CRDs to be had (CrdsUnavailable), or a folder that does not hold
    # exactly the pinned files (CrdsInvalid). Every other check has still run.
    crds_problem: crd_pins.CrdsUnavailable | crd_pins.CrdsInvalid | None = None


def run(options: Options) -> Result:
    root = options.root.resolve()
    tree = Tree.load(root)
    selected = set(options.checks)
    problems: list[Problem] = []
    if "parse" in selected:
        problems += tree.parse_problems
    if "kustomize" in selected:
        problems += kustomize.check(tree, render=options.render)
    if "core" in selected:
        # The pinned bundles name their API groups, so the core check knows a custom kind even without the CRDs.
        custom_groups = crd_pins.load_pins().groups
        problems += core_schemas.check([d for d in tree.docs if d.kind != "Kustomization" and d.group not in custom_groups])
        problems += core_schemas.check([d for d in tree.patches if d.group not in custom_groups], partial=True)
    crds_problem = None
    if "crd" in selected:
        try:
            crds = crd_schemas.load(crd_pins.verified_folder(root, options.crds))
        except (crd_pins.CrdsUnavailable, crd_pins.CrdsInvalid) as exc:
            crds_problem = exc
        else:
            custom_groups = crd_pins.load_pins().groups | crds.groups
            problems += crd_schemas.check([d for d in tree.docs if d.group in custom_groups], crds)
            problems += crd_schemas.check([d for d in tree.patches if d.group in custom_groups], crds, partial=True)
    # The checks that read the whole tree, by the name --only/--skip use.
    tree_checks = {"refs": references, "routes": routes, "workloads": workloads, "mesh": mesh_config,
                   "connections": connections, "ownership": ownership, "matrix": access_matrix, "images": images,
                   "metrics": dashboards}
    for name, module in tree_checks.items():
        if name in selected:
            problems += module.check(tree)
    if "hardening" in selected:
        problems += hardening.check(tree, options.checkov or hardening.default_checkov(root))
    return Result(sorted(set(problems), key=sort_key), tree, crds_problem)


def sort_key(problem: Problem):
    return (problem.path, -1 if problem.index is None else problem.index, problem.kind_name or "", problem.message)
