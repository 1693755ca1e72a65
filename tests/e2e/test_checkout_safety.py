"""The hard cases of "nothing is lost and nothing is charged twice"."""
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import redis
import requests

from tests.support import add, admin_url, metric_value


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


def test_payment_answers_a_repeat_from_its_ledger_before_any_fault(stack):
    """Every fault payment has, on at once: an approved key is still answered, at once and unchanged."""
    url = stack.urls["payment-v1"] + "/payments"
    body = {"order_id": "ord_aaaaaaaaaaaaaaaaaaaa", "user_id": "u1", "amount": "5.00", "currency": "USD"}
    key = f"ledger-{uuid.uuid4().hex}"
    first = requests.post(url, json=body, headers={"Idempotency-Key": key}, timeout=5)
    assert first.status_code == 201
    faults_url = admin_url(stack, "payment-v1") + "/admin/faults"
    requests.put(faults_url, timeout=5, json={"enabled": True, "sick": True, "error_rate": 1.0, "delay_ms": 3000,
                                              "timeout_rate": 1.0, "decline_rate": 1.0, "timeout_seconds": 5})
    try:
        started = time.perf_counter()
        repeat = requests.post(url, json=body, headers={"Idempotency-Key": key}, timeout=10)
        elapsed = time.perf_counter() - started
    finally:
        requests.delete(faults_url, timeout=5)
    assert repeat.status_code == 200, repeat.text
    assert repeat.json() == first.json() and repeat.headers["Idempotent-Replayed"] == "true"
    assert elapsed < 2.5, f"the repeat waited for the delay fault ({elapsed:.1f} s)"


def test_slow_payment_then_a_cart_change_then_the_same_key_charges_once(http, stack, user, faults):
    """Payment slower than cart waits: the attempt cart gave up on is cancelled at payment, so it cannot approve
    later; the cart changes; the same key buys what the cart holds then, once."""
    add(http, stack, user, "1", 1)
    before = approved_payments(stack)
    faults.set("payment-v1", delay_ms=4500)
    first = checkout(stack, user, "stuck-k")
    assert first.status_code == 504, first.text
    assert first.headers["Idempotency-Key"] == "stuck-k" and "nothing was charged" in first.json()["error"]
    add(http, stack, user, "2", 1)
    time.sleep(1.5)  # payment's delayed attempt has woken up by now
    assert approved_payments(stack) == before, "the attempt cart gave up on was approved after all"
    faults.reset()
    retry = checkout(stack, user, "stuck-k")
    assert retry.status_code == 201, retry.text
    assert sorted(i["product_id"] for i in retry.json()["items"]) == ["1", "2"]
    again = checkout(stack, user, "stuck-k")
    assert again.status_code == 200 and again.json() == retry.json()
    assert approved_payments(stack) - before == 1
    orders = http.get(f"{stack.urls['api-gateway']}/api/users/{user}/orders", timeout=5).json()["orders"]
    assert [o["order_id"] for o in orders] == [retry.json()["order_id"]]


def test_a_second_tab_while_payment_still_runs_is_refused_naming_the_key_in_flight(http, stack, user, faults):
    add(http, stack, user, "3", 1)
    before = approved_payments(stack)
    faults.set("payment-v1", delay_ms=4500)
    with ThreadPoolExecutor(max_workers=1) as pool:
        slow = pool.submit(checkout, stack, user, "tab-a")
        time.sleep(0.7)  # tab a has priced the cart and is waiting for payment
        during = checkout(stack, user, "tab-b")
        assert during.status_code == 409, during.text
        assert during.json()["in_flight_idempotency_key"] == "tab-a"
        assert during.headers["Idempotency-Key"] == "tab-b"
        assert slow.result().status_code == 504
    faults.reset()
    after = checkout(stack, user, "tab-b")
    assert after.status_code == 201, after.text
    time.sleep(1.5)  # long enough for tab a's delayed payment to finish
    assert approved_payments(stack) - before == 1


def test_a_key_reused_after_its_retention_is_a_new_charge_never_an_old_approval(http, stack, user):
    """ORDER_RETENTION_S over: the claim and the order are gone (deleted here as their expiry would). The README's
    own example key then buys the new cart with a new order and a new payment."""
    add(http, stack, user, "4", 1)
    first = checkout(stack, user, "my-first-order")
    assert first.status_code == 201, first.text
    store = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    expired = [*store.scan_iter(f"shop:checkout*:{user}*"), f"shop:order:{first.json()['order_id']}"]
    store.delete(*expired)
    add(http, stack, user, "5", 1)
    before = approved_payments(stack)
    second = checkout(stack, user, "my-first-order")
    assert second.status_code == 201, second.text
    assert second.json()["order_id"] != first.json()["order_id"]
    assert second.json()["payment"]["payment_id"] != first.json()["payment"]["payment_id"]
    assert [i["product_id"] for i in second.json()["items"]] == ["5"]
    assert approved_payments(stack) - before == 1


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


def test_a_second_key_that_priced_the_cart_while_the_first_was_paid_does_not_buy_it_again(http, stack, user, faults):
    """Tab b reads and prices the cart while tab a's payment is approved and its order stored. When b opens its claim,
    a's lock is gone, and so are the items b priced: b must not charge for what a has just bought."""
    add(http, stack, user, "3", 1)
    faults.set("catalog", delay_ms=1000)  # each pricing takes 1 s
    faults.set("payment-v1", delay_ms=1000)  # tab a: priced at 1 s, paid and stored at 2 s
    before = approved_payments(stack)
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(checkout, stack, user, "tab-a")
        time.sleep(1.5)  # tab b reads the cart while a waits for payment, and has priced it when a is done
        second = checkout(stack, user, "tab-b")
        first = first.result()
    assert first.status_code == 201, first.text
    assert second.status_code == 409, second.text
    assert second.headers["Idempotency-Key"] == "tab-b" and "cart changed" in second.json()["error"]
    assert approved_payments(stack) - before == 1
    orders = http.get(f"{stack.urls['api-gateway']}/api/users/{user}/orders", timeout=5).json()["orders"]
    assert [o["order_id"] for o in orders] == [first.json()["order_id"]]
