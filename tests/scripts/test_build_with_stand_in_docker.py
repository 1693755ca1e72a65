"""build.sh against a stand-in docker (and kind): no Docker engine runs here, so every test name says so.

The stand-in checks what a real `docker build` would refuse (a missing Dockerfile or context) and records each
image, build argument, push and kind load in its state, which the tests read.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stand_in_cluster import ROOT, StandInCluster, error_lines, needs_real_kubectl, snapshot  # noqa: E402

EXPECTED_IMAGES = ["api-gateway:v1", "catalog-service:v1", "cart-service:v1", "payment-service:v1",
                   "payment-service:v2", "notification-service:v1", "loadgen:v1"]


def list_images(cluster: StandInCluster) -> list[str]:
    result = cluster.run("build.sh", "--list-images")
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_list_images_prints_every_image_of_the_architecture_once(tmp_path):
    images = list_images(StandInCluster(tmp_path))
    assert images == EXPECTED_IMAGES


def test_list_images_names_exactly_what_the_base_manifests_run(tmp_path):
    """The single source of the image list agrees with kubernetes/ (redis comes from Docker Hub as it is)."""
    used = set()
    for manifest in (ROOT / "kubernetes").glob("*.yaml"):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if doc and doc.get("kind") == "Deployment":
                used |= {c["image"] for c in doc["spec"]["template"]["spec"]["containers"]}
    assert used - {i for i in used if i.startswith("redis:")} == set(list_images(StandInCluster(tmp_path)))


def unique(ref: str) -> bool:
    """name:tag-<12 hex>: the build's own tag."""
    return re.fullmatch(r"[a-z0-9./:-]+:v[12]-[0-9a-f]{12}", ref) is not None


def stable(refs: list[str]) -> list[str]:
    return [r for r in refs if not unique(r)]


def test_build_builds_every_image_from_the_services_context_with_stand_in_docker(tmp_path):
    cluster = StandInCluster(tmp_path)
    result = cluster.run("build.sh")
    assert result.returncode == 0, result.stderr
    images = [i for i in cluster.state()["images"] if not unique(i["ref"])]
    assert [i["ref"] for i in images] == EXPECTED_IMAGES
    assert all(i["context"] == str(ROOT / "services") for i in images)
    by_ref = {i["ref"]: i for i in images}
    assert by_ref["payment-service:v1"]["dockerfile"] == by_ref["payment-service:v2"]["dockerfile"] == \
        str(ROOT / "services" / "payment" / "Dockerfile")
    assert by_ref["payment-service:v2"]["build_args"] == ["SERVICE_VERSION=v2"]
    assert by_ref["payment-service:v1"]["build_args"] == []
    assert by_ref["api-gateway:v1"]["dockerfile"] == str(ROOT / "services" / "api-gateway" / "Dockerfile")
    assert cluster.state()["pushed"] == []


def test_build_with_registry_tags_and_pushes_every_image_with_stand_in_docker(tmp_path):
    cluster = StandInCluster(tmp_path)
    result = cluster.run("build.sh", "--registry", "localhost:5001")
    assert result.returncode == 0, result.stderr
    assert stable(cluster.state()["pushed"]) == [f"localhost:5001/{i}" for i in EXPECTED_IMAGES]
    assert len(cluster.state()["pushed"]) == 2 * len(EXPECTED_IMAGES)  # and each build's unique tag
    assert "--registry localhost:5001" in result.stdout  # tells how to deploy the same images


def test_build_with_kind_loads_every_image_into_that_cluster_with_stand_in_docker(tmp_path):
    cluster = StandInCluster(tmp_path)
    result = cluster.run("build.sh", "--kind", "lab")
    assert result.returncode == 0, result.stderr
    loaded = cluster.state()["kind_loaded"]
    assert [e for e in loaded if not unique(e["ref"])] == [{"cluster": "lab", "ref": i} for i in EXPECTED_IMAGES]
    assert len([e for e in loaded if unique(e["ref"])]) == len(EXPECTED_IMAGES)

    missing = cluster.run("build.sh", "--kind", "nope")
    assert missing.returncode != 0
    assert error_lines(missing) == ["error: kind cluster 'nope' not found: create it with kind create cluster --name nope"]


