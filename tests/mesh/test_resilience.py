"""Outlier detection on real Envoy: a sick instance is ejected and its share fails fast, and a POST that fails is
never repeated by the mesh. A stack of its own: ejections last baseEjectionTime (30 s) and would leak into other
tests.

Only a new charge meets payment's faults (its ledger answers repeats and refuses bad requests first), so the calls
here are real charges of 0.01 with a fresh key each, in this mesh's own payment-ledger."""
from __future__ import annotations

import concurrent.futures
import json
import secrets
import time
from collections import Counter

import pytest
import requests

from devstack.mesh import probe
from tests.mesh.conftest import running_mesh

PAYMENT = "payment-service.e-commerce.svc.cluster.local"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with running_mesh(tmp_path_factory, "mesh-resilience") as stack:
        yield stack


def post_payments(mesh, count: int, concurrency: int = 1) -> list[tuple[int, float, str]]:
    """(status, seconds, instance or '') of new charges through cart's sidecar (route `writes`: no retries), as
    cart sends them: a fresh order id as the Idempotency-Key."""
    url = mesh.outbound_url("cart-service-1", "payment-service") + "/payments"

    def one(_):
        order_id = f"ord_{secrets.token_hex(10)}"
        started = time.monotonic()
        response = requests.post(url, json={"order_id": order_id, "user_id": "resilience", "amount": "0.01",
                                            "currency": "USD"}, headers={"Idempotency-Key": order_id}, timeout=10)
        return response.status_code, time.monotonic() - started, response.headers.get("X-Service-Instance", "")
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(count)))


def test_a_sick_v1_instance_is_ejected_and_the_other_serves(mesh, mesh_faults):
    """payment-service-v1-1 fails every charge; after 5 in a row (consecutive5xxErrors) it is ejected. 60 POSTs
    (about 57 to v1, half of those to the sick one) are enough; then 200 POSTs see no 500 at all (every one
    approved), both subsets answer, and Envoy's gauge says one host is ejected."""
    mesh_faults.set("payment-service-v1-1", sick=True)
    admin = mesh.admin_url("cart-service-1")
    warmup = post_payments(mesh, 60)
    assert Counter(s for s, _, _ in warmup)[500] >= 5
    assert probe.cluster_stat(admin, f"outbound|5003|v1|{PAYMENT}", "outlier_detection.ejections_active") == 1
    after = post_payments(mesh, 200, concurrency=4)
    statuses = Counter(s for s, _, _ in after)
    instances = Counter(i for _, _, i in after)
    assert statuses == {201: 200}, statuses
    assert "payment-service-v1-1" not in instances and instances["payment-service-v1-2"] > 150, instances


def test_the_lone_v2_instance_ejected_makes_its_share_fail_fast(mesh, mesh_faults):
    """Istio's caveat of one pod per subset: v2 is ejected and, for baseEjectionTime, its 5% of the calls get 503
    "no healthy upstream" at once (UH) instead of moving to v1. 400 POSTs after the ejection: expected 20 such
    503s, sd 4.4; accepted 5..40; each answered in under 100 ms."""
    mesh_faults.set("payment-service-v2-1", sick=True)
    admin = mesh.admin_url("cart-service-1")
    deadline = time.monotonic() + 60
    while probe.cluster_stat(admin, f"outbound|5003|v2|{PAYMENT}", "outlier_detection.ejections_active") < 1:
        assert time.monotonic() < deadline, "v2 was never ejected"
        post_payments(mesh, 20, concurrency=4)
    after = post_payments(mesh, 400, concurrency=4)
    fast_fail = [(s, t) for s, t, i in after if s == 503]
    assert 5 <= len(fast_fail) <= 40, Counter(s for s, _, _ in after)
    assert all(t < 0.1 for _, t in fast_fail), fast_fail
    assert Counter(s for s, _, _ in after)[500] == 0  # the sick instance itself is never reached
    logged = probe.wait_for_log(mesh.logs_dir / "cart-service-1.access.log",
                                lambda e: e["path"] == "/payments" and e["response_flags"] == "UH")
    assert logged and logged[-1]["upstream_cluster"] == f"outbound|5003|v2|{PAYMENT}"


def test_a_failing_checkout_reaches_payment_once_per_attempt(mesh, inventory, mesh_faults):
    """Payment answers 500 on every instance; each checkout is one attempt (no retry on the POST route). Payment's
    own count of POST /payments equals the number of attempts it answered (the others failed fast while an
    instance was ejected, without reaching it), and Envoy counted no retry on that route. Cart cancels each
    unclear attempt (settle-by-cancel): at most one cancel per attempt reaches payment."""
    for instance in mesh.of_app("payment-service"):
        mesh_faults.set(instance.name, error_rate=1.0)

    def payments_seen() -> float:
        return probe.requests_served(inventory, "payment-service", "POST", "/payments")

    def cancels_seen() -> float:
        return probe.requests_served(inventory, "payment-service", "POST", "/payments/<key>/cancel")

    before, cancels_before = payments_seen(), cancels_seen()
    admin = mesh.admin_url("cart-service-1")
    retries_before = sum(v for k, v in probe.stats(admin, PAYMENT).items() if k.endswith(".upstream_rq_retry"))
    answered_by_payment = 0
    for n in range(12):
        user = f"fail-{n}-{int(time.time())}"
        assert requests.post(f"{mesh.gateway_url}/api/cart/{user}/add", json={"product_id": "1", "quantity": 1},
                             timeout=10).status_code == 200
        checkout = requests.post(f"{mesh.gateway_url}/api/cart/{user}/checkout",
                                 headers={"Idempotency-Key": f"{user}-k"}, timeout=30)
        assert checkout.status_code == 503, checkout.text
        answered_by_payment += checkout.json().get("injected") is True  # payment's own 500, relayed by cart
    retries = sum(v for k, v in probe.stats(admin, PAYMENT).items() if k.endswith(".upstream_rq_retry"))
    assert payments_seen() - before == answered_by_payment > 0
    assert 0 < cancels_seen() - cancels_before <= 12
    assert retries == retries_before
    assert json.loads(checkout.text)["error"]
