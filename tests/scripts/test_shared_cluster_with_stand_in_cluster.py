"""The lab in a cluster it shares with others, against the stand-in cluster (fakes/fakecluster.py; no cluster runs
here): deploy and uninstall create, label and delete only what is the lab's, keep a mesh that others still use (or
that the lab did not install) unless --purge-mesh says otherwise, show in --dry-run exactly what would go, and mesh
Jaeger under Linkerd (Linkerd exports spans only to a collector in the mesh: linkerd docs, tasks/distributed-tracing).

"Someone else's" objects are put in the stand-in cluster the way a real cluster would have them: another team's
namespace asking for injection with its meshed pod and mesh configuration, an HTTPRoute elsewhere, a monitoring
namespace from another Prometheus stack, a ClusterRole named like Istio's add-on's.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stand_in_cluster import StandInCluster, error_lines, needs_real_kubectl, snapshot  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent / "fakes"))
import fakecluster  # noqa: E402

pytestmark = [needs_real_kubectl(), pytest.mark.slow]
APP = "e-commerce"
NO_QUICK_TEST = "--skip-quick-test"
LAB = {"app.kubernetes.io/part-of": "service-mesh-lab", "app.kubernetes.io/managed-by": "service-mesh-lab"}


def apply(cluster: StandInCluster, *objects: dict) -> None:
    result = cluster.tool("kubectl", "apply", "-f", "-", stdin=yaml.safe_dump_all(list(objects)))
    assert result.returncode == 0, result.stderr


def namespace(name: str, labels: dict | None = None, annotations: dict | None = None) -> dict:
    return fakecluster.cluster_object("Namespace", name, labels, annotations)


def foreign_team(cluster: StandInCluster, mesh: str) -> None:
    """Team A's namespace, meshed with the same mesh, with a Deployment and mesh configuration of its own."""
    if mesh == "istio":
        apply(cluster, namespace("team-a", {"istio-injection": "enabled"}))
        apply(cluster, {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                        "metadata": {"name": "orders", "namespace": "team-a"}, "spec": {"hosts": ["orders"]}})
    else:
        apply(cluster, namespace("team-a", annotations={"linkerd.io/inject": "enabled"}))
        apply(cluster, {"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
                        "metadata": {"name": "orders", "namespace": "team-a"}, "spec": {"port": "http"}})
    apply(cluster, fakecluster.workload("orders", "team-a"))


@pytest.fixture(scope="module")
def deployed_states(tmp_path_factory) -> dict[str, Path]:
    """One deploy per mesh on an empty stand-in cluster; each test starts from a copy (deploys are the slow part)."""
    states = {}
    for mesh in ("istio", "linkerd"):
        cluster = StandInCluster(tmp_path_factory.mktemp(f"deployed-{mesh}"))
        result = cluster.run(f"deploy-{mesh}.sh", "--yes", NO_QUICK_TEST)
        assert result.returncode == 0, result.stdout + result.stderr
        states[mesh] = cluster.state_file
    return states


@pytest.fixture
def deployed(tmp_path, deployed_states):
    def copy(_unused: Path, mesh: str) -> StandInCluster:
        cluster = StandInCluster(tmp_path / f"cluster-{mesh}")
        cluster.state_file.write_text(deployed_states[mesh].read_text())
        return cluster
    return copy


def pods_with(cluster: StandInCluster, namespace: str, container: str) -> list[str]:
    return [n for n, c in cluster.pods_containers(namespace).items() if container in c]


# ---------------------------------------------------------------------------------------------------------------
# What deploy creates says it is the lab's
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
def test_deploy_labels_everything_it_creates_and_records_the_namespaces_it_created_with_stand_in_cluster(tmp_path, mesh, deployed):
    cluster = deployed(tmp_path, mesh)
    ours = [o for o in cluster.state()["objects"] if o["metadata"].get("namespace") in (APP, "monitoring")
            and o["kind"] not in ("Pod", "Event")]
    unlabelled = [f'{o["kind"]}/{o["metadata"]["name"]}' for o in ours
                  if any((o["metadata"].get("labels") or {}).get(k) != v for k, v in LAB.items())]
    assert ours and unlabelled == []
    for name in (APP, "monitoring", "istio-system" if mesh == "istio" else "linkerd"):
        annotations = cluster.namespace(name)["metadata"].get("annotations") or {}
        assert annotations.get("service-mesh-lab.io/created-by") == f"deploy-{mesh}.sh", name
    if mesh == "istio":
        addon_roles = [o for o in cluster.objects("ClusterRole") if o["metadata"]["name"] in ("prometheus", "kiali")]
        assert addon_roles and all(o["metadata"]["labels"]["service-mesh-lab.io/component"] == "istio-addons"
                                   for o in addon_roles)


