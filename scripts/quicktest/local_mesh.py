"""The checks that need a mesh, run against the local one (./run-local.sh --mesh istio), found from its inventory.

Where the cluster checks ask kubectl, istioctl or Prometheus, these ask the proxies themselves: each Envoy's
admin /stats (Envoy's standard counters stand in for istio_requests_total), the local CA's certificates (a
request with the `default` identity is what a throwaway pod's sidecar would send), and the apps' admin ports
(what a port-forward to 8090 reaches: /ready, /metrics, /admin/faults). The standard library only, like the rest
of quick-test.
"""
from __future__ import annotations

import secrets
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from .canary import check_canary
from .client import Shop, http
from .results import FAIL, PASS, Check, fmt_counter, progress
from .shop_checks import check_cart, check_catalog, check_checkout, check_get_success

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from devstack.mesh import probe  # noqa: E402  (standard library only)

PAYMENT = "payment-service.e-commerce.svc.cluster.local"
CATALOG = "outbound|5001||catalog-service.e-commerce.svc.cluster.local"
CALLER = "cart-service-1"  # payment's one allowed caller: quick-test speaks through its sidecar where it must
UNAUTHORISED = "e-commerce/default"
ALLOWED = "e-commerce/cart-service"
PAYMENT_HANG_S = 12.0  # payment's injected timeouts hang 10 s (FAULT_TIMEOUT_SECONDS)
EJECTION_PROBES = 80
EJECTION_WAIT_S = 120.0  # POSTs with a sick v1 pod: about 38 reach it; 5 in a row eject it
CHARGE_ROUTES = ("/payments", "/payments/<key>/cancel")  # payment's two POST routes: a charge, cart's cancel


def gateway_reachable(inventory: probe.Inventory) -> bool:
    return http("GET", inventory.gateway_url + "/health", timeout=2).ok


def probed(entry: dict) -> bool:
    """An app with an admin port that serves /ready (the services; not Redis, not loadgen's metrics)."""
    return bool(entry["app_admin"]) and entry["service"] != "loadgen"


def check_workloads(inventory: probe.Inventory) -> Check:
    """Every app ready on its admin port (where the kubelet probes) and every proxy LIVE (like `kubectl get pods`
    2/2 READY)."""
    problems, ready = [], 0
    entries = [inventory.data["ingress"], *inventory.workloads()]
    for entry in entries:
        if http("GET", entry["envoy_admin"] + "/ready", timeout=3).status != 200:
            problems.append(f"{entry['instance']} sidecar not LIVE")
        elif probed(entry) and not http("GET", entry["app_admin"] + "/ready", timeout=3).ok:
            problems.append(f"{entry['instance']} app not ready")
        else:
            ready += 1
    figures = {"instances": len(entries), "ready": ready}
    if problems:
        return Check("workloads ready", FAIL, "; ".join(problems), figures)
    return Check("workloads ready", PASS, f"{ready} instances: every app ready and its Envoy LIVE (ingress included)",
                 figures)


def payment_posts(inventory: probe.Inventory) -> dict[str, float]:
    """The POSTs payment's own instances counted, by route: charges and cart's cancels (their admin ports)."""
    return {route: probe.requests_served(inventory, "payment-service", "POST", route) for route in CHARGE_ROUTES}


def sidecar_counter(inventory: probe.Inventory, instance: str, suffix: str, prefix: str = "") -> float:
    return sum(v for k, v in probe.stats(inventory.workload(instance)["envoy_admin"], prefix).items()
               if k.endswith(suffix))


def check_no_post_retry(inventory: probe.Inventory, run: Callable[[], Check]) -> tuple[Check, Check]:
    """Runs the canary (one checkout attempt per shopper) and counts, around it, what payment received: every
    request cart's sidecar sent (charges, and the cancels cart sends after an unclear answer) reached payment
    exactly once, and there was at most one charge per attempt."""
    before = payment_posts(inventory)
    sent = sidecar_counter(inventory, CALLER, ".upstream_rq_total", "cluster.outbound|5003|")
    retried = sidecar_counter(inventory, CALLER, ".upstream_rq_retry", "cluster.outbound|5003|")
    canary = run()
    sent = sidecar_counter(inventory, CALLER, ".upstream_rq_total", "cluster.outbound|5003|") - sent

    def seen() -> dict[str, float]:
        now = payment_posts(inventory)
        return {route: now[route] - before[route] for route in CHARGE_ROUTES}
    # Payments the route timeout cut (the injected 10 s hangs) are counted by payment when they end.
    deadline, counted = time.monotonic() + PAYMENT_HANG_S, seen()
    while sum(counted.values()) < sent and time.monotonic() < deadline:
        time.sleep(0.5)
        counted = seen()
    charges, cancels = counted["/payments"], counted["/payments/<key>/cancel"]
    retried = sidecar_counter(inventory, CALLER, ".upstream_rq_retry", "cluster.outbound|5003|") - retried
    attempts = canary.figures.get("calls", 0) + canary.figures.get("without_version", 0)
    figures = {"checkout_attempts": attempts, "payment_posts": charges + cancels, "charges": charges,
               "cancels": cancels, "sidecar_requests": sent, "retries": retried}
    text = (f"{attempts:g} checkout attempts, cart's sidecar sent {sent:g} payment requests, payment counted "
            f"{charges:g} charges + {cancels:g} cancels of unclear ones; Envoy retries on payment: {retried:g}")
    ok = retried == 0 and charges + cancels == sent and 0 < charges <= attempts
    return canary, Check("POST never retried", PASS if ok else FAIL, text, figures)


