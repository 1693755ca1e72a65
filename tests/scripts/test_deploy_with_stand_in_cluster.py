"""deploy-istio.sh, deploy-linkerd.sh, uninstall-istio.sh and uninstall-linkerd.sh against stand-in kubectl,
istioctl, linkerd and helm (fakes/fakecluster.py): no cluster can run here, so every test name says so.

The assertions read the stand-in cluster's state (namespaces, labels, annotations, CRDs, webhooks, Deployments and
their pods' containers), not only which commands ran.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stand_in_cluster import StandInCluster, error_lines, needs_real_kubectl, snapshot, state_difference  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "fakes"))
from fakecluster import cluster_object as fakecluster_object  # noqa: E402

pytestmark = [needs_real_kubectl(), pytest.mark.slow]

APP = "e-commerce"
APP_DEPLOYMENTS = {"redis", "payment-ledger", "catalog-service", "cart-service", "payment-service-v1",
                   "payment-service-v2", "notification-service", "api-gateway", "loadgen"}
NO_QUICK_TEST = "--skip-quick-test"


def new_cluster(tmp_path: Path, name: str = "cluster", **kwargs) -> StandInCluster:
    return StandInCluster(tmp_path / name, **kwargs)


def deployed(tmp_path_factory, script: str) -> Path:
    cluster = StandInCluster(tmp_path_factory.mktemp(script.replace(".", "-")))
    result = cluster.run(script, "--yes", NO_QUICK_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    return cluster.state_file


@pytest.fixture(scope="module")
def istio_state(tmp_path_factory) -> Path:
    """The state after one deploy-istio.sh on an empty stand-in cluster (tests start from copies of it)."""
    return deployed(tmp_path_factory, "deploy-istio.sh")


@pytest.fixture(scope="module")
def linkerd_state(tmp_path_factory) -> Path:
    return deployed(tmp_path_factory, "deploy-linkerd.sh")


def yaml_docs(objects: list[dict]) -> str:
    return yaml.safe_dump_all(objects)


def cluster_from(state_file: Path, tmp_path: Path, **kwargs) -> StandInCluster:
    cluster = new_cluster(tmp_path, **kwargs)
    cluster.state_file.write_text(state_file.read_text())
    return cluster


def istio_leftovers(cluster: StandInCluster) -> list[str]:
    left = [n for n in cluster.names("CustomResourceDefinition") if n.endswith(".istio.io")]
    left += [n for n in cluster.names("MutatingWebhookConfiguration") | cluster.names("ValidatingWebhookConfiguration")
             if n.startswith("istio")]
    left += [f'label on {ns["metadata"]["name"]}' for ns in cluster.objects("Namespace")
             if {"istio-injection", "istio.io/rev"} & set(ns["metadata"].get("labels") or {})]
    left += [n for n in cluster.names("Namespace") if n == "istio-system"]
    left += [n for n in cluster.names("ClusterRole") | cluster.names("ClusterRoleBinding") if n.startswith("istio")]
    return left


def linkerd_leftovers(cluster: StandInCluster) -> list[str]:
    left = [n for n in cluster.names("CustomResourceDefinition") if n.endswith(".linkerd.io")]
    left += [n for n in cluster.names("MutatingWebhookConfiguration") | cluster.names("ValidatingWebhookConfiguration")
             if n.startswith("linkerd")]
    left += [f'annotation on {ns["metadata"]["name"]}' for ns in cluster.objects("Namespace")
             if {"linkerd.io/inject", "config.linkerd.io/default-inbound-policy"} & set(ns["metadata"].get("annotations") or {})]
    left += [n for n in cluster.names("Namespace") if n.startswith("linkerd")]
    left += [n for n in cluster.names("APIService") if "linkerd" in n]
    left += [n for n in cluster.names("ClusterRole") | cluster.names("ClusterRoleBinding") if n.startswith("linkerd-")]
    return left


# ---------------------------------------------------------------------------------------------------------------
# --dry-run
# ---------------------------------------------------------------------------------------------------------------
def positions(output: str, patterns: list[str]) -> list[int]:
    found = []
    for pattern in patterns:
        match = re.search(pattern, output, re.MULTILINE)
        assert match, f"{pattern!r} not in the --dry-run output:\n{output}"
        found.append(match.start())
    return found


def test_deploy_istio_dry_run_lists_the_steps_in_order_and_changes_nothing_with_stand_in_cluster(tmp_path):
    cluster = new_cluster(tmp_path)
    cluster.save(cluster.state())
    before = snapshot(cluster)
    result = cluster.run("deploy-istio.sh", "--dry-run")
    assert result.returncode == 0, result.stderr
    steps = [r"kubectl context: kind-lab", r"^\[dry-run\] istioctl x precheck", r"^\[dry-run\] istioctl install --set profile=demo -y",
             r"^\[dry-run\] kubectl apply -f .*/prometheus\.yaml", r"^\[dry-run\] kubectl apply -f .*/kiali\.yaml",
             r"^\[dry-run\] kubectl kustomize istio .*DestinationRules first", r"grafana-admin",
             r"^\[dry-run\] kubectl kustomize monitoring", r"^\[dry-run\] wait for every rollout in namespace e-commerce",
             r"^\[dry-run\] istioctl analyze -n e-commerce", r"^\[dry-run\] \./quick-test\.sh --mesh istio"]
    found = positions(result.stdout, steps)
    assert found == sorted(found), result.stdout
    assert snapshot(cluster) == before
    assert cluster.mutating_calls() == []


def test_deploy_linkerd_dry_run_lists_the_steps_in_order_and_changes_nothing_with_stand_in_cluster(tmp_path):
    cluster = new_cluster(tmp_path)
    cluster.save(cluster.state())
    before = snapshot(cluster)
    result = cluster.run("deploy-linkerd.sh", "--dry-run")
    assert result.returncode == 0, result.stderr
    steps = [r"kubectl context: kind-lab", r"^\[dry-run\] linkerd check --pre",
             r"^\[dry-run\] kubectl apply -f .*/v1\.2\.1/standard-install\.yaml",
             r"^\[dry-run\] kubectl label\+annotate crd .* as the lab.s \(service-mesh-lab\.io/created-by=deploy-linkerd\.sh\)",
             r"^\[dry-run\] linkerd install --crds \| kubectl apply -f -",
             r"^\[dry-run\] linkerd install \| kubectl apply -f -", r"^\[dry-run\] linkerd check --wait",
             r"^\[dry-run\] linkerd viz install \| kubectl apply -f -",
             r"^\[dry-run\] kubectl kustomize linkerd", r"^\[dry-run\] kubectl kustomize monitoring",
             r"^\[dry-run\] wait for every rollout in namespace e-commerce",
             r"^\[dry-run\] linkerd check --proxy", r"^\[dry-run\] \./quick-test\.sh --mesh linkerd"]
    found = positions(result.stdout, steps)
    assert found == sorted(found), result.stdout
    assert "allow-scrapes" not in result.stdout  # linkerd/authorization.yaml already authorizes the scrapes
    assert "runAsRoot" not in result.stdout  # the stand-in node runs containerd
    assert "DestinationRules" not in result.stdout  # an Istio idea
    assert snapshot(cluster) == before
    assert cluster.mutating_calls() == []


def test_uninstall_dry_run_changes_nothing_with_stand_in_cluster(tmp_path, istio_state):
    cluster = cluster_from(istio_state, tmp_path)
    before = snapshot(cluster)
    result = cluster.run("uninstall-istio.sh", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "[dry-run] istioctl uninstall --purge -y" in result.stdout
    assert "[dry-run] kubectl delete namespace e-commerce" in result.stdout
    assert snapshot(cluster) == before
    assert cluster.mutating_calls() == []


# ---------------------------------------------------------------------------------------------------------------
# Deploy: result, idempotence, order
# ---------------------------------------------------------------------------------------------------------------
def test_deploy_istio_meshes_every_pod_and_applies_destination_rules_first_with_stand_in_cluster(tmp_path, istio_state):
    cluster = cluster_from(istio_state, tmp_path)
    assert cluster.names("Deployment", APP) == APP_DEPLOYMENTS
    assert cluster.namespace(APP)["metadata"]["labels"]["istio-injection"] == "enabled"
    assert {"istio-sidecar-injector"} <= cluster.names("MutatingWebhookConfiguration")
    assert {"prometheus", "grafana", "jaeger", "kiali", "istiod"} <= cluster.names("Deployment", "istio-system")
    assert cluster.names("Deployment", "monitoring") == {"prometheus", "grafana"}
    assert "grafana-admin" in cluster.names("Secret", "monitoring")
    pods = cluster.pods_containers(APP)
    assert pods and all("istio-proxy" in containers for containers in pods.values()), pods
    assert cluster.names("DestinationRule", APP) and cluster.names("VirtualService", APP)


def test_deploy_istio_applies_destination_rules_before_virtual_services_with_stand_in_cluster(tmp_path):
    cluster = new_cluster(tmp_path)
    result = cluster.run("deploy-istio.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode == 0, result.stderr
    kinds = [d["kind"] for d in cluster.applied_documents()]
    assert "DestinationRule" in kinds and "VirtualService" in kinds
    assert max(i for i, k in enumerate(kinds) if k == "DestinationRule") < min(i for i, k in enumerate(kinds) if k == "VirtualService")


def test_deploy_istio_twice_gives_the_same_cluster_with_stand_in_cluster(tmp_path, istio_state):
    cluster = cluster_from(istio_state, tmp_path)
    before = snapshot(cluster)
    result = cluster.run("deploy-istio.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode == 0, result.stderr
    assert state_difference(before, snapshot(cluster)) == [], result.stdout
    restarts = [c for c in cluster.calls() if c["tool"] == "kubectl" and c["args"][:2] == ["rollout", "restart"]]
    assert restarts == []
    assert not [c for c in cluster.calls() if c["tool"] == "kubectl" and c["args"][:3] == ["-n", "monitoring", "create"]]


def test_deploy_linkerd_twice_gives_the_same_cluster_with_stand_in_cluster(tmp_path, linkerd_state):
    cluster = cluster_from(linkerd_state, tmp_path)
    before = snapshot(cluster)
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode == 0, result.stderr
    assert state_difference(before, snapshot(cluster)) == [], result.stdout
    assert "already installed and healthy" in result.stdout


def test_deploy_linkerd_installs_in_order_and_meshes_every_pod_with_stand_in_cluster(tmp_path, linkerd_state):
    cluster = cluster_from(linkerd_state, tmp_path)
    annotations = cluster.namespace(APP)["metadata"]["annotations"]
    assert annotations["linkerd.io/inject"] == "enabled"
    assert annotations["config.linkerd.io/default-inbound-policy"] == "deny"
    crds = cluster.objects("CustomResourceDefinition")
    gateway_api = [c for c in crds if c["spec"]["group"] == "gateway.networking.k8s.io"]
    assert gateway_api and all(c["metadata"]["annotations"]["service-mesh-lab.io/created-by"] == "deploy-linkerd.sh"
                               and c["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "service-mesh-lab"
                               for c in gateway_api)
    assert {"linkerd-destination", "linkerd-identity", "linkerd-proxy-injector"} <= cluster.names("Deployment", "linkerd")
    assert {"metrics-api", "prometheus", "web"} <= cluster.names("Deployment", "linkerd-viz")
    pods = cluster.pods_containers(APP)
    assert pods and all("linkerd-proxy" in containers for containers in pods.values()), pods
    assert cluster.names("HTTPRoute", APP) and cluster.names("Server", APP)
    values = [c for c in cluster.objects("ConfigMap", "linkerd") if c["metadata"]["name"] == "linkerd-config"]
    assert "proxyInit.runAsRoot" not in values[0]["data"]["values"]


def test_deploy_linkerd_sets_run_as_root_only_on_docker_runtime_nodes_with_stand_in_cluster(tmp_path):
    cluster = new_cluster(tmp_path)
    state = cluster.state()
    state["objects"][0]["status"]["nodeInfo"]["containerRuntimeVersion"] = "docker://27.3.1"
    cluster.save(state)
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode == 0, result.stderr
    values = [c for c in cluster.objects("ConfigMap", "linkerd") if c["metadata"]["name"] == "linkerd-config"]
    assert "proxyInit.runAsRoot=true" in values[0]["data"]["values"]


def test_deploy_linkerd_with_jaeger_installs_it_and_points_the_proxies_at_it_with_stand_in_cluster(tmp_path):
    cluster = new_cluster(tmp_path)
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST, "--with-jaeger")
    assert result.returncode == 0, result.stderr
    assert "jaeger" in cluster.names("Deployment", "jaeger-system")
    values = [c for c in cluster.objects("ConfigMap", "linkerd") if c["metadata"]["name"] == "linkerd-config"]
    assert "proxy.tracing.enabled=true" in values[0]["data"]["values"]
    assert "proxy.tracing.collector.endpoint=jaeger-collector.jaeger-system:4317" in values[0]["data"]["values"]
    removed = cluster.run("uninstall-linkerd.sh", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert "jaeger-system" not in cluster.names("Namespace")


# ---------------------------------------------------------------------------------------------------------------
# The other mesh goes first
# ---------------------------------------------------------------------------------------------------------------
def test_deploy_linkerd_removes_istio_first_and_keeps_the_app_with_stand_in_cluster(tmp_path, istio_state):
    cluster = cluster_from(istio_state, tmp_path)
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode == 0, result.stderr
    assert istio_leftovers(cluster) == []
    assert cluster.names("Deployment", APP) == APP_DEPLOYMENTS
    pods = cluster.pods_containers(APP)
    assert all("linkerd-proxy" in c and "istio-proxy" not in c for c in pods.values()), pods
    calls = cluster.calls()
    purge = next(i for i, c in enumerate(calls) if c["tool"] == "istioctl" and c["args"][:1] == ["uninstall"])
    linkerd_install = next(i for i, c in enumerate(calls) if c["tool"] == "linkerd" and c["args"][:1] == ["install"])
    assert purge < linkerd_install


def test_deploy_istio_removes_linkerd_first_with_stand_in_cluster(tmp_path, linkerd_state):
    cluster = cluster_from(linkerd_state, tmp_path)
    result = cluster.run("deploy-istio.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode == 0, result.stderr
    assert linkerd_leftovers(cluster) == []
    pods = cluster.pods_containers(APP)
    assert all("istio-proxy" in c and "linkerd-proxy" not in c for c in pods.values()), pods


def test_deploy_refuses_to_remove_the_other_mesh_without_a_terminal_or_yes_with_stand_in_cluster(tmp_path, istio_state):
    cluster = cluster_from(istio_state, tmp_path)
    before = snapshot(cluster)
    result = cluster.run("deploy-linkerd.sh", NO_QUICK_TEST, stdin=None)
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and "--yes" in lines[0], result.stderr
    assert snapshot(cluster) == before
    assert cluster.mutating_calls() == []


# ---------------------------------------------------------------------------------------------------------------
# Missing prerequisites stop before any change
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("script", ["deploy-istio.sh", "deploy-linkerd.sh", "uninstall-istio.sh", "uninstall-linkerd.sh"])
def test_missing_kubectl_stops_before_any_change_with_stand_in_cluster(tmp_path, script):
    cluster = new_cluster(tmp_path, without=("kubectl",))
    before = snapshot(cluster)
    result = cluster.run(script, "--yes", NO_QUICK_TEST) if script.startswith("deploy") else cluster.run(script, "--yes")
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and "kubectl not found" in lines[0] and "https://" in lines[0], result.stderr
    assert cluster.calls() == [] and snapshot(cluster) == before


@pytest.mark.parametrize("script", ["deploy-istio.sh", "deploy-linkerd.sh", "uninstall-istio.sh", "uninstall-linkerd.sh"])
def test_unreachable_cluster_stops_before_any_change_with_stand_in_cluster(tmp_path, script):
    cluster = new_cluster(tmp_path)
    cluster.update(reachable=False)
    before = snapshot(cluster)
    result = cluster.run(script, "--yes", timeout=30)
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and "not reachable" in lines[0] and "kind-lab" in lines[0], result.stderr
    assert "kubectl context: kind-lab" in result.stdout  # printed before anything else, so nobody picks the wrong one
    assert cluster.mutating_calls() == [] and snapshot(cluster) == before


def test_no_kubectl_context_and_too_little_cpu_stop_before_any_change_with_stand_in_cluster(tmp_path):
    cluster = new_cluster(tmp_path)
    cluster.update(context=None)
    result = cluster.run("deploy-istio.sh", "--yes")
    assert result.returncode != 0 and "no current context" in result.stderr
    assert len(error_lines(result)) == 1

    small = new_cluster(tmp_path, "small")
    state = small.state()
    state["objects"][0]["status"]["allocatable"]["cpu"] = "1500m"
    small.save(state)
    result = small.run("deploy-linkerd.sh", "--yes")
    assert result.returncode != 0 and "1500m allocatable CPU" in result.stderr
    assert len(error_lines(result)) == 1
    assert small.mutating_calls() == []


def test_a_user_who_may_not_list_nodes_gets_a_warning_not_a_stop_with_stand_in_cluster(tmp_path):
    cluster = new_cluster(tmp_path)
    cluster.update(forbidden=["nodes"])
    result = cluster.run("deploy-istio.sh", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "may not list nodes in 'kind-lab'" in result.stderr
    assert "[dry-run] istioctl install --set profile=demo -y" in result.stdout


def test_a_rollout_that_does_not_come_up_shows_events_and_logs_with_stand_in_cluster(tmp_path, istio_state):
    cluster = cluster_from(istio_state, tmp_path)
    cluster.update(failing_workloads=["cart-service"])
    result = cluster.run("deploy-istio.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode != 0
    assert "deployment.apps/cart-service in namespace e-commerce did not become ready" in result.stderr
    assert "Back-off restarting failed container" in result.stderr  # the pod's events
    assert "stand-in log of pod/cart-service-" in result.stderr  # and its logs
    assert "Quick test" not in result.stdout


# ---------------------------------------------------------------------------------------------------------------
# --registry reaches the manifests
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("script", ["deploy-istio.sh", "deploy-linkerd.sh"])
def test_registry_option_reaches_the_applied_manifests_with_stand_in_cluster(tmp_path, script):
    cluster = new_cluster(tmp_path)
    result = cluster.run(script, "--yes", NO_QUICK_TEST, "--registry", "localhost:5001")
    assert result.returncode == 0, result.stderr
    built = set(cluster.run("build.sh", "--list-images").stdout.split())
    images = {c["image"] for d in cluster.objects("Deployment", APP)
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert {f"localhost:5001/{image}" for image in built} <= images, images
    third_party = {i for i in images if not i.startswith("localhost:5001/")}
    assert all(i.startswith("redis:") for i in third_party), third_party  # only images we do not build stay as they are
    applied = {c["image"] for d in cluster.applied_documents() if d["kind"] == "Deployment"
               for c in d["spec"]["template"]["spec"]["containers"]}
    assert "localhost:5001/payment-service:v2" in applied and "payment-service:v1" not in applied
    # Each overlay it rendered is cleaned up (those of this run: other tests may be rendering theirs meanwhile).
    overlays = [c["args"][1] for c in cluster.calls() if c["tool"] == "kubectl" and c["args"][:1] == ["kustomize"]
                and "/.tools/render." in c["args"][1]]
    assert overlays and not [o for o in overlays if Path(o).exists()], overlays


# ---------------------------------------------------------------------------------------------------------------
# Uninstall
# ---------------------------------------------------------------------------------------------------------------
def test_uninstall_istio_leaves_no_webhook_crd_or_label_and_is_idempotent_with_stand_in_cluster(tmp_path, istio_state):
    cluster = cluster_from(istio_state, tmp_path)
    result = cluster.run("uninstall-istio.sh", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert istio_leftovers(cluster) == []
    assert APP not in cluster.names("Namespace") and "monitoring" not in cluster.names("Namespace")
    assert not {"prometheus", "kiali"} & cluster.names("ClusterRole")  # the add-ons' RBAC too
    after = snapshot(cluster)
    again = cluster.run("uninstall-istio.sh", "--yes")
    assert again.returncode == 0, again.stderr
    assert "Istio is not installed" in again.stdout
    assert snapshot(cluster) == after


def test_uninstall_linkerd_leaves_no_webhook_crd_or_annotation_and_is_idempotent_with_stand_in_cluster(tmp_path, linkerd_state):
    cluster = cluster_from(linkerd_state, tmp_path)
    result = cluster.run("uninstall-linkerd.sh", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert linkerd_leftovers(cluster) == []
    # deploy-linkerd.sh installed the Gateway API CRDs, so they go too.
    assert not [n for n in cluster.names("CustomResourceDefinition") if n.endswith("gateway.networking.k8s.io")]
    after = snapshot(cluster)
    again = cluster.run("uninstall-linkerd.sh", "--yes")
    assert again.returncode == 0, again.stderr
    assert snapshot(cluster) == after


@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
def test_uninstall_without_the_mesh_cli_removes_everything_with_kubectl_with_stand_in_cluster(tmp_path, mesh, istio_state,
                                                                                            linkerd_state):
    cli = "istioctl" if mesh == "istio" else "linkerd"
    cluster = cluster_from(istio_state if mesh == "istio" else linkerd_state, tmp_path, without=(cli,))
    result = cluster.run(f"uninstall-{mesh}.sh", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{cli} CLI not found" in result.stderr or f"{cli} not found" in result.stderr
    assert (istio_leftovers if mesh == "istio" else linkerd_leftovers)(cluster) == []
    assert not [c for c in cluster.calls() if c["tool"] == cli]


@pytest.mark.parametrize("mesh,proxy", [("istio", "istio-proxy"), ("linkerd", "linkerd-proxy")])
def test_uninstall_keep_app_restarts_the_app_without_sidecars_with_stand_in_cluster(tmp_path, mesh, proxy, istio_state,
                                                                                   linkerd_state):
    cluster = cluster_from(istio_state if mesh == "istio" else linkerd_state, tmp_path)
    result = cluster.run(f"uninstall-{mesh}.sh", "--yes", "--keep-app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (istio_leftovers if mesh == "istio" else linkerd_leftovers)(cluster) == []
    assert cluster.names("Deployment", APP) == APP_DEPLOYMENTS
    pods = cluster.pods_containers(APP)
    assert pods and not any(proxy in c for c in pods.values()), pods
    assert "monitoring" in cluster.names("Namespace")


def test_uninstall_names_what_remained_and_fails_with_stand_in_cluster(tmp_path, istio_state):
    cluster = cluster_from(istio_state, tmp_path)
    # A CRD whose deletion never completes (a finalizer nobody clears) must be named, not silently ignored.
    cluster.update(stuck=["virtualservices.networking.istio.io"])
    result = cluster.run("uninstall-istio.sh", "--yes")
    assert result.returncode != 0
    assert "left: crd/virtualservices.networking.istio.io" in result.stderr
    assert [line for line in error_lines(result) if line.startswith("error:")] == [
        "error: istio was not removed completely (see 'left:' above): delete those by hand, or rerun after they "
        "finish terminating"]
    assert istio_leftovers(cluster) == ["virtualservices.networking.istio.io"]


# ---------------------------------------------------------------------------------------------------------------
# Review fixes: preflight before the other mesh goes, `linkerd uninstall` with meshed pods, linkerd-jaeger, Evicted pods
# ---------------------------------------------------------------------------------------------------------------
def test_deploy_linkerd_on_istio_with_an_incompatible_gateway_api_changes_nothing_with_stand_in_cluster(tmp_path,
                                                                                                       istio_state):
    cluster = cluster_from(istio_state, tmp_path)
    cluster.tool("kubectl", "apply", "-f", str(cluster.write_gateway_api("v1.6.0")))  # newer than Linkerd 2.20 supports
    before = snapshot(cluster)
    cluster.clear_calls()
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and "v1.6.0" in lines[0], result.stderr
    assert snapshot(cluster) == before  # Istio is still there: the preflight stopped before removing it
    assert cluster.mutating_calls() == []


def test_deploy_linkerd_with_jaeger_but_without_helm_keeps_istio_with_stand_in_cluster(tmp_path, istio_state):
    cluster = cluster_from(istio_state, tmp_path, without=("helm",))
    before = snapshot(cluster)
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST, "--with-jaeger")
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and "helm not found" in lines[0], result.stderr
    assert snapshot(cluster) == before


def test_deploy_istio_runs_the_precheck_before_removing_linkerd_with_stand_in_cluster(tmp_path, linkerd_state):
    cluster = cluster_from(linkerd_state, tmp_path)
    result = cluster.run("deploy-istio.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode == 0, result.stderr
    calls = cluster.calls()
    precheck = next(i for i, c in enumerate(calls) if c["tool"] == "istioctl" and c["args"][:2] == ["x", "precheck"])
    first_change = next(i for i, c in enumerate(calls) if c in cluster.mutating_calls())
    assert precheck < first_change


def test_stand_in_linkerd_uninstall_refuses_while_meshed_pods_run_without_force(tmp_path, linkerd_state):
    """The stand-in itself, so the tests below can catch a script that drops --force."""
    cluster = cluster_from(linkerd_state, tmp_path)
    cluster.tool("kubectl", "delete", "namespace", "linkerd-viz")
    refused = cluster.tool("linkerd", "uninstall")
    assert refused.returncode == 1 and "Please uninject the following pods" in refused.stderr
    assert "* api-gateway-" in refused.stderr
    forced = cluster.tool("linkerd", "uninstall", "--force")
    assert forced.returncode == 0 and "linkerd-proxy-injector-webhook-config" in forced.stdout


def test_uninstall_linkerd_keep_app_passes_force_and_removes_the_control_plane_with_stand_in_cluster(tmp_path,
                                                                                                    linkerd_state):
    cluster = cluster_from(linkerd_state, tmp_path)
    result = cluster.run("uninstall-linkerd.sh", "--yes", "--keep-app")
    assert result.returncode == 0, result.stdout + result.stderr
    uninstall = [c for c in cluster.calls() if c["tool"] == "linkerd" and c["args"][:1] == ["uninstall"]]
    assert uninstall and all(c["args"] == ["uninstall", "--force"] for c in uninstall)
    assert linkerd_leftovers(cluster) == []


def test_uninstall_linkerd_removes_an_old_linkerd_jaeger_extension_with_kubectl_with_stand_in_cluster(tmp_path,
                                                                                                    linkerd_state):
    cluster = cluster_from(linkerd_state, tmp_path)
    jaeger = {"linkerd.io/extension": "jaeger"}
    cluster.tool("kubectl", "apply", "-f", "-", stdin=yaml_docs([
        fakecluster_object("Namespace", "linkerd-jaeger", jaeger),
        fakecluster_object("ClusterRole", "linkerd-jaeger-injector", jaeger),
        fakecluster_object("ClusterRoleBinding", "jaeger-injector-binding", jaeger),
        fakecluster_object("MutatingWebhookConfiguration", "linkerd-jaeger-injector-webhook-config", jaeger),
    ]))
    assert "linkerd-jaeger" in cluster.names("Namespace")
    result = cluster.run("uninstall-linkerd.sh", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [c for c in cluster.calls() if c["tool"] == "linkerd" and c["args"][:1] == ["jaeger"]]
    assert "linkerd-jaeger" not in cluster.names("Namespace")
    assert "jaeger-injector-binding" not in cluster.names("ClusterRoleBinding")  # by label, not by name
    assert linkerd_leftovers(cluster) == []


def test_deploy_rerun_ignores_evicted_pods_without_a_proxy_with_stand_in_cluster(tmp_path, istio_state):
    cluster = cluster_from(istio_state, tmp_path)
    cluster.add_object({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": "cart-service-5d9f7-evict", "namespace": APP, "labels": {"app": "cart-service"}},
                        "spec": {"containers": [{"name": "cart-service", "image": "cart-service:v1"}], "initContainers": []},
                        "status": {"phase": "Failed", "reason": "Evicted"}})
    result = cluster.run("deploy-istio.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode == 0, result.stderr
    restarts = [c for c in cluster.calls() if c["tool"] == "kubectl" and "restart" in c["args"]]
    assert restarts == [], result.stdout
    assert "no restart" in result.stdout
