"""The cart through the gateway: items, quantities, removal, clearing, atomic concurrent adds."""
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support import add


def test_add_change_remove_clear(http, stack, user):
    gw = stack.urls["api-gateway"]
    add(http, stack, user, "1", 2)
    cart = add(http, stack, user, "3", 1)
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [("1", 2), ("3", 1)]
    assert cart["total"] == "328.98" and cart["item_count"] == 3

    changed = http.put(f"{gw}/api/cart/{user}/items/1", json={"quantity": 5}, timeout=5)
    assert changed.status_code == 200 and changed.json()["items"][0]["quantity"] == 5
    assert changed.json()["total"] == "598.95"

    removed = http.delete(f"{gw}/api/cart/{user}/items/3", timeout=5)
    assert removed.status_code == 200 and [i["product_id"] for i in removed.json()["items"]] == ["1"]
    assert http.delete(f"{gw}/api/cart/{user}/items/3", timeout=5).status_code == 404

    cleared = http.delete(f"{gw}/api/cart/{user}", timeout=5)
    assert cleared.status_code == 200 and cleared.json()["items"] == [] and cleared.json()["total"] == "0.00"


def test_product_detail_and_unknown_product(http, stack):
    gw = stack.urls["api-gateway"]
    detail = http.get(f"{gw}/api/products/2", timeout=5)
    assert detail.status_code == 200 and detail.json()["name"] == "Merino Wool Socks (3 pairs)"
    missing = http.get(f"{gw}/api/products/999", timeout=5)
    assert missing.status_code == 404 and "999" in missing.json()["error"]


def test_concurrent_adds_lose_nothing(stack, user):
    url = f"{stack.urls['api-gateway']}/api/cart/{user}/add"

    def add_one(_):
        return requests.post(url, json={"product_id": "4", "quantity": 1}, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(add_one, range(60)))
    assert statuses == [200] * 60
    cart = requests.get(f"{stack.urls['api-gateway']}/api/cart/{user}", timeout=5).json()
    assert cart["items"][0]["quantity"] == 60


def test_quantity_limit_is_atomic_under_concurrency(stack, user):
    """99 per product: 30 parallel adds of 5 from 0 — exactly 19 succeed (95), the rest are refused with 409."""
    url = f"{stack.urls['api-gateway']}/api/cart/{user}/add"
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(lambda _: requests.post(url, json={"product_id": "5", "quantity": 5},
                                                         timeout=10).status_code, range(30)))
    assert statuses.count(200) == 19 and statuses.count(409) == 11
    cart = requests.get(f"{stack.urls['api-gateway']}/api/cart/{user}", timeout=5).json()
    assert cart["items"][0]["quantity"] == 95
