"""CartStore's Lua scripts against a real redis-server: atomic adds, limits, checkout completion, claims."""
import json
import threading

import pytest
import redis

from cart_service.store import MAX_QUANTITY, CartStore

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


def test_complete_removes_only_what_was_bought(store):
    store.add("dave", PRODUCT, 2)
    order = {"order_id": "ord_00000000000000000001", "items": [{"product_id": "1", "quantity": 2}]}
    store.add("dave", PRODUCT, 1)  # added while payment was running
    claim = store.claim_key("dave", "k1")
    assert store.claim(claim, "pending:x", 60) is None
    store.complete("dave", claim, order, 3600)
    assert store.lines("dave")[0]["quantity"] == 1
    assert store.order("ord_00000000000000000001") == order
    assert store.claim(claim, "pending:y", 60) == "order:ord_00000000000000000001"
    assert [o["order_id"] for o in store.orders_of("dave")] == ["ord_00000000000000000001"]


def test_release_only_frees_its_own_claim(store):
    claim = store.claim_key("erin", "k")
    assert store.claim(claim, "pending:mine", 60) is None
    store.release(claim, "pending:someone-else")
    assert store.claim(claim, "pending:other", 60) == "pending:mine"
    store.release(claim, "pending:mine")
    assert store.claim(claim, "pending:other", 60) is None


def test_stored_info_is_json(store, redis_server):
    store.add("frank", PRODUCT, 1)
    raw = redis.Redis.from_url(redis_server.url, decode_responses=True).hget("shop:cart:frank:info", "1")
    assert json.loads(raw) == {"name": "Trail Running Shoes", "unit_price": "89.99"}