# ---------------------------------------------------------------------------------------------------------------
# A foreign monitoring namespace: used, never labelled, never deleted (item: kube-prometheus-stack's)
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mesh", ["linkerd"])  # the namespace rules are the same code for both meshes (mesh.sh, uninstall.sh)
def test_a_monitoring_namespace_that_is_not_ours_survives_deploy_and_uninstall_with_stand_in_cluster(tmp_path, mesh):
    cluster = StandInCluster(tmp_path / "cluster")
    apply(cluster, namespace("monitoring", {"app.kubernetes.io/managed-by": "Helm"}))
    apply(cluster, fakecluster.workload("kube-prometheus-stack-operator", "monitoring",
                                        {"app.kubernetes.io/managed-by": "Helm"}))
    assert cluster.run(f"deploy-{mesh}.sh", "--yes", NO_QUICK_TEST).returncode == 0
    monitoring = cluster.namespace("monitoring")
    assert monitoring["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "Helm"}  # not adopted
    assert "service-mesh-lab.io/created-by" not in (monitoring["metadata"].get("annotations") or {})
    assert {"prometheus", "grafana", "kube-prometheus-stack-operator"} <= cluster.names("Deployment", "monitoring")

    result = cluster.run(f"uninstall-{mesh}.sh", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "keep:   namespace monitoring (not created by the lab" in result.stdout
    assert "monitoring" in cluster.names("Namespace")
    assert cluster.names("Deployment", "monitoring") == {"kube-prometheus-stack-operator"}
    assert "grafana-admin" not in cluster.names("Secret", "monitoring")  # ours: labelled when created
    assert APP not in cluster.names("Namespace")  # ours: created by the deploy


def test_deploy_stops_before_any_change_when_it_would_overwrite_someone_elses_object_with_stand_in_cluster(tmp_path):
    cluster = StandInCluster(tmp_path / "cluster")
    apply(cluster, namespace("monitoring"), fakecluster.workload("grafana", "monitoring"))
    before = snapshot(cluster)
    cluster.clear_calls()
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and "would change objects that are not the lab's: Deployment/grafana (namespace monitoring)" \
        in lines[0], result.stderr
    assert snapshot(cluster) == before and cluster.mutating_calls() == []


def test_istio_add_ons_do_not_overwrite_a_cluster_role_of_the_same_generic_name_with_stand_in_cluster(tmp_path):
    cluster = StandInCluster(tmp_path / "cluster")
    apply(cluster, fakecluster.cluster_object("ClusterRole", "prometheus", {"app.kubernetes.io/name": "prometheus"}))
    before = snapshot(cluster)
    cluster.clear_calls()
    result = cluster.run("deploy-istio.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode != 0
    assert "the Istio prometheus add-on would overwrite objects that are not the lab's: ClusterRole/prometheus" \
        in result.stderr
    assert snapshot(cluster) == before and cluster.mutating_calls() == []


# ---------------------------------------------------------------------------------------------------------------
# A mesh others use stays; --purge-mesh is the only way to take it away
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
def test_uninstall_keeps_a_mesh_another_namespace_uses_and_lists_why_with_stand_in_cluster(tmp_path, mesh, deployed):
    cluster = deployed(tmp_path, mesh)
    foreign_team(cluster, mesh)
    proxy = f"{mesh}-proxy"
    assert pods_with(cluster, "team-a", proxy)
    result = cluster.run(f"uninstall-{mesh}.sh", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    title = mesh.capitalize()
    kept = next(line for line in result.stdout.splitlines() if line.startswith(f"    keep:   {title}'s control plane"))
    assert "still in use by: " in kept and "namespace/team-a" in kept and "pod/team-a/orders-" in kept, kept
    control_plane = "istio-system" if mesh == "istio" else "linkerd"
    assert control_plane in cluster.names("Namespace")
    assert APP not in cluster.names("Namespace") and "monitoring" not in cluster.names("Namespace")
    team = cluster.namespace("team-a")["metadata"]
    assert (team.get("labels") or {}).get("istio-injection") == "enabled" or \
        (team.get("annotations") or {}).get("linkerd.io/inject") == "enabled"  # their label: untouched
    kind = "VirtualService" if mesh == "istio" else "Server"
    assert "orders" in cluster.names(kind, "team-a") and pods_with(cluster, "team-a", proxy)
    if mesh == "istio":
        assert not {"prometheus", "kiali"} & cluster.names("ClusterRole")  # the lab's add-ons go anyway
        assert "telemetry.istio.io" in " ".join(c["spec"]["group"] for c in cluster.objects("CustomResourceDefinition"))


@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
def test_purge_mesh_removes_the_mesh_cluster_wide_and_names_who_loses_it_with_stand_in_cluster(tmp_path, mesh, deployed):
    cluster = deployed(tmp_path, mesh)
    foreign_team(cluster, mesh)
    result = cluster.run(f"uninstall-{mesh}.sh", "--yes", "--purge-mesh")
    assert result.returncode == 0, result.stdout + result.stderr
    purged = next(line for line in result.stdout.splitlines() if "cluster-wide (--purge-mesh; still in use by: " in line)
    assert "namespace/team-a" in purged, purged
    suffix = ".istio.io" if mesh == "istio" else ".linkerd.io"
    assert not [n for n in cluster.names("CustomResourceDefinition") if n.endswith(suffix)]
    assert "team-a" in cluster.names("Namespace")  # their namespace stays, even now


def test_a_mesh_the_lab_did_not_install_is_used_and_never_removed_with_stand_in_cluster(tmp_path):
    cluster = StandInCluster(tmp_path / "cluster")
    istio = cluster.tool("istioctl", "install", "--set", "profile=demo", "-y")  # someone else's Istio
    assert istio.returncode == 0, istio.stderr
    result = cluster.run("deploy-istio.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Istio is installed already, not by the lab" in result.stderr
    assert not [c for c in cluster.calls() if c["tool"] == "istioctl" and c["args"][:1] == ["install"]][1:]
    removed = cluster.run("uninstall-istio.sh", "--yes")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "keep:   Istio's control plane and CRDs (not installed by the lab" in removed.stdout
    assert "istiod" in cluster.names("Deployment", "istio-system")
    assert not [c for c in cluster.calls() if c["tool"] == "istioctl" and c["args"][:1] == ["uninstall"]]


# ---------------------------------------------------------------------------------------------------------------
# Gateway API CRDs the lab installed, still used elsewhere
# ---------------------------------------------------------------------------------------------------------------
def test_gateway_api_crds_the_lab_installed_stay_while_an_httproute_elsewhere_uses_them_with_stand_in_cluster(tmp_path, deployed):
    cluster = deployed(tmp_path, "linkerd")
    apply(cluster, namespace("team-b"),
          {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
           "metadata": {"name": "shop-edge", "namespace": "team-b"}, "spec": {"parentRefs": [{"name": "edge"}]}})
    result = cluster.run("uninstall-linkerd.sh", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "keep:   the Gateway API CRDs (installed by the lab) (in use by: HTTPRoute/shop-edge (namespace team-b))" \
        in result.stdout
    assert "httproutes.gateway.networking.k8s.io" in cluster.names("CustomResourceDefinition")
    assert "shop-edge" in cluster.names("HTTPRoute", "team-b")
    # Linkerd itself was only the lab's: it goes.
    assert not [n for n in cluster.names("CustomResourceDefinition") if n.endswith(".linkerd.io")]


# ---------------------------------------------------------------------------------------------------------------
# --dry-run shows exactly what would go
# ---------------------------------------------------------------------------------------------------------------
def test_uninstall_dry_run_lists_what_would_go_and_what_stays_and_changes_nothing_with_stand_in_cluster(tmp_path, deployed):
    cluster = deployed(tmp_path, "istio")
    foreign_team(cluster, "istio")
    before = snapshot(cluster)
    cluster.clear_calls()
    result = cluster.run("uninstall-istio.sh", "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "remove: namespace e-commerce (created by the lab)" in out
    assert "remove: namespace monitoring (created by the lab)" in out
    assert "remove: the Istio add-ons the lab applied" in out
    assert "keep:   Istio's control plane and CRDs (still in use by: " in out and "namespace/team-a (istio-injection" in out
    assert "[dry-run] kubectl delete namespace e-commerce" in out
    assert "istioctl uninstall" not in out  # kept, so not even in the dry run
    assert snapshot(cluster) == before and cluster.mutating_calls() == []


def test_uninstall_keep_app_removes_only_the_mesh_configuration_the_lab_applied_with_stand_in_cluster(tmp_path, deployed):
    cluster = deployed(tmp_path, "istio")
    apply(cluster, {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                    "metadata": {"name": "someone-elses", "namespace": APP}, "spec": {"hosts": ["x"]}})
    foreign_team(cluster, "istio")
    result = cluster.run("uninstall-istio.sh", "--yes", "--keep-app")
    assert result.returncode == 0, result.stdout + result.stderr
    assert cluster.names("VirtualService", APP) == {"someone-elses"}
    assert not cluster.names("DestinationRule", APP)
    assert "istio-injection" not in (cluster.namespace(APP)["metadata"].get("labels") or {})
    assert not pods_with(cluster, APP, "istio-proxy")


# ---------------------------------------------------------------------------------------------------------------
# Jaeger under Linkerd must be in the mesh
# ---------------------------------------------------------------------------------------------------------------
def test_with_jaeger_the_collector_runs_meshed_after_the_control_plane_with_stand_in_cluster(tmp_path):
    cluster = StandInCluster(tmp_path / "cluster")
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST, "--with-jaeger")
    assert result.returncode == 0, result.stdout + result.stderr
    jaeger_ns = cluster.namespace("jaeger-system")["metadata"]
    assert jaeger_ns["annotations"]["linkerd.io/inject"] == "enabled"
    assert jaeger_ns["annotations"]["service-mesh-lab.io/created-by"] == "deploy-linkerd.sh"
    assert pods_with(cluster, "jaeger-system", "linkerd-proxy"), cluster.pods_containers("jaeger-system")
    calls = cluster.calls()
    control_plane = next(i for i, c in enumerate(calls) if c["tool"] == "linkerd" and c["args"][:1] == ["install"]
                         and "--crds" not in c["args"])
    helm_install = next(i for i, c in enumerate(calls) if c["tool"] == "helm" and c["args"][:1] == ["upgrade"])
    assert control_plane < helm_install


def test_a_jaeger_installed_before_the_mesh_is_restarted_onto_it_with_stand_in_cluster(tmp_path, deployed):
    cluster = deployed(tmp_path, "linkerd")
    apply(cluster, namespace("jaeger-system", LAB, {"service-mesh-lab.io/created-by": "deploy-linkerd.sh"}),
          fakecluster.workload("jaeger", "jaeger-system", {"app.kubernetes.io/managed-by": "Helm"}))
    assert not pods_with(cluster, "jaeger-system", "linkerd-proxy")  # as an older deploy left it
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST, "--with-jaeger")
    assert result.returncode == 0, result.stdout + result.stderr
    assert pods_with(cluster, "jaeger-system", "linkerd-proxy")


def test_a_cluster_deployed_by_an_older_lab_release_deploys_again_with_stand_in_cluster(tmp_path, deployed):
    """Older releases set no labels but part-of on their namespaces, and no creation records: their objects are not
    foreign (no conflict), and a redeploy labels them, so the next uninstall can remove them."""
    cluster = deployed(tmp_path, "linkerd")
    state = cluster.state()
    for obj in state["objects"]:
        meta = obj["metadata"]
        if meta.get("namespace") in (APP, "monitoring") or (obj["kind"] == "Namespace" and meta["name"] in (APP, "monitoring")):
            labels = meta.get("labels") or {}
            labels.pop("app.kubernetes.io/managed-by", None)
            if obj["kind"] != "Namespace":
                labels.pop("app.kubernetes.io/part-of", None)
            (meta.get("annotations") or {}).pop("service-mesh-lab.io/created-by", None)
            obj.pop("_applied", None)
    cluster.save(state)
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    deployments = cluster.objects("Deployment", APP)
    assert deployments and all(d["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "service-mesh-lab"
                               for d in deployments)
    removed = cluster.run("uninstall-linkerd.sh", "--yes")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "keep:   namespace e-commerce (not created by the lab" in removed.stdout
    assert not cluster.objects("Deployment", APP)  # the lab's objects went, by their labels


# ---------------------------------------------------------------------------------------------------------------
# Someone else's Jaeger in jaeger-system; users of a mesh that cannot be listed
# ---------------------------------------------------------------------------------------------------------------
def test_someone_elses_jaeger_is_used_as_it_is_and_keeps_linkerd_in_place_with_stand_in_cluster(tmp_path):
    """jaeger-system with release "jaeger" is exactly what Linkerd's distributed tracing task installs: `helm upgrade
    --install jaeger` over it would reset their values to ours, and a restart would cycle their pods; being meshed,
    it uses Linkerd, so uninstall must keep Linkerd for it."""
    cluster = StandInCluster(tmp_path / "cluster")
    apply(cluster, namespace("jaeger-system", annotations={"linkerd.io/inject": "enabled"}))
    theirs = fakecluster.workload("jaeger", "jaeger-system", {"app.kubernetes.io/managed-by": "Helm"})
    theirs["spec"]["template"]["spec"]["containers"][0]["image"] = "jaegertracing/jaeger:2.1.0"
    apply(cluster, theirs)
    result = cluster.run("deploy-linkerd.sh", "--yes", NO_QUICK_TEST, "--with-jaeger")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "namespace jaeger-system is not the lab's: its Jaeger is used as it is" in result.stderr
    jaeger = next(d for d in cluster.objects("Deployment", "jaeger-system") if d["metadata"]["name"] == "jaeger")
    assert jaeger["spec"]["template"] == theirs["spec"]["template"]  # neither upgraded nor restarted
    assert not [c for c in cluster.calls() if c["tool"] == "helm" and c["args"][:1] == ["upgrade"]]
    assert "service-mesh-lab.io/created-by" not in cluster.namespace("jaeger-system")["metadata"]["annotations"]

    removed = cluster.run("uninstall-linkerd.sh", "--yes")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "keep:   namespace jaeger-system (not created by the lab)" in removed.stdout
    kept = next(line for line in removed.stdout.splitlines() if line.startswith("    keep:   Linkerd's control plane"))
    assert "namespace/jaeger-system (linkerd.io/inject=enabled)" in kept, kept
    assert "jaeger" in cluster.names("Deployment", "jaeger-system") and "linkerd" in cluster.names("Namespace")


def test_stand_in_kubectl_get_prints_the_types_it_may_list_and_fails_for_the_others_like_kubectl(tmp_path):
    """kubectl pkg/cmd/get/get.go: the builder runs ContinueOnError; what it found is printed, the errors returned."""
    cluster = StandInCluster(tmp_path / "cluster")
    apply(cluster, namespace("team-a"), {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "orders",
                                                                                             "namespace": "team-a"}})
    cluster.update(forbidden=["pods"])
    both = cluster.tool("kubectl", "get", "pods,services", "-A", "-o", "name")
    assert both.returncode == 1 and both.stdout == "service/orders\n" and "Forbidden" in both.stderr
    unmapped = cluster.tool("kubectl", "get", "-f", "-", "--ignore-not-found", "-o", "name", stdin=yaml.safe_dump_all([
        {"apiVersion": "telemetry.istio.io/v1", "kind": "Telemetry", "metadata": {"name": "t", "namespace": "team-a"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "orders", "namespace": "team-a"}}]))
    assert unmapped.returncode == 1 and unmapped.stdout == "service/orders\n" and "no matches for kind" in unmapped.stderr


@pytest.mark.parametrize("mesh", ["istio", "linkerd"])
def test_a_mesh_whose_users_cannot_be_listed_is_kept_not_removed_on_a_guess_with_stand_in_cluster(tmp_path, mesh,
                                                                                                  deployed):
    """A listing that fails (here configuration this user may not list cluster-wide; a request timeout on a large
    cluster fails the same way) must not read as "nobody else uses the mesh": its CRDs would go, and every object of
    them with them, such as this team's routing in a namespace that asks for no injection."""
    cluster = deployed(tmp_path, mesh)
    if mesh == "istio":
        theirs = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                  "metadata": {"name": "edge", "namespace": "team-edge"}, "spec": {"hosts": ["shop.example.com"]}}
        plural = "virtualservices"
    else:
        theirs = {"apiVersion": "policy.linkerd.io/v1beta3", "kind": "Server",
                  "metadata": {"name": "edge", "namespace": "team-edge"}, "spec": {"port": "http"}}
        plural = "servers"
    apply(cluster, namespace("team-edge"), theirs)
    cluster.update(forbidden=[plural])
    result = cluster.run(f"uninstall-{mesh}.sh", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    kept = next(line for line in result.stdout.splitlines()
                if line.startswith(f"    keep:   {mesh.capitalize()}'s control plane"))
    assert "configuration (could not be listed: kubectl failed)" in kept, kept
    assert "edge" in cluster.names(theirs["kind"], "team-edge")
    assert APP not in cluster.names("Namespace")  # the lab's own part goes as planned
