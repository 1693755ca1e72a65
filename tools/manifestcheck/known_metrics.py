"""Every metric name a Grafana panel or Prometheus rule in monitoring/ may query, in one place.

Ours come from the code (the `METRIC_NAMES` tuples in services/**/metrics.py) or, when no such tuple exists, from the
metric table of docs/architecture.md. The mesh and Prometheus names below are upstream's; each group names its source.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

# Istio standard metrics, emitted by every sidecar and gateway
# (https://istio.io/latest/docs/reference/config/metrics/, Istio 1.30).
ISTIO_METRICS = (
    "istio_requests_total",
    "istio_request_duration_milliseconds",  # histogram
    "istio_request_bytes",  # histogram
    "istio_response_bytes",  # histogram
    "istio_request_messages_total",
    "istio_response_messages_total",
    "istio_tcp_sent_bytes_total",
    "istio_tcp_received_bytes_total",
    "istio_tcp_connections_opened_total",
    "istio_tcp_connections_closed_total",
)

# Envoy cluster statistics behind retries, circuit breaking and outlier detection. Istio's sidecars export them
# only for the prefixes listed in proxyStatsMatcher (mesh config or the `proxy.istio.io/config` pod annotation,
# e.g. inclusionRegexps: [".*outlier_detection.*", ".*upstream_rq_retry.*", ".*upstream_rq_pending.*"]); names from
# Envoy's cluster manager statistics (https://www.envoyproxy.io/docs/envoy/latest/configuration/upstream/cluster_manager/cluster_stats).
ENVOY_METRICS = (
    "envoy_cluster_upstream_rq_retry",
    "envoy_cluster_upstream_rq_retry_success",
    "envoy_cluster_upstream_rq_retry_overflow",
    "envoy_cluster_upstream_rq_retry_limit_exceeded",
    "envoy_cluster_upstream_rq_pending_overflow",
    "envoy_cluster_upstream_rq_timeout",
    "envoy_cluster_upstream_rq_total",
    "envoy_cluster_upstream_rq",
    "envoy_cluster_upstream_cx_overflow",
    "envoy_cluster_upstream_cx_active",
    "envoy_cluster_outlier_detection_ejections_active",
    "envoy_cluster_outlier_detection_ejections_enforced_total",
    "envoy_cluster_outlier_detection_ejections_enforced_consecutive_5xx",
    "envoy_cluster_outlier_detection_ejections_consecutive_5xx",
    "envoy_cluster_outlier_detection_ejections_enforced_consecutive_gateway_failure",
    "envoy_cluster_circuit_breakers_default_rq_pending_open",
    "envoy_cluster_circuit_breakers_default_cx_open",
    "envoy_cluster_membership_healthy",
    "envoy_cluster_membership_total",
)

# Linkerd proxy metrics (https://linkerd.io/2-edge/reference/proxy-metrics/ and the outbound route metrics of
# linkerd2-proxy that back HTTPRoute timeouts and retries, Linkerd 2.16+).
LINKERD_METRICS = (
    "request_total",
    "response_total",
    "response_latency_ms",  # histogram
    "route_request_total",
    "route_response_total",
    "route_response_latency_ms",  # histogram
    "tcp_open_total",
    "tcp_open_connections",
    "tcp_close_total",
    "tcp_read_bytes_total",
    "tcp_write_bytes_total",
    "tcp_connection_duration_ms",  # histogram
    "inbound_http_authz_allow_total",
    "inbound_http_authz_deny_total",
    "inbound_tcp_authz_allow_total",
    "inbound_tcp_authz_deny_total",
    "inbound_tcp_authz_terminate_total",
    "inbound_http_route_not_found_total",
    "outbound_http_balancer_endpoints",
    "outbound_http_route_request_statuses_total",
    "outbound_http_route_request_duration_seconds",  # histogram
    "outbound_http_route_backend_requests_total",
    "outbound_http_route_backend_response_statuses_total",
    "outbound_http_route_backend_response_duration_seconds",  # histogram
    "outbound_http_route_retry_requests_total",
    "outbound_http_route_retry_successes_total",
    "outbound_http_route_retry_limit_exceeded_total",
    "outbound_http_route_retry_overflow_total",
    "outbound_http_errors_total",
    "proxy_build_info",
)

# Series Prometheus itself writes for every scrape target (https://prometheus.io/docs/concepts/jobs_instances/).
PROMETHEUS_SYNTHETIC = ("up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added")

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
ARCHITECTURE_DOC = "docs/architecture.md"


def series_names(names) -> set[str]:
    """Every series a metric family shows in Prometheus: a histogram adds _bucket/_sum/_count (counters end in _total)."""
    out = set()
    for name in names:
        out.add(name)
        if not name.endswith("_total"):
            out.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
    return out


def service_metrics(root: Path) -> tuple[set[str], str]:
    """Our services' metric names and where they were read."""
    names: set[str] = set()
    sources = []
    for path in sorted((root / "services").glob("**/metrics.py")):
        found = metric_names_tuple(path)
        if found:
            names.update(found)
            sources.append(path.relative_to(root).as_posix())
    if names:
        return names, ", ".join(sources)
    doc = root / ARCHITECTURE_DOC
    if doc.is_file():
        return architecture_table(doc.read_text(encoding="utf-8")), ARCHITECTURE_DOC
    return set(), "nowhere (no METRIC_NAMES tuple and no docs/architecture.md)"


def metric_names_tuple(path: Path) -> tuple[str, ...] | None:
    """The literal `METRIC_NAMES = (...)` of a module, read without importing it."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, OSError):
        return None
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "METRIC_NAMES" for t in targets) and node.value is not None:
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            return tuple(str(v) for v in value)
    return None


def architecture_table(text: str) -> set[str]:
    """Names in the first column of the table under `## Metrics`."""
    section = re.split(r"^## Metrics.*$", text, maxsplit=1, flags=re.M)
    if len(section) < 2:
        return set()
    body = re.split(r"^## ", section[1], maxsplit=1, flags=re.M)[0]
    return set(re.findall(r"^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`", body, flags=re.M))


def mesh_and_prometheus_series() -> set[str]:
    return series_names(ISTIO_METRICS + ENVOY_METRICS + LINKERD_METRICS + PROMETHEUS_SYNTHETIC)
