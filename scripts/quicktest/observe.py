"""What the mesh and Prometheus report: mTLS (istio_requests_total or istioctl; Linkerd's request_total) and scrape targets."""
from __future__ import annotations

import re
import time
import urllib.parse
from typing import Any, Callable

from .client import http
from .kube import Kube, _command, first_line
from .results import FAIL, PASS, SKIP, Check
from .settings import SCRAPED_APPS


class Prometheus:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def get(self, path: str, **params: str) -> tuple[Any, str]:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        reply = http("GET", f"{self.url}{path}{query}", timeout=10)
        if not reply.ok or not isinstance(reply.body, dict) or reply.body.get("status") != "success":
            return None, f"Prometheus at {self.url}: {reply.describe()}"
        return reply.body.get("data"), ""

    def query(self, promql: str) -> tuple[list[dict[str, Any]] | None, str]:
        data, error = self.get("/api/v1/query", query=promql)
        return (data.get("result", []) if data else None), error


def check_mtls(kube: Kube, mesh: str | None, prometheus: Prometheus | None, tools: dict[str, str],
               window_s: int = 600) -> Check:
    """What the mesh's own metrics say about the requests between our pods over the test window (`window_s`)."""
    name = "mTLS"
    if mesh is None:
        return Check(name, SKIP, "no mesh locally: services talk plain HTTP on loopback")
    if mesh == "istio":
        return _mtls_istio(kube, prometheus, tools.get("istioctl", "istioctl"), window_s)
    return _mtls_linkerd(kube, prometheus, window_s)


def _mtls_istio(kube: Kube, prometheus: Prometheus | None, istioctl: str, window_s: int) -> Check:
    name, notes = "mTLS", []
    if prometheus:
        result, error = prometheus.query(
            'sum by (connection_security_policy) (increase(istio_requests_total{reporter="destination",'
            f'destination_workload_namespace="{kube.namespace}"}}[{window_s}s]))')
        by_policy = {r["metric"].get("connection_security_policy", ""): float(r["value"][1]) for r in result or []}
        if by_policy:
            figures = {"source": "istio_requests_total", "window_s": window_s,
                       "requests": {k: round(v) for k, v in by_policy.items()}}
            mutual = by_policy.get("mutual_tls", 0.0)
            plain = sum(v for k, v in by_policy.items() if k != "mutual_tls")
            text = f"istio_requests_total over the test window ({window_s}s): {round(mutual)} mutual_tls, {round(plain)} other"
            if mutual > 0 and plain < 0.5:
                return Check(name, PASS, text, figures)
            return Check(name, FAIL, text + ": some requests into the namespace were not mTLS", figures)
        notes.append(error or "no istio_requests_total yet")
    pods = kube.read("get", "pods", "-l", "app=payment-service", "-o", "jsonpath={.items[0].metadata.name}")
    described = _command([istioctl, "x", "describe", "pod", pods.stdout.strip(), "-n", kube.namespace], 60)
    mode = re.search(r"Workload mTLS mode:\s*(\S+)", described.stdout)
    if described.returncode == 0 and mode:
        figures = {"source": "istioctl x describe", "pod": pods.stdout.strip(), "mode": mode.group(1)}
        text = f"istioctl x describe pod {pods.stdout.strip()}: workload mTLS mode {mode.group(1)}"
        return Check(name, PASS if mode.group(1) == "STRICT" else FAIL, text, figures)
    notes.append(first_line(described.stderr) or "istioctl x describe showed no mTLS mode")
    return Check(name, SKIP, "could not observe mTLS: " + "; ".join(notes))


def _mtls_linkerd(kube: Kube, prometheus: Prometheus | None, window_s: int) -> Check:
    """request_total{tls} of the proxies' outbound requests between our pods, over the test window: not a snapshot
    (`linkerd viz edges` shows the connections of the moment only). Linkerd docs, reference/proxy-metrics: `tls` is
    "true" if the request's connection was secured with TLS."""
    name = "mTLS"
    if not prometheus:
        return Check(name, SKIP, "no Prometheus with the proxies' metrics (linkerd-viz or monitoring/) found; "
                                 "`linkerd viz edges -n e-commerce deploy` shows the connections of the moment")
    result, error = prometheus.query(
        f'sum by (tls) (increase(request_total{{direction="outbound",namespace="{kube.namespace}",'
        f'dst_namespace="{kube.namespace}"}}[{window_s}s]))')
    by_tls = {r["metric"].get("tls", ""): float(r["value"][1]) for r in result or []}
    if not by_tls:
        return Check(name, SKIP, f"could not observe mTLS: {error or 'no request_total between our pods yet'}")
    figures = {"source": "request_total tls label", "window_s": window_s,
               "requests": {k: round(v) for k, v in by_tls.items()}}
    secured, other = by_tls.get("true", 0.0), sum(v for k, v in by_tls.items() if k != "true")
    text = (f"request_total over the test window ({window_s}s) between our pods: {round(secured)} tls=true, "
            f"{round(other)} other")
    return Check(name, PASS if secured > 0 and other < 0.5 else FAIL, text, figures)


def check_prometheus_targets(prometheus: Prometheus | None, expected: dict[str, Callable[[dict[str, Any]], bool]],
                             why_missing: str, settle_s: float = 0.0) -> Check:
    """Every expected service has a target that is up. Right after a deploy Prometheus may not have discovered or
    scraped a new pod yet (no target, or health "unknown"): that is waited out for up to `settle_s`; "down" is not."""
    name = "Prometheus targets"
    if prometheus is None:
        return Check(name, SKIP, why_missing)
    deadline = time.monotonic() + settle_s
    while True:
        data, error = prometheus.get("/api/v1/targets", state="active")
        if data is None:
            return Check(name, FAIL, error)
        targets = data.get("activeTargets", [])
        figures: dict[str, Any] = {"url": prometheus.url, "targets": len(targets), "up": {}}
        missing, settling = [], False
        for service, matches in expected.items():
            mine = [t for t in targets if matches(t)]
            up = [t for t in mine if t.get("health") == "up"]
            figures["up"][service] = f"{len(up)}/{len(mine)}"
            if not up:
                settling = settling or all(t.get("health") == "unknown" for t in mine)
                last_error = next((t.get("lastError") for t in mine if t.get("lastError")), "")
                missing.append(f"{service} ({'no target' if not mine else 'down: ' + last_error})")
        if not missing:
            listed = ", ".join(f"{k} {v}" for k, v in figures["up"].items())
            return Check(name, PASS, f"{len(expected)} services up ({listed})", figures)
        if not settling or time.monotonic() >= deadline:
            return Check(name, FAIL, f"not scraped: {', '.join(missing)}", figures)
        time.sleep(5)


def cluster_target_matchers() -> dict[str, Callable[[dict[str, Any]], bool]]:
    """A target belongs to an app when one of its labels names it (app=..., pod=<app>-..., ...)."""
    def matcher(app: str) -> Callable[[dict[str, Any]], bool]:
        return lambda target: any(isinstance(v, str) and (v == app or v.startswith(app + "-"))
                                  for v in target.get("labels", {}).values())
    return {app: matcher(app) for app in SCRAPED_APPS}


def local_target_matchers(service_urls: dict[str, str]) -> dict[str, Callable[[dict[str, Any]], bool]]:
    """Locally a target belongs to a service when it scrapes the service's host:port."""
    def matcher(url: str) -> Callable[[dict[str, Any]], bool]:
        port = urllib.parse.urlsplit(url).port
        return lambda target: urllib.parse.urlsplit(target.get("scrapeUrl", "")).port == port
    return {name: matcher(url) for name, url in service_urls.items()}

