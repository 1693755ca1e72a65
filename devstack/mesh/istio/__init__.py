"""Istio's resources, read from istio/ as they are, translated the way istiod translates them (the front end).

What istiod does is taken from its source (istio/istio, pilot/pkg/networking/core and pilot/pkg/security/authz):
- route/route.go: one Envoy route per `match` entry (named `<route>.<match>`), matched in the order written; a
  destination of weight 0 is dropped when there are others; no `timeout` means no timeout (0s), not Envoy's 15 s.
- route/retry/retry.go: no `retries` gives DefaultPolicy: 2 retries on
  connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes with status 503, other hosts first
  (previous_hosts, 5 host selection attempts); `attempts: 0` gives no retry policy at all; a `retryOn` replaces the
  conditions (numbers in it become retriable status codes) and `perTryTimeout` sets the per-try timeout.
- cluster_traffic_policy.go: connectionPool -> circuit-breaker thresholds (unset: unlimited), outlierDetection ->
  consecutive_5xx / gateway failures enforced at 100%, success-rate ejection off, minHealthPercent -> Envoy's
  healthy panic threshold (0 by default); the default load balancer is LEAST_REQUEST; subsets inherit the
  top-level trafficPolicy, replaced field group by field group by their own.
- security/authz/builder and model: DENY policies in one RBAC filter before the ALLOW ones; an ALLOW policy with no
  rules matches nothing (allow-nothing); once an ALLOW policy selects a workload, a request none matches is denied.
Everything outside the subset below is named in a warning (file, resource, field), never silently dropped.
"""
from __future__ import annotations

from tools.manifestcheck.model import Document, as_list

from ..intent import InboundPort, MeshIntent, ServiceTraffic
from ..topology import Topology
from .common import MeshConfigError, Reader, apply_operations, file_documents, overlay_documents
from .security import check_selector, mtls_mode, policies_for
from .traffic import MESH_GATEWAY, backend_sets, bound_to, default_route, gateways, host_name, http_routes

__all__ = ["MeshConfigError", "apply_operations", "file_documents", "overlay_documents", "translate"]
SUPPORTED_KINDS = {"VirtualService", "DestinationRule", "Gateway", "PeerAuthentication", "AuthorizationPolicy"}



# -- the translation -------------------------------------------------------------------------------------------------
def translate(state: dict[tuple, Document], topology: Topology) -> MeshIntent:
    intent = MeshIntent(mesh="istio")
    docs = sorted(state.values(), key=lambda d: (d.path, d.index))
    for doc in docs:
        if doc.kind not in SUPPORTED_KINDS and doc.group.endswith("istio.io"):
            Reader(doc, intent).warn("", f"kind {doc.kind} is not reproduced by the local mesh (docs/local-mesh.md)")
    rules = {d.spec.get("host"): d for d in docs if d.kind == "DestinationRule"}
    for service in topology.services:
        for port in service.ports:
            intent.backend_sets[(service.name, port.port)] = backend_sets(service.name, port.port, rules.get(service.name),
                                                                          intent)
    services = {s.name for s in topology.services}
    virtual_services = [d for d in docs if d.kind == "VirtualService"]
    for service in topology.services:
        for port in service.ports:
            vs = next((v for v in virtual_services if bound_to(v, MESH_GATEWAY)
                       and service.name in [host_name(h, v) for h in as_list(v.spec.get("hosts"))]), None)
            if port.protocol == "tcp":
                intent.traffic[(service.name, port.port)] = ServiceTraffic(service.name, port.port, "tcp", [])
                continue
            routes = (http_routes(vs, port.port, intent, topology, services) if vs is not None
                      else [default_route(service.name, port.port)])
            intent.traffic[(service.name, port.port)] = ServiceTraffic(service.name, port.port, "http", routes)
    intent.ingress = gateways(docs, virtual_services, intent, topology, services)
    peer_auth = [d for d in docs if d.kind == "PeerAuthentication"]
    authz = [d for d in docs if d.kind == "AuthorizationPolicy"]
    for doc in peer_auth + authz:
        check_selector(doc, intent)
    for instance in topology.instances:
        if instance.container_port is None:
            continue
        mode = mtls_mode(instance, peer_auth, intent)
        deny, allow = policies_for(instance, authz, intent)
        intent.inbound[instance.name] = [InboundPort(instance.container_port, instance.protocol, mode, deny, allow)]
    unique = {str(w): w for w in intent.warnings}  # a policy read once per workload warns once
    intent.warnings = list(unique.values())
    return intent


