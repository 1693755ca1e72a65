"""The figures behind the printed summary, and the one place every request, checkout and visit is recorded.

Each record goes to the Prometheus metrics and to these counters at once, so the summary in the log and the
/metrics endpoint can never tell different stories.
"""
from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from typing import Any

from .metrics import Metrics

RESERVOIR_SIZE = 20_000  # latencies kept for the whole-run percentiles: a uniform sample, bounded memory


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (q in 0..1); None for no values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def is_error(status: str) -> bool:
    """Anything but a 2xx answer: 4xx/5xx statuses, timeouts and connection errors."""
    return not (status.isdigit() and 200 <= int(status) < 300)


class Stats:
    def __init__(self, metrics: Metrics, rng: random.Random | None = None):
        self.metrics = metrics
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.requests = 0
        self.by_status: Counter[str] = Counter()
        self.checkouts: Counter[tuple[str, str]] = Counter()
        self.checkout_retries = 0
        self.journeys: Counter[str] = Counter()
        self._reservoir: list[float] = []
        self._seen = 0
        self._period_started = self.started
        self._period_requests = 0
        self._period_latencies: list[float] = []

    # ---- recording (called by the shopper threads) ----

    def request(self, action: str, method: str, status: str, seconds: float) -> None:
        self.metrics.requests.labels(action, method, status).inc()
        self.metrics.duration.labels(action).observe(seconds)
        with self._lock:
            self.requests += 1
            self.by_status[status] += 1
            self._period_requests += 1
            self._period_latencies.append(seconds)
            self._seen += 1
            if len(self._reservoir) < RESERVOIR_SIZE:
                self._reservoir.append(seconds)
            else:
                slot = self._rng.randrange(self._seen)
                if slot < RESERVOIR_SIZE:
                    self._reservoir[slot] = seconds

    def checkout(self, payment_version: str, result: str) -> None:
        self.metrics.checkouts.labels(payment_version, result).inc()
        with self._lock:
            self.checkouts[(payment_version, result)] += 1

    def checkout_retry(self) -> None:
        self.metrics.checkout_retries.inc()
        with self._lock:
            self.checkout_retries += 1

    def journey(self, kind: str) -> None:
        self.metrics.journeys.labels(kind).inc()
        with self._lock:
            self.journeys[kind] += 1

    # ---- reading (called by the summary loop) ----

    def summary(self, final: bool = False) -> dict[str, Any]:
        """Totals since the start plus, for a periodic summary, rate and latency of the period since the last one."""
        now = time.monotonic()
        with self._lock:
            if final:
                window_s, window_requests, latencies = now - self.started, self.requests, list(self._reservoir)
            else:
                window_s, window_requests, latencies = (now - self._period_started, self._period_requests,
                                                        self._period_latencies)
            self._period_started, self._period_requests, self._period_latencies = now, 0, []
            by_status = dict(sorted(self.by_status.items()))
            checkouts = dict(self.checkouts)
            retries = self.checkout_retries
            journeys = dict(sorted(self.journeys.items()))
            total = self.requests
        latencies.sort()
        by_version: Counter[str] = Counter()
        by_result: Counter[str] = Counter()
        for (version, result), count in checkouts.items():
            by_version[version] += count
            by_result[result] += count
        return {
            "final": final,
            "elapsed_s": round(now - self.started, 1),
            "window_s": round(window_s, 1),
            "window_requests": window_requests,
            "window_rps": round(window_requests / window_s, 2) if window_s > 0 else 0.0,
            "requests": total,
            "errors": sum(count for status, count in by_status.items() if is_error(status)),
            "errors_by_status": {status: count for status, count in by_status.items() if is_error(status)},
            "checkouts": sum(by_version.values()),
            "checkouts_by_version": dict(sorted(by_version.items())),
            "checkouts_by_result": dict(sorted(by_result.items())),
            "approved_by_version": {v: c for (v, r), c in sorted(checkouts.items()) if r == "approved"},
            "checkout_retries": retries,
            "journeys": journeys,
            "latency_ms": {name: None if value is None else round(value * 1000, 1)
                           for name, value in (("p50", percentile(latencies, 0.50)),
                                               ("p95", percentile(latencies, 0.95)),
                                               ("p99", percentile(latencies, 0.99)))},
        }


def describe(summary: dict[str, Any]) -> str:
    """One line a person reads in `kubectl logs`; the same figures are fields of the JSON log line."""
    def counts(mapping: dict[str, int]) -> str:
        return " ".join(f"{key}={value}" for key, value in mapping.items()) or "none"

    latency = summary["latency_ms"]
    if latency["p50"] is None:
        latency_text = "no requests"
    else:
        latency_text = f"p50 {latency['p50']:g} ms, p95 {latency['p95']:g} ms, p99 {latency['p99']:g} ms"
    scope = "whole run" if summary["final"] else "last"
    return (f"{'final summary' if summary['final'] else 'summary'}: {scope} {summary['window_s']:g} s "
            f"{summary['window_requests']} requests ({summary['window_rps']:g}/s), latency {latency_text}; "
            f"total {summary['requests']} requests, "
            f"errors {summary['errors']} ({counts(summary['errors_by_status'])}); "
            f"checkouts {summary['checkouts']} by payment version {counts(summary['checkouts_by_version'])}, "
            f"by result {counts(summary['checkouts_by_result'])}, retried {summary['checkout_retries']}")
