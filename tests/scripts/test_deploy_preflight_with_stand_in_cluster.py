"""What the deploy and uninstall scripts accept before they change anything, against the stand-in cluster
(fakes/fakecluster.py; no cluster can run here): durations as the real CLIs parse them, the capacity check only
where an install needs it, and the Gateway API versions Linkerd 2.20 supports.

Sources the stand-in follows: Go's time.ParseDuration behind kubectl's/linkerd's/helm's duration flags ("300" is
"missing unit"); linkerd/website 2-edge/features/gateway-api.md (Linkerd 2.20: Gateway API 1.2.1 - 1.5.1);
kubernetes-sigs/gateway-api v1.5.1 config/crd/standard/gateway.networking.k8s.io_vap_safeupgrades.yaml (the
admission policy that refuses CRDs of a bundle older than v1.5.0 once v1.5 is installed).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stand_in_cluster import StandInCluster, error_lines, needs_real_kubectl, snapshot  # noqa: E402

pytestmark = [needs_real_kubectl(), pytest.mark.slow]
NO_QUICK_TEST = "--skip-quick-test"


def calls_with(cluster: StandInCluster, tool: str, word: str) -> list[list[str]]:
    return [c["args"] for c in cluster.calls() if c["tool"] == tool and word in " ".join(c["args"])]


# ---------------------------------------------------------------------------------------------------------------
# Durations: the CLIs take Go durations, a bare number is refused
# ---------------------------------------------------------------------------------------------------------------
def test_stand_in_tools_refuse_a_duration_without_unit_like_the_real_ones(tmp_path):
    cluster = StandInCluster(tmp_path)
    status = cluster.tool("kubectl", "rollout", "status", "deployment/x", "--timeout=300")
    assert status.returncode == 1
    assert 'invalid argument "300" for "--timeout" flag: time: missing unit in duration "300"' in status.stderr
    check = cluster.tool("linkerd", "check", "--wait", "300")
    assert check.returncode == 1 and 'for "--wait" flag: time: missing unit' in check.stderr
    assert cluster.tool("kubectl", "delete", "namespace", "nope", "--ignore-not-found", "--timeout=5m").returncode == 0


def test_a_timeout_in_plain_seconds_reaches_every_cli_as_a_duration_with_stand_in_cluster(tmp_path):
    cluster = StandInCluster(tmp_path)
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST, "--timeout", "300", "--with-jaeger")
    assert result.returncode == 0, result.stdout + result.stderr
    rollouts = calls_with(cluster, "kubectl", "rollout status")
    assert rollouts and all("--timeout=300s" in args for args in rollouts)
    waits = calls_with(cluster, "linkerd", "--wait")
    assert waits and all(args[args.index("--wait") + 1] == "300s" for args in waits)
    helm = calls_with(cluster, "helm", "--timeout")
    assert helm and all(args[args.index("--timeout") + 1] == "300s" for args in helm)


def test_a_rollout_timeout_from_the_environment_is_normalised_too_with_stand_in_cluster(tmp_path):
    cluster = StandInCluster(tmp_path)
    result = cluster.run("deploy-istio.sh", "--yes", NO_QUICK_TEST, ROLLOUT_TIMEOUT="90")
    assert result.returncode == 0, result.stdout + result.stderr
    assert all("--timeout=90s" in args for args in calls_with(cluster, "kubectl", "rollout status"))


@pytest.mark.parametrize("value", ["5 minutes", "1.5.0s", "-3s", "s"])
def test_a_malformed_timeout_stops_with_one_line_before_anything_runs(tmp_path, value):
    cluster = StandInCluster(tmp_path)
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST, "--timeout", value)
    assert result.returncode != 0
    assert error_lines(result) == [f"error: --timeout needs a duration like 300s, 10m or 300 (seconds), got '{value}'"]
    assert cluster.calls() == []


# ---------------------------------------------------------------------------------------------------------------
# Capacity: only an install needs it
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
def test_uninstall_works_on_a_cluster_too_small_to_install_with_stand_in_cluster(tmp_path, mesh):
    cluster = StandInCluster(tmp_path)
    assert cluster.run(f"deploy-{mesh}.sh", "--yes", NO_QUICK_TEST).returncode == 0
    state = cluster.state()
    state["objects"][0]["status"]["allocatable"]["cpu"] = "1500m"  # the node shrank (or another one is gone)
    cluster.save(state)  # (a deploy refuses it now: test_deploy_with_stand_in_cluster's CPU test)
    removed = cluster.run(f"uninstall-{mesh}.sh", "--yes")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "e-commerce" not in cluster.names("Namespace")


# ---------------------------------------------------------------------------------------------------------------
# Gateway API: Linkerd 2.20 supports 1.2.1 - 1.5.1; never offer a downgrade
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["v1.2.1", "v1.5.1"])  # both ends of the window
def test_deploy_linkerd_keeps_every_gateway_api_linkerd_supports_with_stand_in_cluster(tmp_path, version):
    cluster = StandInCluster(tmp_path)
    cluster.tool("kubectl", "apply", "-f", str(cluster.write_gateway_api(version)))
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Gateway API {version} already installed and supported by Linkerd" in result.stdout
    httproutes = [c for c in cluster.objects("CustomResourceDefinition")
                  if c["metadata"]["name"] == "httproutes.gateway.networking.k8s.io"]
    assert httproutes[0]["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == version
    assert not (httproutes[0]["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by")  # not ours


@pytest.mark.parametrize("version", ["v1.1.1", "v1.0.0", "v1.6.0"])
def test_deploy_linkerd_refuses_an_unsupported_gateway_api_without_advising_a_downgrade_with_stand_in_cluster(
        tmp_path, version):
    cluster = StandInCluster(tmp_path)
    cluster.tool("kubectl", "apply", "-f", str(cluster.write_gateway_api(version)))
    before = snapshot(cluster)
    cluster.clear_calls()
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and version in lines[0] and "v1.2.1..v1.5.1" in lines[0], result.stderr
    assert "kubectl apply" not in lines[0] and "standard-install" not in lines[0]
    assert snapshot(cluster) == before and cluster.mutating_calls() == []


def test_stand_in_gateway_api_v1_5_refuses_older_crds_like_its_admission_policy(tmp_path):
    """The stand-in itself: once v1.5.1 (with its safe-upgrades policy) is installed, v1.2.1 cannot replace it."""
    cluster = StandInCluster(tmp_path)
    assert cluster.tool("kubectl", "apply", "-f", str(cluster.write_gateway_api("v1.5.1"))).returncode == 0
    assert "safe-upgrades.gateway.networking.k8s.io" in cluster.names("ValidatingAdmissionPolicy")
    downgrade = cluster.tool("kubectl", "apply", "-f", str(cluster.write_gateway_api("v1.2.1")))
    assert downgrade.returncode == 1
    assert "Installing CRDs with version before v1.5.0 is prohibited by default" in downgrade.stderr


# ---------------------------------------------------------------------------------------------------------------
# Objects that are not the lab's: the preflight stops before anything changes, and --dry-run stops there too
# ---------------------------------------------------------------------------------------------------------------
def apply(cluster: StandInCluster, *objects: dict) -> None:
    result = cluster.tool("kubectl", "apply", "-f", "-", stdin=yaml.safe_dump_all(list(objects)))
    assert result.returncode == 0, result.stderr


def the_only_error(result) -> str:
    lines = error_lines(result)
    assert result.returncode != 0 and len(lines) == 1, result.stdout + result.stderr
    return lines[0]


def test_someone_elses_mesh_wide_telemetry_stops_deploy_istio_and_its_dry_run_before_any_change_with_stand_in_cluster(
        tmp_path):
    """Telemetry/mesh-default in the root namespace is the mesh-wide Telemetry of Istio's docs (istio.io, tasks/
    observability/telemetry-api). On an Istio the lab did not install it is the platform team's: applying istio/ would
    replace its spec, label it as the lab's, and uninstall-istio.sh would then delete it."""
    cluster = StandInCluster(tmp_path)
    assert cluster.tool("istioctl", "install", "--set", "profile=demo", "-y").returncode == 0  # someone else's Istio
    apply(cluster, {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry",
                    "metadata": {"name": "mesh-default", "namespace": "istio-system"},
                    "spec": {"accessLogging": [{"providers": [{"name": "envoy"}]}]}})
    before = snapshot(cluster)
    cluster.clear_calls()
    for args in (["--dry-run"], ["--yes", NO_QUICK_TEST]):
        error = the_only_error(cluster.run("deploy-istio.sh", *args))
        assert error == ("error: istio/ would change objects that are not the lab's: Telemetry/mesh-default (namespace "
                         "istio-system): remove or rename them first, or use another cluster"), args
    assert snapshot(cluster) == before and cluster.mutating_calls() == []


