"""The gateway's own rules in process, against a real HTTP server standing in for its neighbours."""
import pytest

from tests.support import FakeUpstream


@pytest.fixture
def gateway_with(monkeypatch, tmp_path):
    monkeypatch.setenv("SHOPKIT_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("UPSTREAM_TIMEOUT_S", "1")

    def make(upstream: FakeUpstream):
        monkeypatch.setenv("CATALOG_URL", upstream.url)
        monkeypatch.setenv("CART_URL", upstream.url)
        from gateway_service.app import create_app
        return create_app().test_client()
    return make


def test_relays_status_body_and_checkout_headers(gateway_with):
    body = b'{"order_id": "ord_x", "status": "paid"}'
    with FakeUpstream(status=201, body=body) as cart:
        client = gateway_with(cart)
        response = client.post("/api/cart/ann/checkout", headers={"Idempotency-Key": "k-1"})
        assert response.status_code == 201 and response.data == body
        assert cart.requests[-1]["idempotency-key"] == "k-1"


def test_names_a_key_when_the_client_sends_none(gateway_with):
    with FakeUpstream(status=201) as cart:
        gateway_with(cart).post("/api/cart/ann/checkout")
        assert len(cart.requests[-1]["idempotency-key"]) == 36  # a uuid4


def test_relays_4xx_answers_unchanged(gateway_with):
    body = b'{"error": "field \'quantity\' must be between 1 and 99"}'
    with FakeUpstream(status=400, body=body) as cart:
        response = gateway_with(cart).post("/api/cart/ann/add", json={"product_id": "1", "quantity": 0})
        assert response.status_code == 400 and response.data == body


def test_checks_ids_before_calling_anyone(gateway_with):
    with FakeUpstream() as neighbour:
        client = gateway_with(neighbour)
        assert client.get("/api/cart/a%20b").status_code == 400
        assert client.get("/api/orders/ord_short").status_code == 400
        assert neighbour.requests == []


def test_admin_of_the_services_is_not_reachable_through_the_api(gateway_with):
    with FakeUpstream() as neighbour:
        client = gateway_with(neighbour)
        assert client.put("/api/admin/faults", json={"sick": True}).status_code == 404
        assert neighbour.requests == []


def test_api_index_lists_every_public_route(gateway_with):
    with FakeUpstream() as neighbour:
        routes = {r["path"] for r in gateway_with(neighbour).get("/api").get_json()["routes"]}
    assert {"/api/products", "/api/cart/<user_id>/checkout", "/api/users/<user_id>/notifications"} <= routes
