"""The load generator's Prometheus metrics (all named loadgen_*), in a registry of their own.

A registry per run, not the global one, so that a test can run the generator twice in one process and read each
run's figures on their own.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "loadgen_requests_total", "Requests sent to the gateway, by shopper action and answer "
            "(HTTP status, or 'timeout' / 'connection_error' when no answer came)",
            ("action", "method", "status"), registry=r)
        self.duration = Histogram(
            "loadgen_request_duration_seconds", "Time from sending a request to the gateway's full answer",
            ("action",), buckets=LATENCY_BUCKETS, registry=r)
        self.checkouts = Counter(
            "loadgen_checkouts_total", "Checkout requests by the payment version that answered (X-Payment-Version; "
            "'none' when payment did not answer) and by result", ("payment_version", "result"), registry=r)
        self.checkout_retries = Counter(
            "loadgen_checkout_retries_total", "Checkouts repeated with the same Idempotency-Key after a 5xx, "
            "timeout or connection error", registry=r)
        self.journeys = Counter(
            "loadgen_journeys_total", "Shopper visits completed, by kind", ("journey",), registry=r)
        self.target_rps = Gauge("loadgen_target_rps", "Requests per second the generator aims at (LOADGEN_RPS)",
                                registry=r)
        self.concurrency = Gauge("loadgen_concurrency", "Concurrent shoppers (LOADGEN_CONCURRENCY)", registry=r)
        self.gateway_ready = Gauge("loadgen_gateway_ready",
                                   "1 once the gateway answered /ready and shoppers are running, else 0", registry=r)


METRIC_NAMES = (
    "loadgen_requests_total",
    "loadgen_request_duration_seconds",
    "loadgen_checkouts_total",
    "loadgen_checkout_retries_total",
    "loadgen_journeys_total",
    "loadgen_target_rps",
    "loadgen_concurrency",
    "loadgen_gateway_ready",
)
