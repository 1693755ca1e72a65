"""Two behaviours where the meshes' files say different things or the mesh alone decides, checked on the local
mesh: what becomes of the canary's share when its only instance is sick, and a slow payment cut by the route
timeout. Each mesh is held to its own files (mesh_profile.py):
- Istio: a subset is a pool of its own (one Envoy cluster per destination of the weighted route); with its only
  instance ejected, v2's 5% are answered 503 "no healthy upstream" at once for baseEjectionTime.
- Linkerd: the route's backends are balanced by RandomAvailableSelection (linkerd2-proxy linkerd/distribute/src/
  service/random.rs): a backend whose every endpoint's breaker is open is skipped, so its share goes to v1
  (linkerd.io 2-edge reference/circuit-breaking: "the entire backend Service will be considered unavailable and
  a different backend may be selected").
"""
from __future__ import annotations

import secrets
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from devstack.mesh import probe  # local_mesh.py puts the repository on the path first

from .client import Shop, http
from .mesh_profile import profile
from .results import FAIL, PASS, Check, fmt_counter

CALLER = "cart-service-1"
TRIP_LIMIT = 300  # charges until v2 is out: with 5% of them reaching v2, 5 in a row take about 100
AFTER_TRIP = 200  # then: Istio fails ~10 of them fast (sd 3.1; none would happen with p 3.5e-5), Linkerd none
# ... sent 4 at a time and within this many seconds: the shortest time v2 stays out is Linkerd's min-penalty
# (10 s; Istio's baseEjectionTime is 30 s). Envoy then lets it back for 5 more failures where linkerd2-proxy
# would send it one probe request, so the window ends before that.
AFTER_TRIP_S = 8.0
FAST_S = 0.1
# Envoy takes up to about a second to stop sending to a host that outlier detection ejects again after it came
# back once (measured here with Envoy 1.40; envoyproxy/envoy#28304): the measurement starts after that.
EJECTION_SETTLE_S = 1.5
PAYMENT_DELAY_MS = 5000  # longer than payment's route timeout (3 s in both meshes' files)
ROUTE_TIMEOUT_S = 3.0


def charge_as_cart(url: str) -> tuple[int | None, str, float]:
    """A new charge of 0.01 through cart's sidecar, as cart sends one (a fresh order id as the Idempotency-Key):
    only a new charge meets payment's faults, so only such a call can make a sick instance fail. Returns the
    status, the version that answered ("" when no payment instance did) and the seconds it took."""
    order_id = f"ord_{secrets.token_hex(10)}"
    answer = http("POST", url, {"order_id": order_id, "user_id": "qt-ejection", "amount": "0.01", "currency": "USD"},
                  {"Idempotency-Key": order_id})
    return answer.status, answer.headers.get("x-service-version", ""), answer.seconds


