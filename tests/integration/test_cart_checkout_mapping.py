"""How cart answers each kind of payment answer: a real cart (gunicorn) and Redis, payment played by a real HTTP
server that answers what the test needs."""
import contextlib

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
        charge = next(headers for headers, (method, path, _) in zip(payment.requests, payment.calls)
                      if (method, path) == ("POST", "/payments"))
        assert charge["idempotency-key"].startswith("ord_") and len(charge["idempotency-key"]) == 24
        assert response.headers["Idempotency-Key"] == "k"


@pytest.mark.parametrize("product", [b'{"id": "1"}', b'{"id": "1", "name": "Shoes", "price": 10}',
                                     b'{"id": "1", "name": "Shoes", "price": "ten"}',
                                     b'{"id": "1", "name": "Shoes", "price": "1e30"}',
                                     b'{"id": "1", "name": "Shoes", "price": "12.345"}',
                                     b'{"id": "1", "name": "Shoes", "price": "-0.01"}',
                                     b'{"id": "1", "name": "Shoes", "price": "10000.01"}',
                                     b'{"id": "1", "name": "Shoes", "price": "NaN"}'])
def test_a_catalog_answer_of_the_wrong_shape_is_502_not_500(redis_server, tmp_path, product):
    with FakeUpstream(by_path={"/products/1": (200, product)}) as catalog, \
            LoneService("cart", {"CATALOG_URL": catalog.url, "REDIS_URL": redis_server.url}, tmp_path) as cart:
        response = requests.post(f"{cart.url}/cart/shape/add", json={"product_id": "1", "quantity": 1}, timeout=5)
        assert response.status_code == 502 and "unexpected product" in response.json()["error"]


def test_a_price_out_of_range_at_checkout_is_502_and_keeps_the_cart(redis_server, tmp_path):
    """The product was fine when added; by checkout the catalog lists it at 1e30 (which Decimal cannot quantize)."""
    listing = b'{"products": [{"id": "1", "name": "Shoes", "price": "1e30", "currency": "USD"}], "count": 1}'
    with FakeUpstream(by_path={**CATALOG, "/products": (200, listing)}) as catalog, FakeUpstream(status=201) as payment, \
            LoneService("cart", {"CATALOG_URL": catalog.url, "PAYMENT_URL": payment.url,
                                 "REDIS_URL": redis_server.url}, tmp_path) as cart:
        requests.delete(f"{cart.url}/cart/price-jump", timeout=5)
        assert requests.post(f"{cart.url}/cart/price-jump/add", json={"product_id": "1", "quantity": 1},
                             timeout=5).status_code == 200
        response = requests.post(f"{cart.url}/cart/price-jump/checkout", headers={"Idempotency-Key": "pj"}, timeout=10)
        assert response.status_code == 502 and "price" in response.json()["error"], response.text
        assert payment.calls == []
        assert requests.get(f"{cart.url}/cart/price-jump", timeout=5).json()["item_count"] == 1


APPROVAL = b'{"payment_id": "pay_1", "status": "approved", "amount": "10.00", "currency": "USD", "version": "v1"}'


@pytest.mark.parametrize("listed_id", [b'["1"]', b'{"id": "1"}'])
def test_a_listing_with_an_id_that_is_not_a_string_is_not_a_500(redis_server, tmp_path, listed_id):
    """An id Python cannot use as a dict key (a list, an object) once gave a TypeError and a 500 at checkout; such an
    entry is skipped like any other that is not a product, and the cart's product is priced from its own entry."""
    odd = b'{"id": ' + listed_id + b', "name": "Shoes", "price": "10.00"}'
    listing = b'{"products": [' + odd + b", " + PRODUCT + b'], "count": 2}'
    user = f"odd-listing-{len(listed_id)}"
    with FakeUpstream(by_path={**CATALOG, "/products": (200, listing)}) as catalog, \
            FakeUpstream(status=201, body=APPROVAL) as payment, FakeUpstream(status=201) as notification, \
            LoneService("cart", {"CATALOG_URL": catalog.url, "PAYMENT_URL": payment.url,
                                 "NOTIFICATION_URL": notification.url, "REDIS_URL": redis_server.url}, tmp_path) as cart:
        requests.delete(f"{cart.url}/cart/{user}", timeout=5)
        assert requests.post(f"{cart.url}/cart/{user}/add", json={"product_id": "1", "quantity": 1},
                             timeout=5).status_code == 200
        response = requests.post(f"{cart.url}/cart/{user}/checkout", timeout=10)
        assert response.status_code == 201 and response.json()["total"] == "10.00", response.text


