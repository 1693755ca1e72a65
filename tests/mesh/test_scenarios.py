"""Each file of istio/scenarios/ applied to the running mesh, as `kubectl apply -f` would, with its documented
effect measured; the proxies take it within 2 s and no request in flight is lost. Back to istio/ after each."""
from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import Counter

import requests

from devstack.mesh import probe
from tests.mesh.test_traffic import versions_seen

CATALOG = "outbound|5001||catalog-service.e-commerce.svc.cluster.local"
DELIVERY_LIMIT_S = 2.0


def payment_health(mesh) -> str:
    return mesh.outbound_url("cart-service-1", "payment-service") + "/health"


def test_canary_100_v2_sends_everything_to_v2(mesh, scenario):
    applied = scenario("istio/scenarios/canary-100-v2.yaml")
    assert applied.changed == ["cart-service-1"] and applied.delivery_s < DELIVERY_LIMIT_S
    assert versions_seen(payment_health(mesh), 200) == {"v2": 200}


def test_canary_50_50_splits_evenly(mesh, scenario):
    """600 calls: v2 expected 50%, sd 2.0%; accepted 41..59% (4.4 sd)."""
    assert scenario("istio/scenarios/canary-50-50.yaml").delivery_s < DELIVERY_LIMIT_S
    share = versions_seen(payment_health(mesh), 600)["v2"] / 600
    assert 0.41 <= share <= 0.59, share


def test_rollback_v1_then_back_to_the_overlay(mesh, scenario):
    scenario("istio/scenarios/canary-100-v2.yaml")
    scenario("istio/scenarios/rollback-v1.yaml")
    assert versions_seen(payment_health(mesh), 200) == {"v1": 200}
    mesh.apply("reset", "")
    share = versions_seen(payment_health(mesh), 400)["v2"] / 400  # 95/5 again: sd 1.1%, accepted 0.5..10%
    assert 0.005 <= share <= 0.10, share


def test_delete_removes_the_virtual_service_like_kubectl_delete(mesh, scenario):
    """Without payment's VirtualService the sidecar balances over all three pods (no subsets): v2 gets about a
    third. 600 calls: expected 33%, sd 1.9%; accepted 24..43%."""
    scenario("istio/scenarios/canary-50-50.yaml", verb="delete")
    share = versions_seen(payment_health(mesh), 600)["v2"] / 600
    assert 0.24 <= share <= 0.43, share


def test_fault_injection_for_one_user(mesh, inventory, scenario):
    """x-user: fault-demo: catalog reads wait 2 s (delay, DI), payment calls get 503 from the client sidecar
    (abort, FI) without reaching payment, the charge and cart's cancel alike; other users are untouched."""
    scenario("istio/scenarios/fault-injection.yaml")
    started = time.monotonic()
    assert requests.get(mesh.gateway_url + "/api/products", headers={"x-user": "fault-demo"}, timeout=10).ok
    assert time.monotonic() - started >= 2.0
    started = time.monotonic()
    assert requests.get(mesh.gateway_url + "/api/products", timeout=10).ok
    assert time.monotonic() - started < 1.0

    def payments() -> float:
        return sum(probe.requests_served(inventory, "payment-service", "POST", route)
                   for route in ("/payments", "/payments/<key>/cancel"))

    before = payments()
    user = f"fault-demo-{int(time.time())}"
    headers = {"x-user": "fault-demo"}
    assert requests.post(f"{mesh.gateway_url}/api/cart/{user}/add", json={"product_id": "3", "quantity": 1},
                         headers=headers, timeout=10).ok
    checkout = requests.post(f"{mesh.gateway_url}/api/cart/{user}/checkout", headers=headers, timeout=30)
    assert checkout.status_code == 503 and "fault filter abort" in checkout.json()["error"]
    assert requests.get(f"{mesh.gateway_url}/api/cart/{user}", timeout=10).json()["item_count"] == 1
    assert payments() == before
    flags = {e["response_flags"] for e in probe.wait_for_log(
        mesh.logs_dir / "cart-service-1.access.log", lambda e: e["x_user"] == "fault-demo" and e["response_flags"] == "FI")}
    assert flags == {"FI"}


def test_circuit_breaker_overflows_under_concurrency_only(mesh, scenario):
    """catalog's pool shrinks to 1 connection and 1 pending request: 16 concurrent readers for 2 s overflow it
    (503, UO; Envoy's upstream_rq_pending_overflow grows), one reader at a time never does."""
    scenario("istio/scenarios/circuit-breaker.yaml")
    admin = mesh.admin_url("api-gateway-1")
    overflow = probe.cluster_stat(admin, CATALOG, "upstream_rq_pending_overflow")
    one_at_a_time = Counter(requests.get(mesh.gateway_url + "/api/products", timeout=10).status_code for _ in range(30))
    assert one_at_a_time == {200: 30}
    deadline = time.monotonic() + 2

    def reader(_):
        seen = Counter()
        with requests.Session() as http:
            while time.monotonic() < deadline:
                seen[http.get(mesh.gateway_url + "/api/products", timeout=10).status_code] += 1
        return seen
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = sum(pool.map(reader, range(16)), Counter())
    assert statuses[503] > 0 and statuses[200] > 0, statuses
    assert probe.cluster_stat(admin, CATALOG, "upstream_rq_pending_overflow") - overflow >= statuses[503] * 0.9


def test_no_request_in_flight_is_lost_while_configuration_changes(mesh, mesh_faults, scenario):
    """Slow reads (catalog answers after 0.8 s, inside the 1 s per-try timeout) are in flight while catalog's cluster is replaced twice
    (circuit-breaker.yaml, then back to istio/), and 4 clients keep calling payment while its routes change 4
    times: every one of them gets 200."""
    for instance in ("catalog-service-1", "catalog-service-2"):
        mesh_faults.set(instance, delay_ms=800)
    stop = threading.Event()
    results: list[int] = []

    def keep_calling():
        with requests.Session() as http:
            while not stop.is_set():
                results.append(http.get(payment_health(mesh), timeout=10).status_code)
    callers = [threading.Thread(target=keep_calling) for _ in range(4)]
    for t in callers:
        t.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            slow = [pool.submit(requests.get, mesh.gateway_url + "/api/products", timeout=10) for _ in range(3)]
            time.sleep(0.3)
            scenario("istio/scenarios/circuit-breaker.yaml")
            slow += [pool.submit(requests.get, mesh.gateway_url + "/api/products", timeout=10)]
            time.sleep(0.3)
            mesh.apply("reset", "")
            assert [f.result().status_code for f in slow] == [200] * 4
        for step in ("canary-50-50.yaml", "canary-100-v2.yaml", "rollback-v1.yaml"):
            scenario(f"istio/scenarios/{step}")
        mesh.apply("reset", "")
    finally:
        stop.set()
        for t in callers:
            t.join()
    assert len(results) > 50 and Counter(results) == {200: len(results)}