def check_sick_canary(inventory: probe.Inventory, settle: Callable[[probe.Inventory], None]) -> Check:
    """payment-service-v2-1 (v2's only instance) made sick; charges through cart's sidecar until the mesh takes
    it out, then AFTER_TRIP more: where did v2's 5% go?"""
    name, mesh = "sick canary's share", profile(inventory.data)
    settle(inventory)
    sick = inventory.workload("payment-service-v2-1")
    admin = inventory.workload(CALLER)["envoy_admin"]
    faults = f"{sick['app_admin']}/admin/faults"
    url = inventory.outbound(CALLER, "payment-service") + "/payments"
    if not http("PUT", faults, {"enabled": True, "sick": True}).ok:
        return Check(name, FAIL, f"could not make {sick['instance']} sick at {faults}")
    try:
        before: Counter[str] = Counter()
        while sick["sidecar_inbound"] not in probe.ejected_hosts(admin, mesh.v2_cluster):
            if sum(before.values()) >= TRIP_LIMIT:
                return Check(name, FAIL, f"v2 answered {fmt_counter(before)} but was never taken out")
            before[str(charge_as_cart(url)[0])] += 1
        time.sleep(EJECTION_SETTLE_S)
        deadline = time.monotonic() + AFTER_TRIP_S
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: charge_as_cart(url) if time.monotonic() < deadline else None,
                                    range(AFTER_TRIP)))
    finally:
        http("DELETE", faults)
    after: Counter[str] = Counter(f"{s} {v or '(no payment)'}" for s, v, _ in filter(None, answers))
    fast = sum(1 for s, v, t in filter(None, answers) if s == 503 and not v and t < FAST_S)
    calls = sum(after.values())
    v1 = sum(n for k, n in after.items() if k.endswith(" v1"))
    v2 = sum(n for k, n in after.items() if k.endswith(" v2"))
    # v1's own injected timeouts (504, no version) are neither: counted apart
    slow = sum(1 for s, v, t in filter(None, answers) if not v and t >= FAST_S)
    figures = {"calls": calls, "failed_fast": fast, "v1": v1, "v2": v2, "other": slow, "to_trip": sum(before.values()),
               "failed_share": round(fast / max(calls, 1), 4), "answers": dict(after)}
    if v2:
        return Check(name, FAIL, f"v2 still answered after it was taken out: {fmt_counter(after)}", figures)
    if calls < AFTER_TRIP // 2:
        return Check(name, FAIL, f"only {calls} charges within {AFTER_TRIP_S:g} s: too slow to measure", figures)
    if mesh.sick_v2 == "fail-fast":
        ok = 1 <= fast <= 25
        text = (f"v2 ejected after {figures['to_trip']} charges; of the next {calls}, {fast} ({fast / calls:.1%}) "
                f"failed fast with 503 (no healthy upstream) and {v1} went to v1: a subset is a pool of its own, so "
                "v2's share keeps coming and fails")
    else:
        ok = fast == 0
        text = (f"v2 taken out after {figures['to_trip']} charges; of the next {calls}, {v1} went to v1 and none "
                "failed fast: a backend with no available endpoint is skipped and its share moves to the other")
    return Check(name, PASS if ok else FAIL, text if ok else f"unexpected for {mesh.mesh}: {fmt_counter(after)}",
                 figures)


def check_route_timeout(shop: Shop, inventory: probe.Inventory) -> Check:
    """Every payment instance takes 5 s to charge; cart -> payment's write route cuts it at 3 s, cart settles the
    attempt and answers 504 "nothing charged", and the cart keeps its item."""
    name = "route timeout"
    payments = inventory.workloads("payment-service")
    user = f"qt-timeout-{secrets.token_hex(4)}"
    for entry in payments:
        http("PUT", entry["app_admin"] + "/admin/faults", {"enabled": True, "delay_ms": PAYMENT_DELAY_MS,
                                                           "error_rate": 0, "decline_rate": 0, "timeout_rate": 0})
    try:
        added = http("POST", f"{shop.base}/api/cart/{user}/add", {"product_id": "2", "quantity": 1})
        checkout = http("POST", f"{shop.base}/api/cart/{user}/checkout", None, {"Idempotency-Key": f"{user}-k"},
                        timeout=30)
        elapsed = checkout.seconds
    finally:
        for entry in payments:
            http("DELETE", entry["app_admin"] + "/admin/faults")
    cart = http("GET", f"{shop.base}/api/cart/{user}").body
    items = cart.get("items", []) if isinstance(cart, dict) else []
    kept = [(i.get("product_id"), i.get("quantity")) for i in items] == [("2", 1)]
    charged = checkout.body.get("charged") if isinstance(checkout.body, dict) else None
    figures = {"status": checkout.status, "seconds": round(elapsed, 2), "charged": charged, "cart_kept": kept}
    ok = added.ok and checkout.status == 504 and charged is False and kept and \
        ROUTE_TIMEOUT_S - 0.1 <= elapsed < ROUTE_TIMEOUT_S + 1.5
    text = (f"payment slowed to {PAYMENT_DELAY_MS / 1000:g} s: the checkout ended after {elapsed:.1f} s with "
            f"{checkout.status} (charged: {charged}), the cart kept its item: {kept}")
    return Check(name, PASS if ok else FAIL, text, figures)