def test_build_with_several_platforms_pushes_with_buildx_and_needs_a_registry_with_stand_in_docker(tmp_path):
    cluster = StandInCluster(tmp_path)
    refused = cluster.run("build.sh", "--platform", "linux/amd64,linux/arm64")
    assert refused.returncode != 0 and len(error_lines(refused)) == 1 and "--registry" in refused.stderr
    result = cluster.run("build.sh", "--platform", "linux/amd64,linux/arm64", "--registry", "localhost:5001")
    assert result.returncode == 0, result.stderr
    images = cluster.state()["images"]
    assert {i["platform"] for i in images} == {"linux/amd64,linux/arm64"}
    assert stable(cluster.state()["pushed"]) == [f"localhost:5001/{i}" for i in EXPECTED_IMAGES]


@pytest.mark.parametrize("driver, containerd_store, ok", [("docker", False, False), ("docker", True, True),
                                                          ("docker-container", False, True)])
def test_build_with_several_platforms_needs_a_multi_platform_builder_with_stand_in_docker(tmp_path, driver,
                                                                                        containerd_store, ok):
    cluster = StandInCluster(tmp_path)
    cluster.update(buildx_driver=driver, containerd_store=containerd_store)
    result = cluster.run("build.sh", "--platform", "linux/amd64,linux/arm64", "--registry", "localhost:5001")
    if ok:
        assert result.returncode == 0, result.stderr
        assert len(stable(cluster.state()["pushed"])) == len(EXPECTED_IMAGES)
        return
    assert result.returncode != 0
    assert error_lines(result) == [
        "error: --platform linux/amd64,linux/arm64 needs a multi-platform buildx builder (current driver: docker): "
        "docker buildx create --driver docker-container --driver-opt network=host --use"]
    assert cluster.mutating_calls() == [] and cluster.state()["images"] == []


def test_build_without_a_docker_engine_fails_with_one_line_before_building_with_stand_in_docker(tmp_path):
    cluster = StandInCluster(tmp_path)
    cluster.update(docker_engine=False)
    before = snapshot(cluster)
    result = cluster.run("build.sh")
    assert result.returncode != 0
    assert error_lines(result) == ["error: the Docker engine is not reachable (docker info failed): start Docker "
                                   "Desktop/OrbStack or the docker service"]
    assert cluster.mutating_calls() == [] and snapshot(cluster) == before


def test_build_without_docker_cli_says_how_to_get_it(tmp_path):
    cluster = StandInCluster(tmp_path, without=("docker",))
    result = cluster.run("build.sh")
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: docker not found on PATH: install") and "https://" in lines[0]


def test_build_dry_run_prints_every_build_and_builds_nothing_with_stand_in_docker(tmp_path):
    cluster = StandInCluster(tmp_path)
    result = cluster.run("build.sh", "--dry-run", "--registry", "localhost:5001")
    assert result.returncode == 0, result.stderr
    builds = [line for line in result.stdout.splitlines() if line.startswith("[dry-run] docker build")]
    pushes = [line for line in result.stdout.splitlines() if line.startswith("[dry-run] docker push")]
    assert len(builds) == len(EXPECTED_IMAGES) and len(pushes) == 2 * len(EXPECTED_IMAGES)
    assert "--build-arg SERVICE_VERSION=v2 -t localhost:5001/payment-service:v2 -t localhost:5001/payment-service:v2-" \
        in result.stdout
    assert not cluster.image_tags.exists()
    assert cluster.state()["images"] == [] and cluster.mutating_calls() == []


# ---------------------------------------------------------------------------------------------------------------
# A rebuilt image must reach the cluster: unique tags (k3d, kind's containerd-store fallback below)
# ---------------------------------------------------------------------------------------------------------------
def built_tags(cluster: StandInCluster) -> dict[str, str]:
    lines = [line.split() for line in cluster.image_tags.read_text().splitlines() if line and not line.startswith("#")]
    return {image: tag for image, tag in lines}


