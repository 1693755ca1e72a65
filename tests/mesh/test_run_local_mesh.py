"""./run-local.sh --mesh istio for real: it starts the mesh, prints and writes the inventory, takes a scenario from
another terminal (--apply) while running, and stops every process on Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
import requests

from devstack.mesh import control
from devstack.mesh.runtime import free_port_offset
from devstack.stack import StackError, port_is_free
from tests.support import start_run_local

ROOT = Path(__file__).resolve().parents[2]


def test_run_local_mesh_starts_applies_a_scenario_and_stops(tmp_path):
    offset = free_port_offset(8000, step=500, last=12500)  # apart from the other mesh tests' ranges
    process, output = start_run_local("--mesh", "istio", "--no-faults", "--port-offset", str(offset),
                                      "--data-dir", str(tmp_path))
    try:
        assert process.poll() is None, "".join(output)
        text = "".join(output)
        assert "Ready: the shop on the local mesh" in text, text
        inventory = json.loads((tmp_path / "mesh" / "inventory.json").read_text())
        for row in [inventory["ingress"], *inventory["workloads"]]:
            assert row["instance"] in text and row["envoy_admin"] in text
        apps = [row for row in inventory["workloads"] if row["app_admin"] and row["service"] != "loadgen"]
        assert len(apps) == 8
        for row in apps:  # each app's admin port, printed and answering directly (no sidecar on the way)
            assert row["app_admin"] in text and requests.get(row["app_admin"] + "/ready", timeout=5).status_code == 200
        assert [w["instance"] for w in inventory["workloads"] if w["service"] == "payment-service"] == [
            "payment-service-v1-1", "payment-service-v1-2", "payment-service-v2-1"]
        gateway = f"http://localhost:{5000 + offset}"
        assert requests.get(gateway + "/api/products", timeout=5).headers["server"] == "envoy"

        applied = subprocess.run([str(ROOT / "run-local.sh"), "--mesh", "istio", "--data-dir", str(tmp_path),
                                  "--apply", "istio/scenarios/canary-100-v2.yaml"], capture_output=True, text=True,
                                 timeout=60)
        assert applied.returncode == 0 and "taken by cart-service-1 within" in applied.stdout, applied
        cart = next(w for w in inventory["workloads"] if w["instance"] == "cart-service-1")
        to_payment = next(o["listener"] for o in cart["outbound"] if o["service"] == "payment-service")
        assert Counter(requests.get(f"http://{to_payment}/health", timeout=5).headers["X-Service-Version"]
                       for _ in range(30)) == {"v2": 30}
        state = json.loads((tmp_path / "mesh" / "inventory.json").read_text())["operations"]
        assert state == [["apply", str(ROOT / "istio/scenarios/canary-100-v2.yaml")]]

        refused = subprocess.run([str(ROOT / "run-local.sh"), "--mesh", "istio", "--data-dir", str(tmp_path),
                                  "--apply", "istio/no-such-file.yaml"], capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and refused.stderr.strip() == "run-local: istio/no-such-file.yaml: no such file"

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        assert process.wait(timeout=60) == 0
        ports = [int(row["sidecar_inbound"].rsplit(":", 1)[1]) for row in inventory["workloads"]]
        ports += [int(row["app_admin"].rsplit(":", 1)[1]) for row in apps]
        assert all(port_is_free(p) for p in ports + [5000 + offset])
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)


def test_apply_without_a_running_mesh_says_what_to_do(tmp_path):
    result = subprocess.run([str(ROOT / "run-local.sh"), "--mesh", "istio", "--data-dir", str(tmp_path), "--reset"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"run-local: no running local mesh in {tmp_path} (no {tmp_path}/mesh/inventory.json): "
                                     "start it first with ./run-local.sh --mesh istio")


def test_scenario_options_need_the_mesh():
    result = subprocess.run([str(ROOT / "run-local.sh"), "--scenario", "istio/scenarios/canary-50-50.yaml"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--scenario, --apply, --delete and --reset need --mesh istio" in result.stderr


def test_an_empty_file_or_a_delete_of_what_is_not_there_is_refused_and_changes_nothing(mesh, tmp_path):
    """kubectl refuses both (apply.go: "no objects passed to apply"; delete.go: NotFound): so does the local mesh,
    before it touches a proxy (before, each answered exit 0 as if it had done something)."""
    empty, absent = tmp_path / "empty.yaml", tmp_path / "absent.yaml"
    empty.write_text("# nothing here\n")
    absent.write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: never-applied\n"
                      "  namespace: e-commerce\nspec:\n  hosts: [catalog-service]\n")
    before = control.load_state(mesh.layout)
    with pytest.raises(StackError, match=r"^not applied: .*empty.yaml holds no Kubernetes object"):
        mesh.apply("apply", str(empty))
    with pytest.raises(StackError, match=r"^not deleted: none of VirtualService/never-applied is in the running "):
        mesh.apply("delete", str(absent))
    with pytest.raises(StackError, match=r"is a folder: give one YAML file$"):
        mesh.apply("apply", str(tmp_path))
    assert control.load_state(mesh.layout) == before
