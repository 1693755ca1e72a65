"""./quick-test.sh against the local mesh with the seed's faults on: every check runs for real and none SKIPs."""
from __future__ import annotations

import json

import pytest

from tests.mesh.conftest import running_mesh
from tests.scripts.test_quick_test import run_quick_test

MESH_ROWS = {"workloads ready", "canary split 95/5", "POST never retried", "GET success with faults", "authorization",
             "mTLS", "circuit breaker (ejection)", "metrics"}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    with running_mesh(tmp_path_factory, "mesh-seed", faults_enabled=True) as stack:
        result = run_quick_test("--inventory", str(stack.layout.inventory_path), "--json", timeout=240)
        yield result, stack


def test_every_check_passes_and_none_skips(report):
    result, _ = report
    data = json.loads(result.stdout)
    rows = {c["name"]: c for c in data["checks"]}
    assert result.returncode == 0, result.stdout
    assert data["summary"]["fail"] == 0 and data["summary"]["skip"] == 0, [c for c in data["checks"] if c["status"] != "PASS"]
    assert MESH_ROWS <= set(rows) and data["mesh"] == "istio (local)"


def test_the_figures_come_from_the_proxies(report):
    result, stack = report
    rows = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    canary = rows["canary split 95/5"]["figures"]
    assert canary["calls"] >= 172 and canary["accepted"][0] > 0  # enough calls for a band above 0%
    posts = rows["POST never retried"]["figures"]
    assert posts["retries"] == 0 and posts["payment_posts"] == posts["sidecar_requests"] > 0
    assert 0 < posts["charges"] <= posts["checkout_attempts"]  # cart's cancels of unclear charges come on top
    assert rows["GET success with faults"]["figures"]["success_rate"] >= 0.99
    assert rows["GET success with faults"]["figures"]["envoy_retries"] > 0  # catalog's 5% were retried, not absent
    assert rows["authorization"]["figures"]["default_identity"] == 403
    assert rows["mTLS"]["figures"]["peer"] == ["spiffe://cluster.local/ns/e-commerce/sa/payment-service"]
    assert rows["circuit breaker (ejection)"]["figures"]["ejections_active"] >= 1
