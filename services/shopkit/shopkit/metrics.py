"""Every Prometheus metric the services export, defined once.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR is set (by shopkit.gunicorn_conf) before this module is imported, so each
worker writes its samples to files there and /metrics sums all workers; without it (tests, flask run) the default
in-process registry is used.
"""
from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

_BASE = ("service", "version")

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests served", _BASE + ("method", "route", "status"))
HTTP_DURATION = Histogram(
    "http_request_duration_seconds", "Time to serve an HTTP request", _BASE + ("method", "route", "status"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15))
UPSTREAM_REQUESTS = Counter(
    "upstream_requests_total", "Outbound calls to other services, by outcome", _BASE + ("upstream", "outcome"))
UPSTREAM_DURATION = Histogram(
    "upstream_request_duration_seconds", "Time of outbound calls to other services", _BASE + ("upstream",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15))
INJECTED_FAULTS = Counter(
    "injected_faults_total", "Failures and delays injected on purpose", _BASE + ("fault",))
CART_ITEMS_ADDED = Counter(
    "cart_items_added_total", "Units added to carts", _BASE)
CHECKOUTS = Counter(
    "checkouts_total", "Checkout attempts by result", _BASE + ("result",))
PAYMENTS = Counter(
    "payments_total", "Payments by result", _BASE + ("result",))
NOTIFICATIONS = Counter(
    "notifications_total", "Notifications accepted, by type", _BASE + ("type",))

# The names as Prometheus shows them (counters gain _total, histograms _bucket/_sum/_count); the manifest checks
# use this to prove every Grafana query names a metric that exists.
METRIC_NAMES = (
    "http_requests_total",
    "http_request_duration_seconds",
    "upstream_requests_total",
    "upstream_request_duration_seconds",
    "injected_faults_total",
    "cart_items_added_total",
    "checkouts_total",
    "payments_total",
    "notifications_total",
)


def render() -> tuple[bytes, str]:
    """The /metrics body: all workers' samples under gunicorn, this process's otherwise."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(DEFAULT_REGISTRY), CONTENT_TYPE_LATEST
