"""Fault injection switched at runtime: one PUT reaches every worker, probes stay green, failures say so."""
import time

import requests

from tests.support import admin_url, metric_value, spread_over_workers


def test_error_rate_one_fails_every_business_request_on_every_worker(stack, faults):
    catalog = stack.urls["catalog"]
    faults.set("catalog", enabled=True, error_rate=1.0)
    answers = []
    sent, pids = spread_over_workers(
        lambda rid: answers.append(requests.get(catalog + "/products", headers={"x-request-id": rid}, timeout=10)),
        stack.logs_dir / "catalog.log", "every-worker-")
    assert len(pids) >= 2, "one PUT must reach every worker; this run did not reach two"
    assert len(answers) == sent and {a.status_code for a in answers} == {500}
    assert all(a.json()["injected"] is True and a.json()["fault"] == "error" for a in answers)
    assert requests.get(admin_url(stack, "catalog") + "/health", timeout=5).status_code == 200
    assert requests.get(admin_url(stack, "catalog") + "/ready", timeout=5).status_code == 200


def test_error_rate_zero_never_fails(stack, faults):
    faults.set("catalog", enabled=True, error_rate=0.0)
    assert {requests.get(stack.urls["catalog"] + "/products", timeout=5).status_code for _ in range(30)} == {200}


def test_error_rate_is_statistically_right(stack, faults):
    """30% errors over 400 requests: expected 120, sd ~9.2; accept 4.5 sd (79..161), a false alarm once in ~150,000
    runs, while a rate of 0.2 or 0.4 still fails."""
    faults.set("catalog", enabled=True, error_rate=0.3)
    with requests.Session() as http:
        failures = sum(http.get(stack.urls["catalog"] + "/products", timeout=5).status_code == 500 for _ in range(400))
    assert 79 <= failures <= 161, failures


def test_sick_instance_fails_business_keeps_probes(stack, faults):
    faults.set("payment-v2", enabled=True, sick=True)
    response = requests.post(stack.urls["payment-v2"] + "/payments", headers={"Idempotency-Key": "k"}, timeout=5,
                             json={"order_id": "o1", "user_id": "u", "amount": "1.00", "currency": "USD"})
    assert response.status_code == 500 and response.json()["fault"] == "sick"
    for path in ("/health", "/ready", "/metrics"):  # never faulted, on either port
        assert requests.get(admin_url(stack, "payment-v2") + path, timeout=5).status_code == 200
        assert requests.get(stack.urls["payment-v2"] + path, timeout=5).status_code == 200


def test_added_latency(stack, faults):
    """Probes are never delayed; that they also stay fast when every business thread sleeps is test_admin_port's."""
    faults.set("catalog", enabled=True, error_rate=0.0, delay_ms=300)
    started = time.perf_counter()
    assert requests.get(stack.urls["catalog"] + "/products/1", timeout=5).status_code == 200
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    requests.get(admin_url(stack, "catalog") + "/health", timeout=5)
    assert time.perf_counter() - started < 0.3


def test_master_switch_turns_everything_off(stack, faults):
    faults.set("catalog", enabled=False, error_rate=1.0, sick=True)
    assert requests.get(stack.urls["catalog"] + "/products", timeout=5).status_code == 200


def test_injected_faults_are_counted(stack, faults):
    def count():
        return metric_value(requests.get(stack.urls["catalog"] + "/metrics", timeout=5).text,
                            "injected_faults_total", fault="error")

    before = count()
    faults.set("catalog", enabled=True, error_rate=1.0)
    for _ in range(7):
        requests.get(stack.urls["catalog"] + "/products", timeout=5)
    assert count() - before == 7


def test_delete_resets_to_environment_defaults(stack):
    url = admin_url(stack, "catalog") + "/admin/faults"
    requests.put(url, json={"enabled": True, "error_rate": 0.5}, timeout=5)
    reset = requests.delete(url, timeout=5).json()
    assert reset == {"enabled": False, "error_rate": 0.05, "delay_ms": 0, "sick": False}


def test_seed_defaults_come_from_the_environment(seed_faults_stack):
    catalog = requests.get(admin_url(seed_faults_stack, "catalog") + "/admin/faults", timeout=5).json()
    payment = requests.get(admin_url(seed_faults_stack, "payment-v2") + "/admin/faults", timeout=5).json()
    assert catalog["enabled"] is True and catalog["error_rate"] == 0.05
    assert payment["decline_rate"] == 0.10 and payment["timeout_rate"] == 0.05 and payment["timeout_seconds"] == 10