def test_every_build_tags_its_images_uniquely_by_content_and_records_the_tags_with_stand_in_docker(tmp_path):
    cluster = StandInCluster(tmp_path)
    assert cluster.run("build.sh").returncode == 0
    tags = built_tags(cluster)
    assert set(tags) == set(EXPECTED_IMAGES)
    assert tags["payment-service:v1"] != tags["payment-service:v2"]  # same sources, another build argument
    assert all(re.fullmatch(rf"{image.split(':')[1]}-[0-9a-f]{{12}}", tag) for image, tag in tags.items())
    refs = {i["ref"] for i in cluster.state()["images"]}
    assert {f"{image.split(':')[0]}:{tag}" for image, tag in tags.items()} <= refs
    assert cluster.run("build.sh").returncode == 0
    assert built_tags(cluster) == tags  # nothing changed: the same tags, so a deploy restarts nothing


def test_the_content_digest_changes_with_one_byte_of_one_file(tmp_path):
    tree = tmp_path / "tree"
    (tree / "app").mkdir(parents=True)
    (tree / "app" / "main.py").write_text("print('v1')\n")
    (tree / "app" / "__pycache__").mkdir()
    (tree / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"cache")
    digest = [f"source {ROOT}/scripts/lib/common.sh; tree_digest {tree}"]

    def run() -> str:
        import subprocess
        done = subprocess.run(["bash", "-c", digest[0]], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    first = run()
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    (tree / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"other cache")
    assert run() == first  # caches do not count
    (tree / "app" / "main.py").write_text("print('v2')\n")
    assert run() != first


def test_build_with_k3d_imports_every_image_into_that_cluster_with_stand_in_docker(tmp_path):
    cluster = StandInCluster(tmp_path)
    result = cluster.run("build.sh", "--k3d", "lab")
    assert result.returncode == 0, result.stderr
    imported = cluster.state()["k3d_imported"]
    assert [e["ref"] for e in imported if not unique(e["ref"])] == EXPECTED_IMAGES
    assert {e["cluster"] for e in imported} == {"lab"}
    missing = cluster.run("build.sh", "--k3d", "nope")
    assert error_lines(missing) == ["error: k3d cluster 'nope' not found: create it with k3d cluster create nope"]
    assert cluster.run("build.sh", "--k3d", "lab", "--kind", "lab").returncode != 0


def test_build_with_kind_falls_back_to_an_image_archive_under_the_containerd_store_with_stand_in_docker(tmp_path):
    """kubernetes-sigs/kind#3795: `kind load docker-image` fails with Docker's containerd image store."""
    cluster = StandInCluster(tmp_path)
    cluster.update(containerd_store=True, docker_platform="linux/arm64")
    assert cluster.tool("kind", "load", "docker-image", "x").returncode != 0  # (no such image either way)
    result = cluster.run("build.sh", "--kind", "lab")
    assert result.returncode == 0, result.stdout + result.stderr
    loaded = cluster.state()["kind_loaded"]
    assert [e["ref"] for e in loaded if not unique(e["ref"])] == EXPECTED_IMAGES
    assert all(e.get("archive") and e["platform"] == "linux/arm64" for e in loaded)
    assert "loading a linux/arm64 archive instead" in result.stderr


@needs_real_kubectl()
def test_the_next_deploy_rolls_out_a_rebuilt_image_and_only_that_one_with_stand_in_cluster(tmp_path):
    cluster = StandInCluster(tmp_path)
    assert cluster.run("build.sh").returncode == 0
    tags = built_tags(cluster)
    assert cluster.run("deploy-istio.sh", "--yes", "--skip-quick-test").returncode == 0
    images = {c["image"] for d in cluster.objects("Deployment", "e-commerce")
              for c in d["spec"]["template"]["spec"]["containers"]}
    assert f"payment-service:{tags['payment-service:v2']}" in images
    assert f"catalog-service:{tags['catalog-service:v1']}" in images and "catalog-service:v1" not in images
    pods_before = cluster.pods_containers("e-commerce")

    # catalog is rebuilt from changed sources: only its tag moves.
    cluster.image_tags.write_text(cluster.image_tags.read_text().replace(tags["catalog-service:v1"], "v1-0123456789ab"))
    assert cluster.run("deploy-istio.sh", "--yes", "--skip-quick-test").returncode == 0
    pods_after = cluster.pods_containers("e-commerce")
    replaced = {p.rsplit("-", 2)[0] for p in set(pods_before) - set(pods_after)}
    assert replaced == {"catalog-service"}, replaced
