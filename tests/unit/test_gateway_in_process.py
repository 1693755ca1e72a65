"""The gateway's own rules in process, against a real HTTP server standing in for its neighbours."""
import re

import pytest

from tests.support import FakeUpstream

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture
def gateway_with(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOPKIT_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("UPSTREAM_TIMEOUT_S", "1")

    def make(upstream: FakeUpstream, **env: str):
        monkeypatch.setenv("CATALOG_URL", upstream.url)
        monkeypatch.setenv("CART_URL", upstream.url)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        from gateway_service.app import create_app
        return create_app().test_client()
    return make


# What Envoy does to every HTTP/1.1 header name it forwards: lowercase.
LOWERCASE_CHECKOUT_HEADERS = {"x-payment-version": "v2", "idempotent-replayed": "true", "idempotency-key": "k-1",
                              "retry-after": "3"}


def test_relays_status_body_and_the_checkout_headers_whatever_their_case(gateway_with):
    body = b'{"order_id": "ord_x", "status": "paid"}'
    with FakeUpstream(status=200, body=body, headers=LOWERCASE_CHECKOUT_HEADERS) as cart:
        client = gateway_with(cart)
        response = client.post("/api/cart/ann/checkout", headers={"Idempotency-Key": "k-1"})
        assert response.status_code == 200 and response.data == body
        assert cart.requests[-1]["idempotency-key"] == "k-1"
        assert response.headers["X-Payment-Version"] == "v2"
        assert response.headers["Idempotent-Replayed"] == "true"
        assert response.headers["Idempotency-Key"] == "k-1"
        assert response.headers["Retry-After"] == "3"


def test_relays_no_header_outside_its_list(gateway_with):
    with FakeUpstream(status=201, headers={"set-cookie": "a=b", "x-internal": "1"}) as cart:
        response = gateway_with(cart).post("/api/cart/ann/checkout")
        assert "Set-Cookie" not in response.headers and "X-Internal" not in response.headers


def test_names_a_key_when_the_client_sends_none_and_returns_it(gateway_with):
    with FakeUpstream(status=201) as cart:
        response = gateway_with(cart).post("/api/cart/ann/checkout")
        sent = cart.requests[-1]["idempotency-key"]
        assert UUID4.match(sent) and response.headers["Idempotency-Key"] == sent


@pytest.mark.parametrize("given", [None, "client-key-1"])
def test_every_checkout_error_carries_the_key(gateway_with, given):
    """The gateway gave up on a slow cart (504): the client must still learn the key to repeat the attempt with."""
    headers = {"Idempotency-Key": given} if given else {}
    with FakeUpstream(status=201, delay_s=1.0) as slow_cart:
        response = gateway_with(slow_cart, CHECKOUT_TIMEOUT_S="0.3").post("/api/cart/ann/checkout", headers=headers)
        assert response.status_code == 504
        key = response.headers["Idempotency-Key"]
        assert key == given if given else UUID4.match(key)
        assert response.get_json()["idempotency_key"] == key
    with FakeUpstream(status=502, body=b"<html>bad gateway</html>", content_type="text/html") as broken_cart:
        response = gateway_with(broken_cart).post("/api/cart/ann/checkout", headers=headers)
        assert response.status_code == 502 and response.headers["Idempotency-Key"]


def test_a_malformed_key_is_refused_before_calling_cart(gateway_with):
    with FakeUpstream(status=201) as cart:
        response = gateway_with(cart).post("/api/cart/ann/checkout", headers={"Idempotency-Key": "has spaces"})
        assert response.status_code == 400 and "Idempotency-Key" in response.get_json()["error"]
        assert "Idempotency-Key" not in response.headers and cart.requests == []


def test_relays_4xx_answers_unchanged(gateway_with):
    body = b'{"error": "field \'quantity\' must be between 1 and 99"}'
    with FakeUpstream(status=400, body=body) as cart:
        response = gateway_with(cart).post("/api/cart/ann/add", json={"product_id": "1", "quantity": 0})
        assert response.status_code == 400 and response.data == body


def test_head_is_relayed_as_get_and_answered_without_a_body(gateway_with):
    with FakeUpstream(status=200, body=b'{"products": [], "count": 0, "currency": "USD"}') as catalog:
        response = gateway_with(catalog).head("/api/products")
        assert response.status_code == 200 and response.data == b""
        assert catalog.calls[-1][0] == "GET"


def test_checks_ids_before_calling_anyone(gateway_with):
    with FakeUpstream() as neighbour:
        client = gateway_with(neighbour)
        assert client.get("/api/cart/a%20b").status_code == 400
        assert client.get("/api/cart/abc%0A").status_code == 400
        assert client.get("/api/orders/ord_short").status_code == 400
        assert neighbour.requests == []


@pytest.mark.parametrize("method,path", [("PUT", "/admin/faults"), ("GET", "/admin/faults"),
                                         ("DELETE", "/admin/faults"), ("PUT", "/api/admin/faults")])
def test_the_admin_surface_is_not_on_the_public_port(gateway_with, method, path):
    with FakeUpstream() as neighbour:
        response = gateway_with(neighbour).open(path, method=method, json={"sick": True})
        assert response.status_code == 404 and response.get_json()["error"].startswith("no such endpoint")
        assert neighbour.requests == []


def test_the_admin_app_serves_faults_and_probes(gateway_with):
    from shopkit.app import service_of

    with FakeUpstream() as neighbour:
        client = gateway_with(neighbour)
        admin = service_of(client.application).admin_app.test_client()
        assert admin.put("/admin/faults", json={"sick": True}).get_json()["sick"] is True
        assert client.get("/api/products").status_code == 500  # the business port feels it
        assert admin.get("/health").status_code == 200 and admin.get("/ready").status_code == 200
        assert admin.get("/api/products").status_code == 404


def test_api_index_lists_every_public_route(gateway_with):
    with FakeUpstream() as neighbour:
        routes = {r["path"] for r in gateway_with(neighbour).get("/api").get_json()["routes"]}
    assert {"/api/products", "/api/cart/<user_id>/checkout", "/api/users/<user_id>/notifications"} <= routes
