"""Failure accrual under Linkerd's intents on real Envoy (payment-service's balancer.linkerd.io/failure-accrual*:
5 consecutive failures, a 10 s penalty growing to 1 min): a sick endpoint is taken out while its backend's other
endpoint serves, and when the canary's only endpoint is out, its backend takes no share and v2's 5% go to v1
(linkerd2-proxy RandomAvailableSelection). Under Istio the same sickness makes v2's share fail fast
(tests/mesh/test_resilience.py); both are what the meshes' own files mean. Each test heals and waits until the
endpoint is back before the next."""
from __future__ import annotations

import time
from collections import Counter

from devstack.mesh import probe
from tests.mesh.test_resilience import post_payments  # (status, seconds, instance) of new charges, cart's way

SPLIT = ("outbound|5003|payment-service-v1=95,payment-service-v2=5|"
         "payment-service.e-commerce.svc.cluster.local")
PENALTY_S = 15.0  # min-penalty 10 s plus up to 50% jitter
# Envoy takes up to about a second to stop sending to a host ejected again after it came back once
# (envoyproxy/envoy#28304; measured with 1.40): counting starts after that.
SETTLE_S = 1.5


def ejected(linkerd) -> set[str]:
    return probe.ejected_hosts(linkerd.admin_url("cart-service-1"), SPLIT)


def inbound(linkerd, instance: str) -> str:
    return f"127.0.0.1:{linkerd.instance(instance).inbound_port}"


def trip(linkerd, instance: str, limit: int = 400) -> int:
    """Payment calls until `instance` is out of the pool; how many it took."""
    sent = 0
    while inbound(linkerd, instance) not in ejected(linkerd):
        assert sent < limit, f"{instance} was never taken out"
        post_payments(linkerd, 20, concurrency=4)
        sent += 20
    time.sleep(SETTLE_S)
    return sent


def wait_back(linkerd, instance: str) -> None:
    """Healed, the endpoint returns after its penalty (the next failures would send it out again)."""
    deadline = time.monotonic() + PENALTY_S + 5
    while inbound(linkerd, instance) in ejected(linkerd):
        assert time.monotonic() < deadline, f"{instance} still out after {PENALTY_S + 5:g} s"
        time.sleep(0.5)


def test_a_sick_v1_endpoint_is_taken_out_and_its_backend_keeps_its_share(linkerd, faults):
    """payment-service-v1-1 fails every request: out after 5 in a row. Its backend still has v1-2, so v1 keeps
    its 95%: 400 calls after, no 500, none to v1-1, v2 about 5% (accepted 2.5%..7.5%)."""
    faults.set("payment-service-v1-1", sick=True)
    trip(linkerd, "payment-service-v1-1")
    after = post_payments(linkerd, 400, concurrency=4)
    statuses = Counter(s for s, _, _ in after)
    assert statuses == {201: 400}, statuses
    assert "payment-service-v1-1" not in {i for _, _, i in after}
    assert 0.025 <= sum(i == "payment-service-v2-1" for _, _, i in after) / 400 <= 0.075


def test_the_canarys_share_moves_to_v1_when_its_only_endpoint_is_out(linkerd, faults):
    """payment-service-v2-1, v2's only endpoint, fails every request. Once out, the v2 backend has no available
    endpoint and RandomAvailableSelection skips it: 200 calls within the penalty all answered by v1 (no 500, no
    503 "no healthy upstream"). Healed, v2 comes back after its penalty and takes its share again."""
    faults.set("payment-service-v2-1", sick=True)
    trip(linkerd, "payment-service-v2-1")
    started = time.monotonic()
    after = post_payments(linkerd, 200, concurrency=4)
    assert time.monotonic() - started < 10.0 - SETTLE_S  # inside the shortest penalty
    assert Counter(s for s, _, _ in after) == {201: 200}
    assert {i for _, _, i in after} <= {"payment-service-v1-1", "payment-service-v1-2"}  # v1-1 may still be out
    faults.reset()
    wait_back(linkerd, "payment-service-v2-1")
    back = Counter(i for _, _, i in post_payments(linkerd, 400, concurrency=4))
    assert 10 <= back["payment-service-v2-1"] <= 30, back  # 5% of 400 again (locality scheduling keeps it near 20)
