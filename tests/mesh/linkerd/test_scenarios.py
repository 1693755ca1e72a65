"""Each file of linkerd/scenarios/ applied to the running mesh as `kubectl apply -f` would, with its documented
effect measured; the proxies take it within 2 s. Back to linkerd/ after each."""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import requests

from devstack.mesh import control, probe
from devstack.stack import port_is_free
from tests.mesh.linkerd.test_traffic import payment_health, versions_seen
from tests.support import metric_value

ROOT = Path(__file__).resolve().parents[3]
DELIVERY_LIMIT_S = 2.0
CATALOG = "outbound|5001||catalog-service.e-commerce.svc.cluster.local"


def test_canary_100_v2_then_rollback_then_back_to_95_5(linkerd, scenario):
    applied = scenario("linkerd/scenarios/canary-100-v2.yaml")
    assert applied.changed == ["cart-service-1"] and applied.delivery_s < DELIVERY_LIMIT_S
    assert versions_seen(payment_health(linkerd), 100) == {"v2": 100}
    scenario("linkerd/scenarios/rollback-v1.yaml")
    assert versions_seen(payment_health(linkerd), 100) == {"v1": 100}  # v2 weight 0: never picked
    linkerd.apply("reset", "")
    share = versions_seen(payment_health(linkerd), 400)["v2"] / 400
    assert 0.025 <= share <= 0.075, share


def test_canary_50_50_splits_evenly(linkerd, scenario):
    """400 calls: v2 expected 50% (sd 2.5% if picked at random); accepted 40..60%."""
    assert scenario("linkerd/scenarios/canary-50-50.yaml").delivery_s < DELIVERY_LIMIT_S
    share = versions_seen(payment_health(linkerd), 400)["v2"] / 400
    assert 0.40 <= share <= 0.60, share


def test_circuit_breaker_takes_a_sick_catalog_pod_out_after_3_failures(linkerd, scenario, faults):
    """catalog-service re-applied with 3 failures and a fixed 30 s penalty: catalog-service-1 sick. A retry goes
    back through the balancer, which may pick the sick pod again (1 in 8 for a read's three tries before the pod is
    out), so of 60 GETs through the load balancer at most 2 may fail, and once it is out (after 3 of its answers)
    none does."""
    scenario("linkerd/scenarios/circuit-breaker.yaml")
    faults.set("catalog-service-1", sick=True)
    statuses = [requests.get(linkerd.gateway_url + "/api/products", timeout=10).status_code for _ in range(60)]
    assert statuses.count(200) >= 58 and set(statuses[-40:]) == {200}, statuses
    admin = linkerd.admin_url("api-gateway-1")
    assert probe.ejected_hosts(admin, CATALOG) == {f"127.0.0.1:{linkerd.instance('catalog-service-1').inbound_port}"}
    assert probe.cluster_stat(admin, CATALOG, "outlier_detection.ejections_enforced_consecutive_5xx") >= 1


def test_fault_injection_starts_its_backend_and_sends_one_user_there(linkerd, scenario):
    """The file creates payment-fault (Deployment, Service, policies) and an HTTPRoute that sends POSTs of x-user
    fault-demo there: applying it starts the instance before any route sends to it; its checkouts take 1.5 s
    and about half fail (its own faults), other users are untouched; deleting the file stops it."""
    applied = scenario("linkerd/scenarios/fault-injection.yaml")
    assert applied.started == ["payment-fault-1"]
    fault = linkerd.instance("payment-fault-1")
    seen = []
    for n in range(6):
        user = f"l5d-fault-demo-{n}-{int(time.time())}"
        headers = {"x-user": "fault-demo"}
        assert requests.post(f"{linkerd.gateway_url}/api/cart/{user}/add", json={"product_id": "3", "quantity": 1},
                             headers=headers, timeout=10).ok
        started = time.monotonic()
        checkout = requests.post(f"{linkerd.gateway_url}/api/cart/{user}/checkout",
                                 headers={**headers, "Idempotency-Key": f"{user}-k"}, timeout=30)
        seen.append((checkout.status_code, time.monotonic() - started))
    assert all(seconds >= 1.5 for _, seconds in seen), seen
    charged = metric_value(requests.get(linkerd.admin_urls["payment-fault-1"] + "/metrics", timeout=5).text,
                           "http_requests_total", method="POST", route="/payments")
    assert charged >= 6  # every one of those charges reached payment-fault
    other = requests.get(linkerd.gateway_url + "/api/products", timeout=10)
    assert other.ok and other.elapsed.total_seconds() < 1.0
    removed = linkerd.apply("delete", "linkerd/scenarios/fault-injection.yaml")
    assert removed.stopped == ["payment-fault-1"]
    assert port_is_free(fault.inbound_port) and port_is_free(fault.app_port)


def test_a_scenario_workload_that_cannot_start_leaves_nothing_running(linkerd):
    """--apply from another terminal while payment-fault-1's app port is taken: gunicorn cannot bind and exits,
    the command fails, and the sidecar it had already started is stopped too (before, it was left running,
    recorded nowhere, holding its ports after the stack itself stopped); nothing was applied."""
    fault = linkerd.instance("payment-fault-1")
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", fault.app_port))
        blocker.listen()
        failed = subprocess.run([str(ROOT / "run-local.sh"), "--mesh", "linkerd", "--data-dir", str(linkerd.data_dir),
                                 "--apply", "linkerd/scenarios/fault-injection.yaml"], capture_output=True, text=True,
                                timeout=120)
    assert failed.returncode == 1 and "run-local: payment-fault-1 exited" in failed.stderr, failed
    deadline = time.monotonic() + 5
    while not (port_is_free(fault.inbound_port) and port_is_free(fault.admin_port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert port_is_free(fault.inbound_port) and port_is_free(fault.admin_port)
    assert control.load_state(linkerd.layout) == []
    assert requests.get(linkerd.gateway_url + "/api/products", timeout=10).ok  # the rest as it was