def check_get_retries(shop: Shop, inventory: probe.Inventory, samples: int) -> Check:
    gateway = inventory.workload("api-gateway-1")["envoy_admin"]
    before = probe.cluster_stat(gateway, CATALOG, "upstream_rq_retry")
    check = check_get_success(shop, samples, "the local mesh")
    retried = probe.cluster_stat(gateway, CATALOG, "upstream_rq_retry") - before
    check.figures["envoy_retries"] = retried
    check.reason += f"; api-gateway's sidecar retried {retried:g} catalog reads (upstream_rq_retry)"
    return check


def check_authorization(inventory: probe.Inventory) -> Check:
    """A caller with the `default` identity (no policy allows it) is refused by payment; cart's identity is not.
    The body is invalid on purpose: if a policy wrongly let a caller through, payment answers 400, charges nothing."""
    name = "authorization"
    refused = probe.call_as(inventory, UNAUTHORISED, "payment-service-v1-1", "POST", "/payments", b'{"order_id": "qt"}')
    allowed = probe.call_as(inventory, ALLOWED, "payment-service-v1-1", "POST", "/payments", b'{"order_id": "qt"}')
    figures = {"default_identity": refused.status, "cart_identity": allowed.status,
               "default_body": refused.body.decode(errors="replace")[:60]}
    if refused.status != 403 or refused.body != b"RBAC: access denied":
        return Check(name, FAIL, f"the default identity got {refused.status or refused.error} from payment, not "
                                 "403 RBAC: access denied", figures)
    if allowed.status in (None, 403):
        return Check(name, FAIL, f"cart's identity got {allowed.status or allowed.error} from payment", figures)
    return Check(name, PASS, f"payment refused spiffe://cluster.local/ns/e-commerce/sa/default with 403 'RBAC: "
                             f"access denied'; cart's identity got {allowed.status} (payment's own answer)", figures)


def check_mtls(inventory: probe.Inventory) -> Check:
    name = "mTLS"
    plain = probe.call_as(inventory, None, "payment-service-v1-1", "GET", "/health")
    secured = probe.call_as(inventory, ALLOWED, "payment-service-v1-1", "GET", "/health")
    expected = "spiffe://cluster.local/ns/e-commerce/sa/payment-service"
    figures = {"plaintext": plain.status or plain.error, "mtls_status": secured.status, "peer": list(secured.peer_ids)}
    if plain.status is not None:
        return Check(name, FAIL, f"plaintext to payment's STRICT inbound got HTTP {plain.status}", figures)
    if secured.status != 200 or secured.peer_ids != (expected,):
        return Check(name, FAIL, f"mTLS as cart got {secured.status or secured.error}, peer {secured.peer_ids}", figures)
    return Check(name, PASS, f"plaintext to payment's inbound refused ({plain.error.split(':')[0]}); over mTLS the "
                             f"server certificate names {expected}", figures)


def charge_as_cart(url: str) -> int | None:
    """A new charge of 0.01 through cart's sidecar, as cart sends one (a fresh order id as the Idempotency-Key):
    only a new charge meets payment's faults, so only such a call can make a sick instance fail."""
    order_id = f"ord_{secrets.token_hex(10)}"
    return http("POST", url, {"order_id": order_id, "user_id": "qt-ejection", "amount": "0.01", "currency": "USD"},
                {"Idempotency-Key": order_id}).status


