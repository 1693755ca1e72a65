"""CartStore's Lua scripts against a real redis-server: atomic adds, limits, checkout claims, leases, the cart's lock."""
import json
import threading

import pytest
import redis

from cart_service.store import MAX_QUANTITY, CartStore, CheckoutKeys

PRODUCT = {"id": "1", "name": "Trail Running Shoes", "price": "89.99"}


@pytest.fixture
def store(redis_server, request):
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    client.flushdb()
    yield CartStore(client)
    client.close()


def test_parallel_adds_from_many_clients_lose_nothing(redis_server):
    def worker():
        own = CartStore(redis.Redis.from_url(redis_server.url, decode_responses=True))
        for _ in range(20):
            own.add("alice", PRODUCT, 1)

    redis.Redis.from_url(redis_server.url).delete("shop:cart:alice:qty", "shop:cart:alice:info")
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store = CartStore(redis.Redis.from_url(redis_server.url, decode_responses=True))
    assert store.lines("alice")[0]["quantity"] == 80


def test_limit_refuses_without_changing(store):
    assert store.add("bob", PRODUCT, MAX_QUANTITY) == (True, MAX_QUANTITY)
    assert store.add("bob", PRODUCT, 1) == (False, MAX_QUANTITY)
    assert store.lines("bob")[0]["quantity"] == MAX_QUANTITY


def test_view_totals_are_exact(store):
    store.add("carol", PRODUCT, 3)
    store.add("carol", {"id": "10", "name": "Towel", "price": "19.95"}, 1)
    view = store.view("carol", "USD")
    assert view["total"] == "289.92" and [i["product_id"] for i in view["items"]] == ["1", "10"]


FIELDS = {"order_id": "ord_00000000000000000001", "items": "[]", "total": "179.98", "currency": "USD",
          "created_at": "2026-01-01T00:00:00Z"}


def test_complete_removes_only_what_was_bought_and_only_once(store):
    store.add("dave", PRODUCT, 2)
    keys = CheckoutKeys("dave", "k1")
    assert store.open_claim(keys, "t", 60, 3600, FIELDS) == ("opened", "")
    store.add("dave", PRODUCT, 1)  # added while payment was running
    order = {"order_id": FIELDS["order_id"], "items": [{"product_id": "1", "quantity": 2}]}
    assert store.complete(keys, order, 3600) is True
    assert store.complete(keys, order, 3600) is False, "a second approval of the same claim changes nothing"
    assert store.lines("dave")[0]["quantity"] == 1
    assert store.order(FIELDS["order_id"]) == order
    claim, lease = store.read_claim(keys)
    assert claim["state"] == "paid" and lease is None
    assert [o["order_id"] for o in store.orders_of("dave")] == [FIELDS["order_id"]]
    assert store.open_claim(CheckoutKeys("dave", "k2"), "t", 60, 3600, FIELDS) == ("opened", ""), "the cart is free"


def test_the_cart_lock_names_the_checkout_in_flight_until_it_is_settled(store):
    first, second = CheckoutKeys("erin", "a"), CheckoutKeys("erin", "b")
    assert store.open_claim(first, "t1", 60, 3600, FIELDS) == ("opened", "")
    assert store.open_claim(first, "t2", 60, 3600, FIELDS) == ("claim", "")
    assert store.open_claim(second, "t2", 60, 3600, FIELDS) == ("lock", "a")
    store.give_up(first, "t1")  # the outcome is unknown: claim and lock stay
    claim, lease = store.read_claim(first)
    assert claim["state"] == "pending" and lease is None
    assert store.open_claim(second, "t2", 60, 3600, FIELDS) == ("lock", "a")
    assert store.take_over(first, "t3", 60) and not store.take_over(first, "t4", 60)
    store.release(first, "t1")  # not the holder any more: nothing happens
    assert store.read_claim(first)[0] is not None
    store.release(first, "t3")
    assert store.read_claim(first) == (None, None)
    assert store.open_claim(second, "t2", 60, 3600, FIELDS) == ("opened", "")


def test_a_lock_without_its_claim_is_cleared(store):
    assert store.open_claim(CheckoutKeys("fay", "gone"), "t", 60, 3600, FIELDS) == ("opened", "")
    store.redis.delete(CheckoutKeys("fay", "gone").claim)
    store.clear_stale_lock("fay", "other")  # names another key: stays
    assert store.open_claim(CheckoutKeys("fay", "new"), "t", 60, 3600, FIELDS) == ("lock", "gone")
    store.clear_stale_lock("fay", "gone")
    assert store.open_claim(CheckoutKeys("fay", "new"), "t", 60, 3600, FIELDS) == ("opened", "")


def test_stored_info_is_json(store, redis_server):
    store.add("frank", PRODUCT, 1)
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True).hget("shop:cart:frank:info", "1")
    assert json.loads(raw) == {"name": "Trail Running Shoes", "unit_price": "89.99"}


def test_a_claim_opens_only_while_the_cart_still_holds_what_was_priced(store):
    store.add("gina", PRODUCT, 2)
    priced = {**FIELDS, "items": json.dumps([{"product_id": "1", "quantity": 2}])}
    store.set_quantity("gina", "1", 1)  # edited (or bought by another checkout) while this one read the catalog
    assert store.open_claim(CheckoutKeys("gina", "k"), "t", 60, 3600, priced) == ("changed", "")
    assert store.read_claim(CheckoutKeys("gina", "k")) == (None, None), "nothing was claimed or locked"
    store.add("gina", PRODUCT, 2)  # 3 now: more than was priced is fine, the rest stays in the cart
    assert store.open_claim(CheckoutKeys("gina", "k"), "t", 60, 3600, priced) == ("opened", "")


def test_a_lock_whose_checkout_was_reopened_meanwhile_is_not_stale(store):
    """Tab b saw tab a's lock, then a's claim gone (released); before b clears the lock, a's retry opens a new claim
    and locks the cart again. b must not clear that live lock, or two checkouts of one cart run at once."""
    tab_a, tab_b = CheckoutKeys("hank", "a"), CheckoutKeys("hank", "b")
    assert store.open_claim(tab_a, "t1", 60, 3600, FIELDS) == ("opened", "")
    assert store.open_claim(tab_b, "t2", 60, 3600, FIELDS) == ("lock", "a")
    store.release(tab_a, "t1")  # a charged nothing (declined)
    assert store.read_claim(tab_a) == (None, None)  # what b reads: a's claim is gone
    assert store.open_claim(tab_a, "t3", 60, 3600, FIELDS) == ("opened", "")  # a's retry
    store.clear_stale_lock("hank", "a")  # b, acting on what it read
    assert store.open_claim(tab_b, "t2", 60, 3600, FIELDS) == ("lock", "a")
