"""What each mesh's files promise on the local mesh, so one set of checks can hold either to its own word: the
Envoy clusters where its payment split lives, how it answers a caller it refuses, what a plaintext caller meets,
and the files that configure each behaviour (for the side-by-side table of --compare)."""
from __future__ import annotations

from dataclasses import dataclass, field

PAYMENT = "payment-service.e-commerce.svc.cluster.local"
LINKERD_SPLIT = f"outbound|5003|payment-service-v1=95,payment-service-v2=5|{PAYMENT}"


@dataclass(frozen=True)
class Profile:
    mesh: str
    v1_cluster: str  # where an ejection of a v1 instance shows (outlier_detection.*)
    v2_cluster: str
    denial_body: bytes  # what payment's sidecar answers a caller no policy allows (with 403)
    denial_header: tuple[str, str] | None
    identity: str  # how payment's certificate names it
    plaintext: str  # refused | 403: a plaintext HTTP request to payment's sidecar
    ejection: str  # how long an ejected instance stays out
    sick_v2: str  # fail-fast | moves-to-v1: what becomes of v2's share once its only instance is out
    files: dict[str, str] = field(default_factory=dict)  # behaviour -> the files that configure it


ISTIO = Profile(
    mesh="istio", v1_cluster=f"outbound|5003|v1|{PAYMENT}", v2_cluster=f"outbound|5003|v2|{PAYMENT}",
    denial_body=b"RBAC: access denied", denial_header=None,
    identity="spiffe://cluster.local/ns/e-commerce/sa/payment-service", plaintext="refused",
    ejection="baseEjectionTime (30 s, longer after each repeated ejection)", sick_v2="fail-fast",
    files={
        "canary": "istio/virtual-services.yaml, istio/destination-rules.yaml (subsets)",
        "retries": "istio/virtual-services.yaml (retries on the GET/HEAD route)",
        "writes": "istio/virtual-services.yaml (writes: attempts 0)",
        "authorization": "istio/authorization-policies-final.yaml",
        "plaintext": "istio/peer-authentication.yaml (STRICT)",
        "ejection": "istio/destination-rules.yaml (outlierDetection)",
        "sick_v2": "istio/destination-rules.yaml (one pool per subset), istio/virtual-services.yaml (weights)",
        "timeouts": "istio/virtual-services.yaml (timeout)",
    })
LINKERD = Profile(
    mesh="linkerd", v1_cluster=LINKERD_SPLIT, v2_cluster=LINKERD_SPLIT,
    denial_body=b"", denial_header=("l5d-proxy-error", "unauthorized request on route"),
    identity="payment-service.e-commerce.serviceaccount.identity.linkerd.cluster.local", plaintext="403",
    ejection="the failure-accrual penalty (10 s, growing to 1 min)", sick_v2="moves-to-v1",
    files={
        "canary": "linkerd/routes.yaml (backendRefs weights)",
        "retries": "linkerd/routes.yaml (retry.linkerd.io/* on <service>-reads)",
        "writes": "linkerd/routes.yaml (<service>-default: no retry annotation)",
        "authorization": "linkerd/authorization.yaml",
        "plaintext": "linkerd/authorization.yaml (MeshTLSAuthentication), linkerd/patches/namespace.yaml (deny)",
        "ejection": "linkerd/patches/failure-accrual.yaml (balancer.linkerd.io/failure-accrual*)",
        "sick_v2": "linkerd/routes.yaml (weights), linkerd/patches/failure-accrual.yaml (on the parent Service)",
        "timeouts": "linkerd/routes.yaml (timeout.linkerd.io/request)",
    })
PROFILES = {p.mesh: p for p in (ISTIO, LINKERD)}


def profile(inventory_data: dict) -> Profile:
    return PROFILES[inventory_data.get("mesh", "istio")]