@pytest.mark.parametrize("script", ["deploy-istio.sh", "deploy-linkerd.sh"])
def test_a_dry_run_stops_where_the_deploy_would_stop_on_objects_that_are_not_the_labs_with_stand_in_cluster(tmp_path,
                                                                                                          script):
    cluster = StandInCluster(tmp_path)
    apply(cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}},
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "grafana", "namespace": "monitoring"},
           "spec": {"ports": [{"port": 80}]}})
    dry, real = cluster.run(script, "--dry-run"), cluster.run(script, "--yes", NO_QUICK_TEST)
    assert the_only_error(dry) == the_only_error(real)
    assert "monitoring/ would change objects that are not the lab's: Service/grafana (namespace monitoring)" \
        in the_only_error(dry)


@pytest.mark.parametrize("script", ["deploy-istio.sh", "deploy-linkerd.sh"])
def test_an_app_namespace_that_is_not_the_labs_stops_the_deploy_before_the_mesh_is_installed_with_stand_in_cluster(
        tmp_path, script):
    cluster = StandInCluster(tmp_path)
    apply(cluster, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "e-commerce"}})
    before = snapshot(cluster)
    cluster.clear_calls()
    for args in (["--dry-run"], ["--yes", NO_QUICK_TEST]):
        assert the_only_error(cluster.run(script, *args)).startswith(
            "error: namespace e-commerce exists and is not the lab's"), args
    assert snapshot(cluster) == before and cluster.mutating_calls() == []


def test_the_dry_run_on_someone_elses_istio_says_it_is_used_as_it_is_like_the_deploy_with_stand_in_cluster(tmp_path):
    cluster = StandInCluster(tmp_path)
    assert cluster.tool("istioctl", "install", "--set", "profile=demo", "-y").returncode == 0
    dry = cluster.run("deploy-istio.sh", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Istio is installed already, not by the lab" in dry.stderr
    assert "istioctl install" not in dry.stdout  # what the real run does not do either
