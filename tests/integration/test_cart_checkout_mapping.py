"""How cart answers each kind of payment answer: a real cart (gunicorn) and Redis, payment played by a real HTTP
server that answers what the test needs."""
import pytest
import requests

from tests.support import FakeUpstream, LoneService

PRODUCT = b'{"id": "1", "name": "Shoes", "price": "10.00", "currency": "USD"}'
CATALOG = {"/products": (200, b'{"products": [' + PRODUCT + b'], "count": 1, "currency": "USD"}'),
           "/products/1": (200, PRODUCT)}


@pytest.mark.parametrize("payment_status,payment_body,cart_status,message", [
    (400, b'{"error": "field \'amount\' must be more than 0"}', 502, "payment rejected the request (HTTP 400)"),
    (500, b'{"error": "injected fault: payment instance is sick", "injected": true, "fault": "sick"}', 503,
     "payment failed (HTTP 500)"),
    (403, b"RBAC: access denied", 502, "RBAC: access denied"),
    (504, b"upstream request timeout", 504, "payment answered HTTP 504"),
    (503, b"no healthy upstream", 503, "no healthy upstream"),
])
def test_payment_answers_map_to_clear_errors_and_keep_the_cart(redis_server, tmp_path, payment_status, payment_body,
                                                              cart_status, message):
    with FakeUpstream(by_path=CATALOG) as catalog, \
            FakeUpstream(status=payment_status, body=payment_body) as payment, \
            FakeUpstream(status=201) as notification, \
            LoneService("cart", {"CATALOG_URL": catalog.url, "PAYMENT_URL": payment.url,
                                 "NOTIFICATION_URL": notification.url, "REDIS_URL": redis_server.url}, tmp_path) as cart:
        user = f"map-{payment_status}"
        requests.delete(f"{cart.url}/cart/{user}", timeout=5)
        assert requests.post(f"{cart.url}/cart/{user}/add", json={"product_id": "1", "quantity": 2},
                             timeout=5).status_code == 200
        response = requests.post(f"{cart.url}/cart/{user}/checkout", headers={"Idempotency-Key": "k"}, timeout=10)
        assert response.status_code == cart_status, response.text
        assert message in response.json()["error"]
        assert requests.get(f"{cart.url}/cart/{user}", timeout=5).json()["item_count"] == 2
        sent = payment.requests[-1]
        assert sent["idempotency-key"].startswith("ord_") and len(sent["idempotency-key"]) == 24


@pytest.mark.parametrize("product", [b'{"id": "1"}', b'{"id": "1", "name": "Shoes", "price": 10}',
                                     b'{"id": "1", "name": "Shoes", "price": "ten"}'])
def test_a_catalog_answer_of_the_wrong_shape_is_502_not_500(redis_server, tmp_path, product):
    with FakeUpstream(by_path={"/products/1": (200, product)}) as catalog, \
            LoneService("cart", {"CATALOG_URL": catalog.url, "REDIS_URL": redis_server.url}, tmp_path) as cart:
        response = requests.post(f"{cart.url}/cart/shape/add", json={"product_id": "1", "quantity": 1}, timeout=5)
        assert response.status_code == 502 and "unexpected product" in response.json()["error"]