def check_ejection(inventory: probe.Inventory) -> Check:
    """Makes payment-service-v1-1 sick (on its admin port, like a port-forward), charges through cart's sidecar
    until Envoy ejects it, then heals it; it stays out of the pool for baseEjectionTime (30 s)."""
    name = "circuit breaker (ejection)"
    sick = inventory.workload("payment-service-v1-1")
    admin = inventory.workload(CALLER)["envoy_admin"]
    cluster = f"outbound|5003|v1|{PAYMENT}"
    faults = f"{sick['app_admin']}/admin/faults"
    before = probe.cluster_stat(admin, cluster, "outlier_detection.ejections_enforced_total")
    if not http("PUT", faults, {"sick": True}).ok:
        return Check(name, FAIL, f"could not make {sick['instance']} sick at {faults}")
    url = inventory.outbound(CALLER, "payment-service") + "/payments"
    statuses: Counter[str] = Counter()
    try:
        for _ in range(EJECTION_PROBES):
            statuses[str(charge_as_cart(url))] += 1
            if probe.cluster_stat(admin, cluster, "outlier_detection.ejections_active") >= 1:
                break
        active = probe.cluster_stat(admin, cluster, "outlier_detection.ejections_active")
        after = Counter(str(charge_as_cart(url)) for _ in range(20))
    finally:
        http("DELETE", faults)
    figures = {"before_ejection": dict(statuses), "after_ejection": dict(after), "ejections_active": active,
               "ejections_enforced": probe.cluster_stat(admin, cluster, "outlier_detection.ejections_enforced_total") - before}
    if active < 1:
        return Check(name, FAIL, f"{sick['instance']} answered 500 ({fmt_counter(statuses)}) but was not ejected", figures)
    if after.get("500"):
        return Check(name, FAIL, f"after the ejection the sick instance still answered: {fmt_counter(after)}", figures)
    return Check(name, PASS, f"{sick['instance']} made sick: ejected after {sum(statuses.values())} calls "
                             f"({fmt_counter(statuses)}); outlier_detection.ejections_active = {active:g}; the next 20 "
                             f"calls never reached it ({fmt_counter(after)}); healed, it returns after baseEjectionTime (30 s, "
                             "longer after each repeated ejection)",
                 figures)


def check_metrics(inventory: probe.Inventory) -> Check:
    """What Prometheus would scrape: each app's /metrics (on its admin port) and each Envoy's /stats/prometheus."""
    missing = []
    entries = inventory.workloads()
    for entry in entries:
        if probed(entry) and "http_requests_total" not in probe.text(entry["app_admin"] + "/metrics"):
            missing.append(f"{entry['instance']} /metrics")
        if "envoy_cluster_upstream_rq" not in probe.text(entry["envoy_admin"] + "/stats/prometheus"):
            missing.append(f"{entry['instance']} sidecar /stats/prometheus")
    if missing:
        return Check("metrics", FAIL, "not served: " + ", ".join(missing))
    return Check("metrics", PASS, f"{len(entries)} workloads: the apps' /metrics and the sidecars' /stats/prometheus answer "
                                  "(Envoy's standard stats stand in for Istio's istio_requests_total)",
                 {"instances": len(entries)})


def ejected(inventory: probe.Inventory) -> float:
    stats = probe.stats(inventory.workload(CALLER)["envoy_admin"], "outlier_detection.ejections_active")
    return sum(v for k, v in stats.items() if PAYMENT in k)


def wait_for_earlier_ejections(inventory: probe.Inventory, limit_s: float = EJECTION_WAIT_S) -> None:
    """An instance an earlier run ejected stays out for baseEjectionTime, longer each time again: wait for it, so
    the canary measures the split and not a pool with a pod missing."""
    deadline = time.monotonic() + limit_s
    if ejected(inventory):
        progress("a payment instance is still ejected by the circuit breaker (an earlier run made it sick); "
                 f"waiting up to {limit_s:g} s for it to return")
    while ejected(inventory) and time.monotonic() < deadline:
        time.sleep(2)


def run_local_mesh_checks(inventory: probe.Inventory, samples: int) -> tuple[list[Check], Shop]:
    shop = Shop(inventory.gateway_url)
    checks = [check_workloads(inventory)]
    wait_for_earlier_ejections(inventory)
    # The canary (with the no-retry count around it) before the idempotent checkouts: a payment that hangs
    # (the seed's 10 s timeouts) past its route timeout is counted by payment only when it ends, so one started
    # just before the count would land in it.
    steps: list[tuple[str, Callable[[], Check | tuple[Check, ...]]]] = [
        ("catalog via gateway", lambda: check_catalog(shop)),
        ("cart add/read/remove", lambda: check_cart(shop)),
        ("canary split 95/5", lambda: check_no_post_retry(
            inventory, lambda: check_canary(shop, samples, "the local mesh", []))),
        ("checkout (idempotent retry)", lambda: check_checkout(shop)[0]),
        ("GET success with faults", lambda: check_get_retries(shop, inventory, samples)),
        ("authorization", lambda: check_authorization(inventory)),
        ("mTLS", lambda: check_mtls(inventory)),
        ("circuit breaker (ejection)", lambda: check_ejection(inventory)),
        ("metrics", lambda: check_metrics(inventory)),
    ]
    for name, step in steps:
        progress(name)
        started = time.monotonic()
        try:
            result = step()
        except Exception as err:  # noqa: BLE001 - one broken check must not hide the others
            result = Check(name, FAIL, f"the check itself failed: {type(err).__name__}: {err}")
        for check in result if isinstance(result, tuple) else (result,):
            check.figures.setdefault("seconds", round(time.monotonic() - started, 1))
            checks.append(check)
    return checks, shop

