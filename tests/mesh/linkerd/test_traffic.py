"""Routing under Linkerd's intents on real Envoy: the 95/5 split of payment's HTTPRoutes, GET retries hiding
catalog's errors, writes never retried, Linkerd's rule that a body over 64 KiB is never retried, the route
timeout, and the unmeshed load balancer in front. Samples and tolerances are stated per test."""
from __future__ import annotations

import concurrent.futures
import math
import time
from collections import Counter

import requests

from devstack.mesh import probe
from tests.mesh.conftest import checkout_while_payment_is_slow
from tests.mesh.test_traffic import versions_seen
from tests.support import metric_value

CATALOG = "outbound|5001||catalog-service.e-commerce.svc.cluster.local"
CART = "outbound|5002||cart-service.e-commerce.svc.cluster.local"


def payment_health(linkerd) -> str:
    return linkerd.outbound_url("cart-service-1", "payment-service") + "/health"


def served(linkerd, instance: str, method: str, route: str) -> float:
    return metric_value(requests.get(linkerd.admin_urls[instance] + "/metrics", timeout=5).text, "http_requests_total",
                        method=method, route=route)


def test_payment_is_split_95_5_between_its_backends(linkerd):
    """400 calls through cart's sidecar: v2 expected 5%. linkerd2-proxy picks a backend at random (sd 1.1%);
    Envoy's locality scheduler interleaves the weights, so the count is near 20 every time. Accepted 2.5%..7.5%."""
    share = versions_seen(payment_health(linkerd), 400)["v2"] / 400
    assert 0.025 <= share <= 0.075, share


def test_retries_hide_catalogs_injected_errors(linkerd, faults):
    """Both catalog pods fail 5% of reads; catalog-service-reads retries 5xx twice. 400 GETs through the
    load balancer: at most 2 may fail (expected 0.05); the retry counter shows the hidden ones (expected 21,
    sd 4.5; accepted 5..45)."""
    for instance in ("catalog-service-1", "catalog-service-2"):
        faults.set(instance, error_rate=0.05)
    admin = linkerd.admin_url("api-gateway-1")
    before = probe.cluster_stat(admin, CATALOG, "upstream_rq_retry")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = Counter(pool.map(lambda _: requests.get(linkerd.gateway_url + "/api/products", timeout=10)
                                    .status_code, range(400)))
    retried = probe.cluster_stat(admin, CATALOG, "upstream_rq_retry") - before
    assert statuses[200] >= 398, statuses
    assert 5 <= retried <= 45, retried


def test_writes_are_never_retried_reads_are(linkerd, faults):
    """Cart answers every business request with 500. 10 POSTs (cart-service-default: no retry annotation) reach
    cart 10 times; 10 GETs (cart-service-reads, limit 2) 30 times. Deterministic."""
    faults.set("cart-service-1", error_rate=1.0)
    posts, gets = served(linkerd, "cart-service-1", "POST", "/cart/<user_id>/add"), served(
        linkerd, "cart-service-1", "GET", "/cart/<user_id>")
    for n in range(10):
        assert requests.post(f"{linkerd.gateway_url}/api/cart/l5d-{n}/add", json={"product_id": "1", "quantity": 1},
                             timeout=10).status_code == 500
        assert requests.get(f"{linkerd.gateway_url}/api/cart/l5d-{n}", timeout=10).status_code == 500
    assert served(linkerd, "cart-service-1", "POST", "/cart/<user_id>/add") - posts == 10
    assert served(linkerd, "cart-service-1", "GET", "/cart/<user_id>") - gets == 30


def test_a_body_over_64_kib_is_never_retried(linkerd, faults):
    """convert_retry keeps at most 64 KiB of a body for retries (linkerd/http/retry replay.rs: a longer one is
    sent once). Both catalog pods answer 500; GETs through api-gateway's sidecar on catalog-service-reads (limit
    2): a 64 KiB body is tried 3 times, 64 KiB + 1 once. Deterministic; Envoy counts the latter as
    retry_or_shadow_abandoned."""
    for instance in ("catalog-service-1", "catalog-service-2"):
        faults.set(instance, error_rate=1.0)
    url = linkerd.outbound_url("api-gateway-1", "catalog-service") + "/products"
    admin = linkerd.admin_url("api-gateway-1")

    def attempts(size: int) -> float:
        before = sum(served(linkerd, i, "GET", "/products") for i in ("catalog-service-1", "catalog-service-2"))
        assert requests.get(url, data=b"x" * size, timeout=10).status_code == 500
        return sum(served(linkerd, i, "GET", "/products") for i in ("catalog-service-1", "catalog-service-2")) - before

    abandoned = probe.cluster_stat(admin, CATALOG, "retry_or_shadow_abandoned")
    assert attempts(64 * 1024) == 3
    assert attempts(64 * 1024 + 1) == 1
    assert probe.cluster_stat(admin, CATALOG, "retry_or_shadow_abandoned") - abandoned == 1


def test_a_slow_payment_is_cut_by_the_route_timeout(linkerd, faults):
    """Every payment instance takes 5 s; payment-service-default has timeout.linkerd.io/request 3s, so cart's
    sidecar cuts the charge at 3 s (UT on route payment-service-default), cart cancels the attempt and answers 504
    "nothing charged" after about 3 s, and the cart keeps its item."""
    slow = checkout_while_payment_is_slow(linkerd, faults, f"l5d-slow-{int(time.time())}")
    checkout, timed_out = slow.answer, slow.timed_out
    assert checkout.status_code == 504 and checkout.json()["charged"] is False, checkout.text
    assert 2.9 <= slow.elapsed_s < 4.0, slow.elapsed_s
    assert slow.cart_items == [("2", 1)]
    assert timed_out and timed_out[-1]["route_name"] == "payment-service-default"
    assert math.isclose(timed_out[-1]["duration_ms"], 3000, abs_tol=300)


def test_the_load_balancer_in_front_passes_everything_to_api_gateways_policy(linkerd):
    """No ingress gateway: what the public may reach is api-gateway's Server routes. Its API and storefront
    (NetworkAuthentication `ingress`) and /metrics (any network, for Prometheus) answer; a path no route of
    the Server matches is 404 from its proxy, with linkerd2-proxy's l5d-proxy-error."""
    assert requests.get(linkerd.gateway_url + "/api", timeout=5).status_code == 200
    assert requests.get(linkerd.gateway_url + "/", timeout=5).status_code == 200
    assert requests.get(linkerd.gateway_url + "/metrics", timeout=5).status_code == 200
    missing = requests.get(linkerd.gateway_url + "/admin/faults", timeout=5)
    assert missing.status_code == 404 and missing.content == b""
    assert missing.headers["l5d-proxy-error"] == "no route found for request"
