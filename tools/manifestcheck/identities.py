"""Mesh identities: Istio principals and Linkerd identities, mapped to ServiceAccounts.

The identities below belong to components the lab installs from upstream (not from our manifests), so no
ServiceAccount for them exists in our files. Each entry says where it comes from; the access-matrix check treats
"ingress" as the matrix row `ingress` and "monitoring" as scraping, which the README's matrix leaves out.
"""
from __future__ import annotations

import re

EXTERNAL_SERVICE_ACCOUNTS: dict[tuple[str, str], str] = {
    # Istio's default ingress gateway (istioctl install --set profile=demo; docs/upstream-facts.md).
    ("istio-system", "istio-ingressgateway-service-account"): "ingress",
    # Istio's Prometheus add-on (samples/addons/prometheus.yaml: ServiceAccount prometheus in istio-system).
    ("istio-system", "prometheus"): "monitoring",
    # linkerd-viz's Prometheus and tap (linkerd viz install; `linkerd viz allow-scrapes` authorizes this one).
    ("linkerd-viz", "prometheus"): "monitoring",
    ("linkerd-viz", "tap"): "monitoring",
}

# Our own Prometheus lives under monitoring/; any ServiceAccount defined there counts as "monitoring".
MONITORING_FOLDER = "monitoring/"

ISTIO_PRINCIPAL = re.compile(r"^(?P<td>[^/]+)/ns/(?P<ns>[^/]+)/sa/(?P<sa>[^/]+)$")
LINKERD_IDENTITY = re.compile(r"^(?P<sa>[^.]+)\.(?P<ns>[^.]+)\.serviceaccount\.identity\.linkerd\.(?P<td>.+)$")


def parse_istio_principal(principal: str) -> tuple[str, str] | None:
    """(namespace, service account) of `cluster.local/ns/<ns>/sa/<sa>`; None for any other shape."""
    m = ISTIO_PRINCIPAL.match(principal)
    return (m["ns"], m["sa"]) if m else None


def parse_linkerd_identity(identity: str) -> tuple[str, str] | None:
    """(namespace, service account) of `<sa>.<ns>.serviceaccount.identity.linkerd.cluster.local`."""
    m = LINKERD_IDENTITY.match(identity)
    return (m["ns"], m["sa"]) if m else None


# What Linkerd's proxy injector adds to every meshed pod (linkerd2 controller/proxy-injector): Servers select the
# proxies by these labels and name the proxy's own ports (`linkerd viz allow-scrapes` does both), so the checks
# evaluate Linkerd Servers against the pods as they run, not only as written.
LINKERD_PROXY_PORTS = {"linkerd-proxy": 4143, "linkerd-admin": 4191}


def linkerd_injected_labels(namespace: str | None, workload: str) -> dict[str, str]:
    return {
        "linkerd.io/control-plane-ns": "linkerd",
        "linkerd.io/proxy-deployment": workload,
        "linkerd.io/workload-ns": namespace or "",
    }
