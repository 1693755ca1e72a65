"""The checkout's timeout budget: the outermost wait is the longest, and the notification is off the critical path."""
import time

import requests

from tests.support import add, eventually


def test_every_neighbour_slow_but_within_its_own_timeout_still_gives_the_order(http, stack, user, faults):
    """catalog 4.5 s (under cart's 5 s), payment 3.5 s (under 4 s), notification 4.5 s (under 5 s): each hop waits
    long enough, so the shopper gets the order, and without waiting for the notification."""
    add(http, stack, user, "7", 1)
    faults.set("catalog", delay_ms=4500)
    faults.set("payment-v1", delay_ms=3500)
    faults.set("notification", delay_ms=4500)
    started = time.perf_counter()
    response = requests.post(f"{stack.urls['api-gateway']}/api/cart/{user}/checkout",
                             headers={"Idempotency-Key": "slow-everywhere"}, timeout=30)
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.text
    assert elapsed < 4.5 + 3.5 + 3.0, f"the answer waited for the notification ({elapsed:.1f} s)"
    faults.reset()

    def placed():
        notes = http.get(f"{stack.urls['api-gateway']}/api/users/{user}/notifications", timeout=10).json()
        return [n for n in notes["notifications"] if n["order_id"] == response.json()["order_id"]]

    assert eventually(placed, timeout_s=15)
