"""The admin port: /admin/* only there, and probes that answer at once whatever the business requests are doing."""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support import admin_url

SERVICES = ["api-gateway", "catalog", "cart", "payment-v1", "payment-v2", "notification"]


@pytest.mark.parametrize("service", SERVICES)
def test_admin_is_served_on_the_admin_port_only(stack, service):
    business = requests.put(stack.urls[service] + "/admin/faults", json={"sick": True}, timeout=5)
    assert business.status_code == 404 and business.json()["error"].startswith("no such endpoint"), business.text
    assert requests.get(stack.urls[service] + "/admin/faults", timeout=5).status_code == 404
    settings = requests.get(admin_url(stack, service) + "/admin/faults", timeout=5)
    assert settings.status_code == 200 and settings.json()["sick"] is False
    for path in ("/health", "/ready", "/metrics"):
        assert requests.get(admin_url(stack, service) + path, timeout=5).status_code == 200, path
    assert requests.get(admin_url(stack, service) + "/products", timeout=5).status_code == 404


def test_probes_answer_at_once_while_every_business_thread_sleeps_in_a_delay(stack, faults):
    """catalog runs 2 workers x 4 threads: 12 requests delayed by 3 s leave no business thread free."""
    faults.set("catalog", delay_ms=3000)
    with ThreadPoolExecutor(max_workers=12) as pool:
        busy = [pool.submit(requests.get, stack.urls["catalog"] + "/products", timeout=15) for _ in range(12)]
        time.sleep(0.6)  # every business thread is asleep in the delay now
        for path in ("/health", "/ready", "/metrics", "/health", "/ready"):
            started = time.perf_counter()
            probe = requests.get(admin_url(stack, "catalog") + path, timeout=5)
            elapsed = time.perf_counter() - started
            assert probe.status_code == 200 and elapsed < 0.5, f"{path} took {elapsed:.2f} s under load"
        assert [f.result().status_code for f in busy] == [200] * 12


def test_probes_of_cart_stay_fast_while_its_checkouts_wait_for_a_slow_payment(stack, faults, http):
    from tests.support import add

    faults.set("payment-v1", delay_ms=2500)
    users = [f"probe-{n}" for n in range(10)]
    for user in users:
        http.delete(f"{stack.urls['api-gateway']}/api/cart/{user}", timeout=5)
        add(http, stack, user, "8", 1)
    with ThreadPoolExecutor(max_workers=10) as pool:
        checkouts = [pool.submit(requests.post, f"{stack.urls['cart']}/cart/{user}/checkout", timeout=20)
                     for user in users]
        time.sleep(0.8)
        started = time.perf_counter()
        ready = requests.get(admin_url(stack, "cart") + "/ready", timeout=5)
        elapsed = time.perf_counter() - started
        assert ready.status_code == 200 and elapsed < 0.5, f"/ready took {elapsed:.2f} s under load"
        assert {f.result().status_code for f in checkouts} == {201}


def test_idle_connections_to_the_admin_port_cannot_starve_the_probes(lone_service):
    """Connections that send nothing (a proxy's or browser's idle keep-alives, a port-forward that died) once held
    every admin slot of every worker for ever: a probe then waited past the kubelet's timeoutSeconds (2 s)."""
    import socket

    from shopkit.admin_server import MAX_CONNECTIONS

    with lone_service("catalog", WEB_CONCURRENCY="2") as catalog:
        port = int(catalog.admin_url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2 * MAX_CONNECTIONS + 8)]
        try:
            time.sleep(0.3)  # both workers have taken all the connections they have room for
            started = time.perf_counter()
            try:
                probe = requests.get(catalog.admin_url + "/health", timeout=5)
            except requests.Timeout:
                probe = None
            elapsed = time.perf_counter() - started
        finally:
            for connection in idle:
                connection.close()
        assert probe is not None and probe.status_code == 200, "the probe got no answer behind idle connections"
        assert elapsed < 2.0, f"the probe waited {elapsed:.2f} s behind idle connections"
