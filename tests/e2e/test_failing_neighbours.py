"""Neighbours that are down, slow or answer something that is not JSON: JSON 502/503/504, never a stack trace."""
import requests

from devstack.stack import free_ports

from tests.support import FakeUpstream, add


def test_upstream_down_is_503(lone_service):
    closed = f"http://127.0.0.1:{free_ports(1)[0]}"
    with lone_service("api-gateway", CATALOG_URL=closed, CART_URL=closed) as gateway:
        response = requests.get(gateway.url + "/api/products", timeout=10)
        assert response.status_code == 503
        assert "catalog is unreachable" in response.json()["error"]
        assert response.json()["upstream"] == "catalog"


def test_slow_upstream_is_504(lone_service):
    with FakeUpstream(delay_s=2.0) as slow, \
            lone_service("api-gateway", CATALOG_URL=slow.url, CART_URL=slow.url, UPSTREAM_TIMEOUT_S="0.5") as gateway:
        response = requests.get(gateway.url + "/api/products", timeout=10)
        assert response.status_code == 504
        assert "did not answer within 0.5s" in response.json()["error"]


def test_html_error_page_is_502_not_a_parse_error(lone_service):
    with FakeUpstream(status=500, body=b"<html><h1>Internal Server Error</h1></html>", content_type="text/html") as bad, \
            lone_service("api-gateway", CATALOG_URL=bad.url, CART_URL=bad.url) as gateway:
        response = requests.get(gateway.url + "/api/products", timeout=10)
        assert response.status_code == 502
        error = response.json()["error"]
        assert "without a JSON object" in error and "Expecting value" not in error


def test_proxy_plain_text_403_is_502_with_the_reason(lone_service):
    """What an Istio RBAC denial looks like to the app: 403 text/plain 'RBAC: access denied'."""
    with FakeUpstream(status=403, body=b"RBAC: access denied", content_type="text/plain") as denying, \
            lone_service("api-gateway", CATALOG_URL=denying.url, CART_URL=denying.url) as gateway:
        response = requests.get(gateway.url + "/api/products", timeout=10)
        assert response.status_code == 502 and "RBAC: access denied" in response.json()["error"]


def test_trace_and_request_headers_are_forwarded(lone_service):
    sent = {
        "x-request-id": "req-123", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": "vendor=1", "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1",
        "x-b3-parentspanid": "05e3ac9a4f6e3b90", "x-b3-sampled": "1", "x-b3-flags": "0", "b3": "80f198ee-e457-1",
        "l5d-ctx-trace": "abc", "l5d-ctx-deadline": "xyz", "x-user": "tester",
    }
    with FakeUpstream() as capture, lone_service("api-gateway", CATALOG_URL=capture.url, CART_URL=capture.url) as gw:
        response = requests.get(gw.url + "/api/products", headers={**sent, "x-not-forwarded": "1"}, timeout=10)
        assert response.status_code == 200
        assert response.headers["X-Request-Id"] == "req-123"
        received = capture.requests[-1]
        for name, value in sent.items():
            assert received.get(name) == value, name
        assert "x-not-forwarded" not in received


def test_gateway_starts_request_id_and_trace_when_missing(lone_service):
    with FakeUpstream() as capture, lone_service("api-gateway", CATALOG_URL=capture.url, CART_URL=capture.url) as gw:
        response = requests.get(gw.url + "/api/products", timeout=10)
        received = capture.requests[-1]
        assert received["x-request-id"] == response.headers["X-Request-Id"]
        assert received["traceparent"].startswith("00-") and len(received["traceparent"]) == 55


def test_payment_unreachable_is_503_and_cart_unchanged(stack, lone_service, user, http):
    closed = f"http://127.0.0.1:{free_ports(1)[0]}"
    with lone_service("cart", CATALOG_URL=stack.urls["catalog"], PAYMENT_URL=closed,
                      NOTIFICATION_URL=stack.urls["notification"], REDIS_URL=stack.redis_url) as cart:
        requests.post(f"{cart.url}/cart/{user}/add", json={"product_id": "7", "quantity": 2}, timeout=5)
        before = requests.get(f"{cart.url}/cart/{user}", timeout=5).json()
        response = requests.post(f"{cart.url}/cart/{user}/checkout", headers={"Idempotency-Key": "k-down"}, timeout=10)
        assert response.status_code == 503
        assert "payment is unreachable" in response.json()["error"] and "unchanged" in response.json()["error"]
        assert requests.get(f"{cart.url}/cart/{user}", timeout=5).json() == before


def test_redis_down_is_503_then_data_survives_restart(stack, user, http):
    """AOF: the cart and the order written before Redis stops are there after it starts again."""
    add(http, stack, user, "12", 2)
    order = requests.post(f"{stack.urls['api-gateway']}/api/cart/{user}/checkout",
                          headers={"Idempotency-Key": "before-restart"}, timeout=10).json()
    add(http, stack, user, "13", 1)
    stack.stop_redis()
    try:
        down = requests.get(f"{stack.urls['api-gateway']}/api/cart/{user}", timeout=10)
        assert down.status_code == 503 and "Redis" in down.json()["error"]
        assert requests.get(stack.urls["cart"] + "/ready", timeout=5).status_code == 503
        assert requests.get(stack.urls["cart"] + "/health", timeout=5).status_code == 200
    finally:
        stack.start_redis()
    cart = requests.get(f"{stack.urls['api-gateway']}/api/cart/{user}", timeout=10).json()
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [("13", 1)]
    stored = requests.get(f"{stack.urls['api-gateway']}/api/orders/{order['order_id']}", timeout=5).json()
    assert stored["total"] == "199.00"