def test_an_order_total_over_payments_limit_is_refused_before_payment(redis_server, tmp_path):
    product = b'{"id": "1", "name": "Tent", "price": "9999.99", "currency": "USD"}'
    catalog_paths = {"/products": (200, b'{"products": [' + product + b'], "count": 1}'), "/products/1": (200, product)}
    with FakeUpstream(by_path=catalog_paths) as catalog, FakeUpstream(status=201) as payment, \
            LoneService("cart", {"CATALOG_URL": catalog.url, "PAYMENT_URL": payment.url,
                                 "REDIS_URL": redis_server.url}, tmp_path) as cart:
        requests.delete(f"{cart.url}/cart/big-spender", timeout=5)
        requests.post(f"{cart.url}/cart/big-spender/add", json={"product_id": "1", "quantity": 11}, timeout=5)
        response = requests.post(f"{cart.url}/cart/big-spender/checkout", timeout=10)
        assert response.status_code == 409 and "100000.00" in response.json()["error"], response.text
        assert payment.calls == []


class ScriptedPayment:
    """Payment as the test needs it: a charge that is slower than cart waits, then a cancel that fails, approves or
    cancels. Records every call, so the test can count the charges."""

    def __init__(self):
        self.charge = "slow"  # or "approve"
        self.cancel = "down"  # or "approved", "cancelled"
        self.approvals: dict[str, dict] = {}

    def __call__(self, method, path, body):
        import json
        import time

        if path == "/payments":
            request = json.loads(body)
            approval = {"payment_id": f"pay_{len(self.approvals):016d}", "status": "approved", "version": "v1",
                        "order_id": request["order_id"], "amount": request["amount"], "currency": "USD",
                        "receipt": "APPROVED"}
            self.approvals[request["order_id"]] = approval
            if self.charge == "slow":
                time.sleep(1.0)
            return 201, json.dumps(approval).encode()
        key = path.split("/")[2]
        if self.cancel == "down":
            return 503, b'{"error": "payment ledger unavailable"}'
        if self.cancel == "approved":
            return 200, json.dumps(self.approvals[key]).encode()
        return 200, json.dumps({"status": "cancelled", "idempotency_key": key, "version": "v1"}).encode()


@contextlib.contextmanager
def cart_with_scripted_payment(redis_server, tmp_path, user: str, quantity: int):
    """A real cart (payment waits 0.5 s) in front of a ScriptedPayment, `user`'s cart holding `quantity` shoes."""
    script = ScriptedPayment()
    with FakeUpstream(by_path=CATALOG) as catalog, FakeUpstream(respond=script) as payment, \
            LoneService("cart", {"CATALOG_URL": catalog.url, "PAYMENT_URL": payment.url, "REDIS_URL": redis_server.url,
                                 "PAYMENT_TIMEOUT_S": "0.5"}, tmp_path) as cart:
        requests.delete(f"{cart.url}/cart/{user}", timeout=5)
        requests.post(f"{cart.url}/cart/{user}/add", json={"product_id": "1", "quantity": quantity}, timeout=5)
        yield cart, payment, script


def charges(payment: FakeUpstream) -> list[str]:
    return [path for method, path, _ in payment.calls if (method, path) == ("POST", "/payments")]


def test_an_unsettled_checkout_blocks_other_keys_until_its_retry_settles_it(redis_server, tmp_path):
    """Payment did not answer in time and the cancel could not reach it: nobody knows whether it charged. Another
    key is refused, naming the key in flight; the retry of that key finds the approval and stores the order."""
    user = "unsettled"
    with cart_with_scripted_payment(redis_server, tmp_path, user, 2) as (cart, payment, script):
        first = requests.post(f"{cart.url}/cart/{user}/checkout", headers={"Idempotency-Key": "key-a"}, timeout=10)
        assert first.status_code == 504 and "not known" in first.json()["error"], first.text
        other = requests.post(f"{cart.url}/cart/{user}/checkout", headers={"Idempotency-Key": "key-b"}, timeout=10)
        assert other.status_code == 409 and other.json()["in_flight_idempotency_key"] == "key-a", other.text
        assert requests.get(f"{cart.url}/cart/{user}", timeout=5).json()["item_count"] == 2

        script.cancel = "approved"  # payment comes back: the first attempt had charged
        retry = requests.post(f"{cart.url}/cart/{user}/checkout", headers={"Idempotency-Key": "key-a"}, timeout=10)
        assert retry.status_code == 201, retry.text
        assert retry.json()["total"] == "20.00" and retry.json()["payment"]["payment_id"] == "pay_0000000000000000"
        assert len(charges(payment)) == 1, "the retry must not charge again"
        assert requests.get(f"{cart.url}/cart/{user}", timeout=5).json()["item_count"] == 0
        replay = requests.post(f"{cart.url}/cart/{user}/checkout", headers={"Idempotency-Key": "key-a"}, timeout=10)
        assert replay.status_code == 200 and replay.json() == retry.json()


