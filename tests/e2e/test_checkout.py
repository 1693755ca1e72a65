"""Checkout: approved, declined, timed out, idempotent repeats (sequential and concurrent), nothing lost."""
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support import add, eventually, metric_value


def checkout(stack, user, key=None, timeout=20):
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(f"{stack.urls['api-gateway']}/api/cart/{user}/checkout", headers=headers, timeout=timeout)


def cart_of(stack, user):
    return requests.get(f"{stack.urls['api-gateway']}/api/cart/{user}", timeout=5).json()


def approved_payments(stack) -> float:
    return sum(metric_value(requests.get(stack.urls[p] + "/metrics", timeout=5).text, "payments_total",
                            result="approved") for p in ("payment-v1", "payment-v2"))


def test_approved_checkout_stores_order_empties_cart_and_notifies(http, stack, user):
    add(http, stack, user, "1", 2)
    add(http, stack, user, "8", 1)
    response = checkout(stack, user, "order-one")
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["total"] == "194.97"  # 2 x 89.99 + 14.99, from the catalog's prices
    assert order["status"] == "paid" and order["payment"]["status"] == "approved"
    assert response.headers["X-Payment-Version"] == order["payment"]["version"] == "v1"
    assert order["order_id"].startswith("ord_")
    assert cart_of(stack, user)["items"] == []

    gw = stack.urls["api-gateway"]
    assert http.get(f"{gw}/api/orders/{order['order_id']}", timeout=5).json()["total"] == "194.97"
    orders = http.get(f"{gw}/api/users/{user}/orders", timeout=5).json()["orders"]
    assert [o["order_id"] for o in orders] == [order["order_id"]]
    def notes():  # sent after the answer, in the background
        return http.get(f"{gw}/api/users/{user}/notifications", timeout=5).json()["notifications"]

    first_note = eventually(notes)[0]
    assert first_note["type"] == "order_placed" and first_note["order_id"] == order["order_id"]


def test_repeated_checkout_with_same_key_returns_same_order_and_charges_once(http, stack, user):
    add(http, stack, user, "2", 1)
    before = approved_payments(stack)
    first = checkout(stack, user, "same-key")
    add(http, stack, user, "6", 1)  # the cart changes after the order: a repeat must not buy this
    second = checkout(stack, user, "same-key")
    assert first.status_code == 201 and second.status_code == 200
    assert second.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert second.json() == first.json()  # the stored answer, unchanged: the header alone marks the replay
    assert approved_payments(stack) - before == 1
    assert [i["product_id"] for i in cart_of(stack, user)["items"]] == ["6"]


def test_concurrent_repeats_charge_once(stack, user, http):
    add(http, stack, user, "3", 1)
    before = approved_payments(stack)
    key = str(uuid.uuid4())
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda _: checkout(stack, user, key), range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [201], [r.text for r in responses]
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert approved_payments(stack) - before == 1
    orders = http.get(f"{stack.urls['api-gateway']}/api/users/{user}/orders", timeout=5).json()["orders"]
    assert len(orders) == 1


def test_declined_checkout_is_402_and_leaves_cart(http, stack, user, faults):
    add(http, stack, user, "9", 1)
    before = cart_of(stack, user)
    faults.set("payment-v1", enabled=True, decline_rate=1.0)
    response = checkout(stack, user, "declined-once")
    assert response.status_code == 402
    body = response.json()
    assert "declined" in body["error"] and body["injected"] is True and body["payment_version"] == "v1"
    assert cart_of(stack, user) == before
    notes = eventually(lambda: http.get(f"{stack.urls['api-gateway']}/api/users/{user}/notifications",
                                        timeout=5).json()["notifications"])
    assert notes[0]["type"] == "payment_declined"

    # The same key works once the card is accepted: one order, one charge.
    faults.reset()
    retry = checkout(stack, user, "declined-once")
    assert retry.status_code == 201 and cart_of(stack, user)["items"] == []


def test_payment_timeout_is_504_and_leaves_cart(http, stack, user, faults):
    add(http, stack, user, "10", 3)
    before = cart_of(stack, user)
    faults.set("payment-v1", enabled=True, timeout_rate=1.0, timeout_seconds=6)
    response = checkout(stack, user, "slow-one")
    assert response.status_code == 504
    assert "did not answer" in response.json()["error"] and "unchanged" in response.json()["error"]
    assert cart_of(stack, user) == before


def test_empty_cart_checkout_is_409(stack, user):
    response = checkout(stack, user, "nothing")
    assert response.status_code == 409 and "empty" in response.json()["error"]


def test_checkout_without_key_still_works(http, stack, user):
    add(http, stack, user, "14", 1)
    response = checkout(stack, user)
    assert response.status_code == 201 and response.headers["Idempotency-Key"]
