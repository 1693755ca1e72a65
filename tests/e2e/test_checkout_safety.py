"""The hard cases of "nothing is lost and nothing is charged twice"."""
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support import add, metric_value


def approved_payments(stack) -> float:
    return sum(metric_value(requests.get(stack.urls[p] + "/metrics", timeout=5).text, "payments_total",
                            result="approved") for p in ("payment-v1", "payment-v2"))


def checkout(stack, user, key=None, timeout=20):
    headers = {"Idempotency-Key": key} if key else {}
    return requests.post(f"{stack.urls['api-gateway']}/api/cart/{user}/checkout", headers=headers, timeout=timeout)


def test_two_tabs_with_different_keys_pay_once(http, stack, user, faults):
    """Concurrent checkouts of one cart with different keys (or none): one order, the others 409, one charge."""
    add(http, stack, user, "3", 1)
    faults.set("payment-v1", delay_ms=400)  # keep the first checkout busy while the others arrive
    before = approved_payments(stack)
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda key: checkout(stack, user, key), [None, None, "tab-a", "tab-b"]))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, [r.text for r in responses]
    assert all(s == 409 for s in statuses if s != 201)
    assert approved_payments(stack) - before == 1
    refused = next(r for r in responses if r.status_code == 409)
    assert "another checkout of this cart is in progress" in refused.json()["error"]


def test_longest_allowed_key_works(http, stack, user):
    add(http, stack, user, "2", 1)
    key = "k" * 128
    assert checkout(stack, user, key).status_code == 201
    assert checkout(stack, user, key).status_code == 200


def test_gateway_names_a_key_when_the_client_sends_none(http, stack, user):
    add(http, stack, user, "2", 1)
    first = checkout(stack, user)
    assert first.status_code == 201
    again = checkout(stack, user, first.headers["Idempotency-Key"])
    assert again.status_code == 200 and again.json()["order_id"] == first.json()["order_id"]


def test_payment_answers_a_repeat_from_its_ledger_even_when_faults_are_on(stack):
    url = stack.urls["payment-v1"] + "/payments"
    body = {"order_id": "ord_aaaaaaaaaaaaaaaaaaaa", "user_id": "u1", "amount": "5.00", "currency": "USD"}
    key = f"ledger-{uuid.uuid4().hex}"
    assert requests.post(url, json=body, headers={"Idempotency-Key": key}, timeout=5).status_code == 201
    requests.put(stack.urls["payment-v1"] + "/admin/faults", timeout=5,
                 json={"enabled": True, "timeout_rate": 1.0, "decline_rate": 1.0, "timeout_seconds": 5})
    try:
        repeat = requests.post(url, json=body, headers={"Idempotency-Key": key}, timeout=5)
    finally:
        requests.delete(stack.urls["payment-v1"] + "/admin/faults", timeout=5)
    assert repeat.status_code == 200 and repeat.json()["replayed"] is True


def test_order_lost_to_redis_after_approval_is_recovered_without_a_second_charge(http, stack, user, faults):
    """Payment approves, then Redis is gone before the order is stored: the answer says so, and the retry with the
    same key stores the order from payment's ledger instead of charging again."""
    add(http, stack, user, "6", 1)
    faults.set("payment-v1", delay_ms=1500)
    before = approved_payments(stack)
    result = {}
    worker = threading.Thread(target=lambda: result.update(response=checkout(stack, user, "redis-blip")))
    worker.start()
    threading.Event().wait(0.7)  # cart has claimed the key and is waiting for payment
    stack.stop_redis()
    try:
        worker.join(20)
    finally:
        stack.start_redis()
    lost = result["response"]
    assert lost.status_code == 503, lost.text
    assert "was approved, but the order could not be stored" in lost.json()["error"]
    faults.reset()
    deadline = time.monotonic() + 40
    retry = checkout(stack, user, "redis-blip")
    while retry.status_code == 409 and time.monotonic() < deadline:  # until the interrupted claim expires
        retry = checkout(stack, user, "redis-blip")
    assert retry.status_code == 201, retry.text
    assert f"payment {retry.json()['payment']['payment_id']} was approved" in lost.json()["error"]
    assert approved_payments(stack) - before == 1
    cart = requests.get(f"{stack.urls['api-gateway']}/api/cart/{user}", timeout=5).json()
    assert cart["items"] == []