def test_a_cancelled_attempt_frees_the_key_for_a_new_charge_of_the_cart_as_it_is(redis_server, tmp_path):
    user = "cancelled"
    with cart_with_scripted_payment(redis_server, tmp_path, user, 1) as (cart, payment, script):
        script.cancel = "cancelled"
        first = requests.post(f"{cart.url}/cart/{user}/checkout", headers={"Idempotency-Key": "key-c"}, timeout=10)
        assert first.status_code == 504 and "nothing was charged" in first.json()["error"], first.text
        requests.post(f"{cart.url}/cart/{user}/add", json={"product_id": "1", "quantity": 2}, timeout=5)
        script.charge = "approve"
        retry = requests.post(f"{cart.url}/cart/{user}/checkout", headers={"Idempotency-Key": "key-c"}, timeout=10)
        assert retry.status_code == 201 and retry.json()["total"] == "30.00", retry.text
        keys = [headers["idempotency-key"] for headers, (method, path, _) in zip(payment.requests, payment.calls)
                if (method, path) == ("POST", "/payments")]
        assert len(keys) == 2 and keys[0] != keys[1], "a new attempt is a new charge under a new payment key"


def test_another_key_settles_an_unsettled_checkout_that_charged_nothing_and_buys(redis_server, tmp_path):
    """The first attempt's outcome was unknown; by the time a second key arrives payment can be asked again and says
    it never charged: the second key settles the first (cancelled) and buys the cart, with one charge in all."""
    user = "settled-by-other"
    with cart_with_scripted_payment(redis_server, tmp_path, user, 3) as (cart, payment, script):
        first = requests.post(f"{cart.url}/cart/{user}/checkout", headers={"Idempotency-Key": "key-d"}, timeout=10)
        assert first.status_code == 504 and "not known" in first.json()["error"], first.text
        script.cancel, script.charge = "cancelled", "approve"
        second = requests.post(f"{cart.url}/cart/{user}/checkout", headers={"Idempotency-Key": "key-e"}, timeout=10)
        assert second.status_code == 201 and second.json()["total"] == "30.00", second.text
        cancels = [path for method, path, _ in payment.calls if path.endswith("/cancel")]
        assert len(cancels) == 2 and cancels[0] == cancels[1], "the first attempt's charge was asked about twice"
        assert len(charges(payment)) == 2, "the first attempt (never approved) and the second"
        assert requests.get(f"{cart.url}/cart/{user}", timeout=5).json()["item_count"] == 0


def test_a_repeat_that_waited_for_an_attempt_that_charged_nothing_does_not_charge_again(redis_server, tmp_path):
    """A repeat of a key (a double submit, a mesh's retry) waits for the attempt in flight. When that attempt ends
    charging nothing, the repeat answers so instead of starting a charge of its own: waiting, then pricing, charging
    and cancelling again would take longer than cart's worst case (Checkout.worst_case_s), which the gateway's
    timeout is budgeted on."""
    import threading
    import time

    user = "waited-repeat"
    with cart_with_scripted_payment(redis_server, tmp_path, user, 1) as (cart, payment, script):
        script.cancel = "cancelled"  # the charge is slower than cart waits (0.5 s); the cancel says: nothing charged
        url = f"{cart.url}/cart/{user}/checkout"
        first = {}
        running = threading.Thread(target=lambda: first.update(response=requests.post(
            url, headers={"Idempotency-Key": "twice"}, timeout=10)))
        running.start()
        time.sleep(0.25)  # the first attempt is waiting for payment
        repeat = requests.post(url, headers={"Idempotency-Key": "twice"}, timeout=10)
        running.join()
        assert first["response"].status_code == 504 and "nothing was charged" in first["response"].text
        assert repeat.status_code == 409 and "charged nothing" in repeat.json()["error"], repeat.text
        assert len(charges(payment)) == 1, "the repeat started a second charge after waiting for the first"
        assert requests.get(f"{cart.url}/cart/{user}", timeout=5).json()["item_count"] == 1


def test_a_2xx_from_payment_that_is_not_an_approval_makes_no_order(redis_server, tmp_path):
    """Something at payment's address answered 201 with JSON that is no approval (a misrouted request reaching another
    service, a proxy's JSON page): no order is stored on it and the cart is kept; payment is asked with a cancel."""
    not_an_approval = b'{"id": "ntf_1", "type": "order_placed", "message": "accepted"}'
    user = "not-an-approval"
    with FakeUpstream(by_path=CATALOG) as catalog, FakeUpstream(status=201, body=not_an_approval) as payment, \
            FakeUpstream(status=201) as notification, \
            LoneService("cart", {"CATALOG_URL": catalog.url, "PAYMENT_URL": payment.url,
                                 "NOTIFICATION_URL": notification.url, "REDIS_URL": redis_server.url}, tmp_path) as cart:
        requests.delete(f"{cart.url}/cart/{user}", timeout=5)
        requests.post(f"{cart.url}/cart/{user}/add", json={"product_id": "1", "quantity": 1}, timeout=5)
        response = requests.post(f"{cart.url}/cart/{user}/checkout", headers={"Idempotency-Key": "na"}, timeout=10)
        assert response.status_code == 503 and "not known yet" in response.json()["error"], response.text
        assert [path for _, path, _ in payment.calls][-1].endswith("/cancel")
        assert requests.get(f"{cart.url}/cart/{user}", timeout=5).json()["item_count"] == 1
        assert requests.get(f"{cart.url}/users/{user}/orders", timeout=5).json()["orders"] == []
