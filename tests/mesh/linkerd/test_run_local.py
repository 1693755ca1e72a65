"""./run-local.sh --mesh linkerd for real: it says that Envoy enforces Linkerd's intents, starts a scenario's own
workload (--scenario fault-injection.yaml), lets another terminal delete it (--delete stops that workload), and
stops every process on Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

from devstack.mesh.runtime import free_port_offset
from devstack.stack import port_is_free
from tests.support import start_run_local

ROOT = Path(__file__).resolve().parents[3]


def test_run_local_linkerd_says_who_enforces_starts_a_scenarios_workload_and_stops(tmp_path):
    offset = free_port_offset(8000, step=500, last=12500)  # apart from the other mesh tests' ranges
    process, output = start_run_local("--mesh", "linkerd", "--no-faults", "--port-offset", str(offset),
                                      "--data-dir", str(tmp_path), "--scenario", "linkerd/scenarios/fault-injection.yaml")
    try:
        text = "".join(output)
        assert process.poll() is None, text
        assert "Envoy enforces Linkerd's intents here, not linkerd2-proxy" in text, text
        assert "Ready: the shop on the local mesh (linkerd)" in text
        inventory = json.loads((tmp_path / "mesh" / "inventory.json").read_text())
        assert inventory["mesh"] == "linkerd" and "not linkerd2-proxy" in inventory["note"]
        fault = next(w for w in inventory["workloads"] if w["instance"] == "payment-fault-1")
        assert fault["created_by"] == "linkerd/scenarios/fault-injection.yaml"
        assert fault["identity"] == "payment-service.e-commerce.serviceaccount.identity.linkerd.cluster.local"
        deleted = subprocess.run([str(ROOT / "run-local.sh"), "--mesh", "linkerd", "--data-dir", str(tmp_path),
                                  "--delete", "linkerd/scenarios/fault-injection.yaml"], capture_output=True, text=True,
                                 timeout=120)
        assert deleted.returncode == 0 and "stopped payment-fault-1" in deleted.stdout, deleted
        assert port_is_free(int(fault["sidecar_inbound"].rsplit(":", 1)[1]))
        assert process.poll() is None  # the rest keeps running
        mismatch = subprocess.run([str(ROOT / "run-local.sh"), "--mesh", "istio", "--data-dir", str(tmp_path),
                                   "--reset"], capture_output=True, text=True, timeout=60)
        assert mismatch.returncode == 1 and f"the local mesh in {tmp_path} runs linkerd, not istio" in mismatch.stderr
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert process.wait(timeout=90) == 0
        ports = [int(w["sidecar_inbound"].rsplit(":", 1)[1]) for w in inventory["workloads"]]
        assert all(port_is_free(p) for p in ports + [5000 + offset])
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_run_local_linkerd_refuses_a_value_linkerd_cannot_parse_in_one_line(tmp_path):
    """A retry limit that is not a number: exit 1 and one line naming file, resource and field, no traceback
    (nothing is started: the configuration is generated before any process)."""
    bad = tmp_path / "bad-limit.yaml"
    bad.write_text("""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: catalog-service-reads
  namespace: e-commerce
  annotations: {retry.linkerd.io/limit: "two"}
spec:
  parentRefs: [{group: core, kind: Service, name: catalog-service, port: 5001}]
  rules: [{backendRefs: [{name: catalog-service, port: 5001}]}]
""")
    offset = free_port_offset(8000, step=500, last=12500)
    result = subprocess.run([str(ROOT / "run-local.sh"), "--mesh", "linkerd", "--port-offset", str(offset),
                             "--data-dir", str(tmp_path / "data"), "--scenario", str(bad)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result
    assert result.stderr.splitlines() == [f"run-local: {bad} HTTPRoute/catalog-service-reads "
                                          "metadata.annotations.retry.linkerd.io/limit: 'two' is not a whole number "
                                          "from 0 to 65535"], result.stderr
