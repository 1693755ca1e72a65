"""Linkerd's resources, read from kubernetes/ and linkerd/ as they are (the overlay's patches applied the way
kustomize merges them), translated into the mesh-neutral intent the way Linkerd's policy controller and proxy
mean them. Envoy enforces these intents locally, not linkerd2-proxy: docs/local-mesh.md lists what differs.

The state is what `kubectl apply -k linkerd/` leaves: the base layer's Services, Namespace and Deployments with
linkerd/patches/ merged into them, and the objects of linkerd/; scenario files are applied on top, replacing
objects of the same kind and name. outbound.py reads the Services and the HTTPRoutes that name a Service as
parent; inbound.py the Servers and their policies. Anything outside the subset is named in a warning.
"""
from __future__ import annotations

import copy

from tools.manifestcheck.model import Document, as_dict, as_list

from ..intent import Backend, IngressServer, MeshIntent, Origin, Route
from ..manifests import MeshConfigError, NAMESPACE, Reader, apply_operations, deployed, file_documents, key
from ..topology import Topology
from .inbound import Inbound
from .outbound import service_traffic

__all__ = ["MeshConfigError", "apply_operations", "file_documents", "overlay_documents", "translate"]
SUPPORTED = {"Server", "HTTPRoute", "AuthorizationPolicy", "MeshTLSAuthentication", "NetworkAuthentication"}
BASE_KINDS = {"Service", "Namespace", "Deployment"}
WHY_NOT = {
    "ServiceProfile": "a ServiceProfile overrides a Service's HTTPRoutes, retries, timeouts and failure accrual in "
                      "Linkerd; the local mesh does not reproduce ServiceProfiles",
    "ServerAuthorization": "the older form of AuthorizationPolicy is not reproduced; use AuthorizationPolicy",
}
# The public entry: Linkerd ships no ingress, so in front of api-gateway there is an unmeshed L4 load balancer
# (a LoadBalancer Service, or an ingress controller outside the mesh); it reaches api-gateway's proxy in plaintext.
INGRESS = {"name": "ingress", "namespace": "(unmeshed)", "service_account": "", "labels": {}}
ENTRY = ("api-gateway", 5000)


def overlay_documents(tree) -> dict[tuple, Document]:
    """kubectl apply -k linkerd/: the base objects the front end reads, the patches merged, and linkerd/."""
    state = {key(d): d for d in tree.docs if d.path.startswith("kubernetes/") and d.kind in BASE_KINDS}
    for patch in (p for p in tree.patches if p.path.startswith("linkerd/")):
        target = state.get(key(patch))
        if target is None:
            continue
        merged = copy.deepcopy(target.obj)
        meta = merged.setdefault("metadata", {})
        for field in ("annotations", "labels"):
            meta[field] = {**as_dict(meta.get(field)), **as_dict(patch.metadata.get(field))}
        state[key(patch)] = Document(target.path, target.index, merged, target.namespace)
    state.update({key(d): d for d in tree.docs if d.path.startswith("linkerd/") and not d.is_scenario
                  and d.kind != "Kustomization"})
    return state


def warn_unsupported(docs: list[Document], intent: MeshIntent) -> None:
    for doc in docs:
        linkerd_kind = doc.group.endswith("linkerd.io") or doc.group == "gateway.networking.k8s.io"
        if doc.group.endswith("istio.io"):  # e.g. an istio/ file applied to this mesh by mistake
            Reader(doc, intent).warn("", "an Istio resource: the Linkerd mesh does not read it (a cluster without "
                                         "Istio's CRDs refuses it); apply the linkerd/ counterpart")
        elif linkerd_kind and doc.kind not in SUPPORTED:
            Reader(doc, intent).warn("", WHY_NOT.get(doc.kind, f"kind {doc.kind} is not reproduced by the local mesh")
                                     + " (docs/local-mesh.md)")
        elif doc.kind in ("Namespace", "Deployment"):
            meta = doc.metadata if doc.kind == "Namespace" else as_dict(as_dict(doc.spec.get("template")).get("metadata"))
            where = "metadata.annotations" if doc.kind == "Namespace" else "spec.template.metadata.annotations"
            for name in sorted(as_dict(meta.get("annotations"))):
                if "linkerd.io/" in name and name not in ("linkerd.io/inject", "config.linkerd.io/default-inbound-policy"):
                    Reader(doc, intent).warn(f"{where}.{name}", "ignored: not reproduced by the local mesh "
                                                                "(docs/local-mesh.md)")


def translate(state: dict[tuple, Document], topology: Topology) -> MeshIntent:
    intent = MeshIntent(mesh="linkerd")
    docs = sorted(state.values(), key=lambda d: (d.path, d.index))
    warn_unsupported(docs, intent)
    services = {d.name: d for d in docs if d.kind == "Service" and (d.namespace or NAMESPACE) == NAMESPACE}
    # The controller lists a parent's routes by creation time, then name: the overlay's before a scenario's.
    routes = sorted((d for d in docs if d.kind == "HTTPRoute" and not Inbound.server_parent(d)),
                    key=lambda d: (d.is_scenario, d.name))
    service_traffic(services, routes, topology, intent)
    inbound = Inbound(docs, intent)
    for instance in topology.instances:
        if instance.container_port is not None:
            intent.inbound[instance.name] = [inbound.port(instance)]
    inbound.report_unused()
    intent.ingress = [IngressServer(INGRESS["name"], ENTRY[1], "tcp",
                                    [Route("ingress", [], [Backend(*ENTRY)], None, None, None,
                                           Origin("(local)", "ingress", "unmeshed load balancer"))],
                                    Origin("(local)", "ingress", "unmeshed load balancer"))]
    base = {d.name for d in docs if d.kind == "Deployment" and d.path.startswith("kubernetes/")}
    intent.deployed = deployed(state, base, topology.instances)
    unique = {str(w): w for w in intent.warnings}
    intent.warnings = list(unique.values())
    return intent
