"""./quick-test.sh against the local mesh under Linkerd's intents with the seed's faults on (switched on in the
shared stack for the run, off again after): every check runs for real, none SKIPs, and each holds Linkerd to
its own files. And the side by side's table, made from this run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from devstack.mesh import probe
from devstack.mesh.runtime import free_port_offset
from devstack.stack import port_is_free
from tests.scripts.test_quick_test import run_quick_test

ROOT = Path(__file__).resolve().parents[3]
MESH_ROWS = {"workloads ready", "canary split 95/5", "POST never retried", "GET success with faults", "authorization",
             "mTLS", "route timeout", "circuit breaker (ejection)", "sick canary's share", "metrics"}


SAMPLES = "220"  # the canary needs 172 payment answers for a band above 0%; about 3% of checkouts get none


@pytest.fixture(scope="module")
def report(linkerd):
    for url in linkerd.admin_urls.values():
        requests.put(url + "/admin/faults", json={"enabled": True}, timeout=5)  # the seed's own rates
    try:
        result = run_quick_test("--inventory", str(linkerd.layout.inventory_path), "--json", "-n", SAMPLES,
                                timeout=300)
    finally:
        for url in linkerd.admin_urls.values():
            requests.delete(url + "/admin/faults", timeout=5)  # back to the stack's faults-off
        wait_until_nothing_is_ejected(linkerd)
    return result


def wait_until_nothing_is_ejected(linkerd, limit_s: float = 40.0) -> None:
    """quick-test's ejection checks leave payment endpoints out for their penalty: the next tests get them back."""
    admin = linkerd.admin_url("cart-service-1")
    deadline = time.monotonic() + limit_s
    while probe.ejected_hosts(admin) and time.monotonic() < deadline:
        time.sleep(1)


def test_every_check_passes_and_none_skips(report):
    data = json.loads(report.stdout)
    rows = {c["name"]: c for c in data["checks"]}
    assert report.returncode == 0, [c for c in data["checks"] if c["status"] != "PASS"]
    assert data["summary"]["fail"] == 0 and data["summary"]["skip"] == 0
    assert MESH_ROWS <= set(rows) and data["mesh"] == "linkerd (local)"


def test_the_figures_are_linkerds(report):
    rows = {c["name"]: c for c in json.loads(report.stdout)["checks"]}
    assert rows["authorization"]["figures"]["proxy_error"] == "unauthorized request on route"
    assert rows["mTLS"]["figures"]["plaintext"] == 403 and rows["mTLS"]["figures"]["plaintext_redis"] == "refused"
    assert rows["mTLS"]["figures"]["peer"] == [
        "payment-service.e-commerce.serviceaccount.identity.linkerd.cluster.local"]
    sick = rows["sick canary's share"]["figures"]
    assert sick["failed_fast"] == 0 and sick["v2"] == 0 and sick["v1"] + sick["other"] == sick["calls"]
    assert rows["POST never retried"]["figures"]["retries"] == 0
    assert rows["GET success with faults"]["figures"]["envoy_retries"] > 0


def test_the_side_by_side_table_says_what_it_measured(report, tmp_path):
    """The rows of --compare from this run: Linkerd's column has its figures and files; Istio's, not run here,
    says so instead of inventing figures. --markdown replaces only the text between its markers."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from quicktest import compare

    results = {"_when": "Measured today.", "linkerd": json.loads(report.stdout)}  # run_compare's shape
    rows = {label: (istio, linkerd, files) for label, istio, linkerd, files in compare.table_rows(results)}
    assert len(rows) == 8
    istio, linkerd, files = rows["v2's share when v2 is sick"]
    assert istio == "not run" and linkerd.startswith("PASS: 0 of ") and "linkerd/patches/failure-accrual.yaml" in files
    assert rows["plaintext to a sidecar"][1] == "PASS: HTTP to payment: 403 (identity required); TCP to Redis: refused"
    page = tmp_path / "page.md"
    page.write_text(f"# title\nbefore\n{compare.BEGIN}\nold\n{compare.END}\nafter\n")
    compare.write_markdown(page, compare.render_markdown(results, "./quick-test.sh --compare"))
    text = page.read_text()
    assert text.startswith("# title\nbefore\n") and text.endswith("\nafter\n") and "old" not in text
    assert "| v2's share when v2 is sick | not run | PASS: 0 of" in text
    assert "Measured today." in text


def test_compare_dry_run_says_what_it_would_start():
    result = run_quick_test("--compare", "--dry-run", "--port-offset", "1000")
    assert result.returncode == 0, result.stderr
    assert "would start ./run-local.sh --mesh istio --port-offset 1000" in result.stdout
    assert "would start ./run-local.sh --mesh linkerd --port-offset 1000" in result.stdout


def test_compare_stopped_while_a_mesh_starts_stops_that_mesh(tmp_path):
    """quick-test.sh turns Ctrl-C into TERM for its checks (cleanup()): sent while --compare waits for the first
    ./run-local.sh --mesh to start (a session of its own, which Ctrl-C does not reach), that stack is stopped too
    instead of being left running with every port it holds."""
    offset = free_port_offset(8000, step=500, last=12500)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
    checks = subprocess.Popen([sys.executable, "-m", "quicktest", "--mode", "local", "--compare", "--port-offset",
                               str(offset), "--compare-data-dir", str(tmp_path)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    out = tmp_path / "istio" / "run-local.out"
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and "Starting the local mesh" in out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert out.exists(), "./run-local.sh --mesh istio did not start"
        checks.send_signal(signal.SIGTERM)
        assert checks.wait(timeout=200) == 143
        deadline = time.monotonic() + 10
        while not port_is_free(5000 + offset) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert port_is_free(5000 + offset)
        assert not running_under(tmp_path)
    finally:
        for pid in running_under(tmp_path):  # what the unfixed command left: its run-local stops its own stack
            os.kill(pid, signal.SIGINT)


def running_under(folder: Path) -> list[int]:
    """The ./run-local.sh (python -m devstack) processes whose data folder is under `folder`."""
    found = subprocess.run(["pgrep", "-f", f"devstack .*--data-dir {folder}"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]
