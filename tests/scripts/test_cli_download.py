"""The pinned istioctl / linkerd download of scripts/lib/common.sh, verified against a sha256 published apart from it.

A real HTTP server on a free loopback port (python's http.server) plays the release site and GitHub's release API,
serving small archives built here; the *_RELEASE_BASE_URL / LINKERD_RELEASE_API_URL variables point the library at
it. It publishes what the real releases publish: Istio's `<asset>.sha256` next to each asset (istio/release-builder
pkg/util/files.go CreateSha, "<hex> <name>"), and for Linkerd no .sha256 at all (gone since edge-25.9.4,
linkerd/linkerd2#14511) but the release API's `assets[].digest` ("sha256:<hex>", GitHub's release asset digests).
The CLIs inside the archives forward to the stand-ins, so a deploy can go on with what it downloaded.
"""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stand_in_cluster import FAKES, StandInCluster, error_lines, needs_real_kubectl, run_bash, snapshot  # noqa: E402

sys.path.insert(0, str(FAKES))
from fakecluster import ISTIO_VERSION as ISTIO, LINKERD_VERSION as LINKERD  # noqa: E402  (the pins of common.sh)

ISTIO_ASSETS = [f"istioctl-{ISTIO}-linux-amd64.tar.gz", f"istioctl-{ISTIO}-linux-arm64.tar.gz",
                f"istioctl-{ISTIO}-osx-amd64.tar.gz", f"istioctl-{ISTIO}-osx-arm64.tar.gz"]
RELEASE_API = "repos/linkerd/linkerd2/releases/tags"
LINKERD_ASSETS = [f"linkerd2-cli-{LINKERD}-linux-amd64", f"linkerd2-cli-{LINKERD}-linux-arm64",
                  f"linkerd2-cli-{LINKERD}-darwin", f"linkerd2-cli-{LINKERD}-darwin-arm64"]


def forwarding_cli(tool: str) -> bytes:
    """A CLI that behaves like the stand-in `tool` (what the release would contain, for the purpose of the test)."""
    return (f'#!/usr/bin/env bash\nexec "$FAKE_PYTHON" "{FAKES / "fakecluster.py"}" {tool} "$@"\n').encode()


class ReleaseSite:
    """Serves a folder over HTTP on a free port and remembers the paths asked for."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.requests: list[str] = []
        site = self

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest's output clean
                pass

            def do_GET(self):
                site.requests.append(self.path)
                super().do_GET()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(folder)))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/{RELEASE_API}"

    def publish(self, path: str, content: bytes, checksum: str | None = None, sha256_file: bool = True) -> None:
        target = self.folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if sha256_file:
            digest = checksum or hashlib.sha256(content).hexdigest()
            (self.folder / f"{path}.sha256").write_text(f"{digest} {target.name}\n")

    def publish_release_api(self, tag: str, assets: list[dict]) -> None:
        """GET /repos/linkerd/linkerd2/releases/tags/<tag>, shaped like GitHub's answer (the fields read here)."""
        target = self.folder / RELEASE_API / tag
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"tag_name": tag, "name": tag, "assets": assets}))


@pytest.fixture
def site(tmp_path):
    release_site = ReleaseSite(tmp_path / "site")
    release_site.folder.mkdir()
    release_site.thread.start()
    yield release_site
    release_site.server.shutdown()
    release_site.server.server_close()


def istio_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        content = forwarding_cli("istioctl")
        info = tarfile.TarInfo("istioctl")
        info.size, info.mode = len(content), 0o755
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def publish_istio(site: ReleaseSite, checksum: str | None = None) -> None:
    archive = istio_archive()
    for asset in ISTIO_ASSETS:
        site.publish(f"{ISTIO}/{asset}", archive, checksum)


def publish_linkerd(site: ReleaseSite, digest: str | None = None, assets: list[str] = LINKERD_ASSETS) -> None:
    """The binaries (no .sha256 files, as Linkerd's releases since edge-25.9.4) and the release API listing them."""
    content = forwarding_cli("linkerd")
    listed = []
    for asset in LINKERD_ASSETS:
        site.publish(f"{LINKERD}/{asset}", content, sha256_file=False)
        if asset in assets:
            listed.append({"name": asset, "size": len(content), "content_type": "application/octet-stream",
                           "digest": digest if digest is not None else "sha256:" + hashlib.sha256(content).hexdigest(),
                           "browser_download_url": f"{site.url}/{LINKERD}/{asset}"})
    site.publish_release_api(LINKERD, listed)


def test_istioctl_with_the_published_checksum_is_installed_and_used(tmp_path, site):
    cluster = StandInCluster(tmp_path / "cluster", without=("istioctl",))
    publish_istio(site)
    result = run_bash(cluster, "ensure_istioctl; command -v istioctl; istioctl version --remote=false",
                      ISTIO_RELEASE_BASE_URL=site.url)
    assert result.returncode == 0, result.stderr
    installed = cluster.tools_bin / "istioctl"
    assert installed.is_file() and installed.stat().st_mode & 0o111
    assert f"{installed}\nclient version: {ISTIO}" in result.stdout
    assert any(r.endswith(".tar.gz.sha256") for r in site.requests)

    # Already there in the pinned version: nothing is downloaded again.
    site.requests.clear()
    again = run_bash(cluster, "ensure_istioctl", ISTIO_RELEASE_BASE_URL=site.url)
    assert again.returncode == 0, again.stderr
    assert site.requests == []


def test_istioctl_with_a_wrong_checksum_fails_with_one_line_and_installs_nothing(tmp_path, site):
    cluster = StandInCluster(tmp_path / "cluster", without=("istioctl",))
    publish_istio(site, checksum="0" * 64)
    result = run_bash(cluster, "ensure_istioctl", ISTIO_RELEASE_BASE_URL=site.url)
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: checksum mismatch for ") and "not installed" in lines[0]
    assert not (cluster.tools_bin / "istioctl").exists()


def test_linkerd_binary_is_verified_against_the_release_api_digest_before_it_is_installed(tmp_path, site):
    cluster = StandInCluster(tmp_path / "cluster", without=("linkerd",))
    env = {"LINKERD_RELEASE_BASE_URL": site.url, "LINKERD_RELEASE_API_URL": site.api_url}
    publish_linkerd(site, digest="sha256:" + "f" * 64)
    bad = run_bash(cluster, "ensure_linkerd", **env)
    assert bad.returncode != 0 and len(error_lines(bad)) == 1 and "checksum mismatch" in bad.stderr, bad.stderr
    assert not (cluster.tools_bin / "linkerd").exists()

    site.requests.clear()
    publish_linkerd(site)
    good = run_bash(cluster, "ensure_linkerd; linkerd version --client --short", **env)
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip().endswith(LINKERD)
    assert (cluster.tools_bin / "linkerd").stat().st_mode & 0o111
    assert f"/{RELEASE_API}/{LINKERD}" in site.requests
    assert not [r for r in site.requests if r.endswith(".sha256")]  # Linkerd publishes none


@pytest.mark.parametrize("case", ["asset not listed", "digest null", "digest not sha256", "no release"])
def test_a_linkerd_release_without_a_usable_digest_is_refused(tmp_path, site, case):
    cluster = StandInCluster(tmp_path / "cluster", without=("linkerd",))
    if case == "asset not listed":
        publish_linkerd(site, assets=[])
    elif case == "digest null":
        publish_linkerd(site, digest="")
    elif case == "digest not sha256":
        publish_linkerd(site, digest="sha512:" + "a" * 128)
    result = run_bash(cluster, "ensure_linkerd", LINKERD_RELEASE_BASE_URL=site.url, LINKERD_RELEASE_API_URL=site.api_url)
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    if case == "no release":
        assert "returned error: 404" in lines[0] and RELEASE_API in lines[0]
    else:
        assert "lists no sha256 digest for linkerd2-cli-" in lines[0] and "refusing to install" in lines[0]
    assert not (cluster.tools_bin / "linkerd").exists()
    assert not [r for r in site.requests if r.startswith(f"/{LINKERD}/")]  # the binary is never even fetched


def test_a_pinned_linkerd_checksum_replaces_the_release_api(tmp_path, site):
    cluster = StandInCluster(tmp_path / "cluster", without=("linkerd",))
    publish_linkerd(site, assets=[])  # a mirror without the API's digests
    content = forwarding_cli("linkerd")
    result = run_bash(cluster, "ensure_linkerd", LINKERD_RELEASE_BASE_URL=site.url,
                      LINKERD_RELEASE_API_URL=site.api_url, LINKERD_CLI_SHA256=hashlib.sha256(content).hexdigest())
    assert result.returncode == 0, result.stderr
    assert not [r for r in site.requests if RELEASE_API in r]
    wrong = run_bash(StandInCluster(tmp_path / "other", without=("linkerd",)), "ensure_linkerd",
                     LINKERD_RELEASE_BASE_URL=site.url, LINKERD_CLI_SHA256="0" * 64)
    assert wrong.returncode != 0 and "checksum mismatch" in wrong.stderr


def test_a_missing_checksum_file_is_refused(tmp_path, site):
    cluster = StandInCluster(tmp_path / "cluster", without=("istioctl",))
    publish_istio(site)
    for checksum_file in site.folder.rglob("*.sha256"):
        checksum_file.unlink()
    result = run_bash(cluster, "ensure_istioctl", ISTIO_RELEASE_BASE_URL=site.url)
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and ".sha256 failed" in lines[0] and "404" in lines[0], result.stderr
    assert not (cluster.tools_bin / "istioctl").exists()


@needs_real_kubectl()
def test_deploy_with_a_wrong_istioctl_checksum_stops_before_any_change_with_stand_in_cluster(tmp_path, site):
    cluster = StandInCluster(tmp_path / "cluster", without=("istioctl",))
    publish_istio(site, checksum="1" * 64)
    cluster.save(cluster.state())
    before = snapshot(cluster)
    result = cluster.run("deploy-istio.sh", "--yes", "--skip-quick-test", ISTIO_RELEASE_BASE_URL=site.url)
    assert result.returncode != 0
    assert len(error_lines(result)) == 1 and "checksum mismatch" in result.stderr
    assert snapshot(cluster) == before and cluster.mutating_calls() == []


@needs_real_kubectl()
def test_deploy_installs_the_missing_istioctl_and_goes_on_with_it_with_stand_in_cluster(tmp_path, site):
    cluster = StandInCluster(tmp_path / "cluster", without=("istioctl",))
    publish_istio(site)
    result = cluster.run("deploy-istio.sh", "--yes", "--skip-quick-test", ISTIO_RELEASE_BASE_URL=site.url)
    assert result.returncode == 0, result.stderr
    assert f"istioctl {ISTIO} installed: {cluster.tools_bin}/istioctl" in result.stdout
    assert "istiod" in cluster.names("Deployment", "istio-system")


def test_a_download_from_a_server_that_never_answers_stops_within_the_time_limit(tmp_path):
    import socket
    import time
    cluster = StandInCluster(tmp_path / "cluster", without=("istioctl",))
    silent = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        started = time.monotonic()
        result = run_bash(cluster, "ensure_istioctl", ISTIO_RELEASE_BASE_URL=f"http://127.0.0.1:{silent.getsockname()[1]}",
                          CURL_MAX_TIME="1")
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert result.returncode != 0
    lines = error_lines(result)
    assert len(lines) == 1 and "download of http://127.0.0.1:" in lines[0] and "timed out" in lines[0], result.stderr
    assert elapsed < 20  # 1 s per attempt, 3 attempts (--retry 2), plus curl's retry pauses
    assert not (cluster.tools_bin / "istioctl").exists()


@needs_real_kubectl()
def test_kubectl_apply_of_a_url_downloads_it_with_curl_first_with_stand_in_cluster(tmp_path, site):
    cluster = StandInCluster(tmp_path / "cluster")
    site.publish("gateway-api/v1.2.1/standard-install.yaml", cluster.write_gateway_api("v1.2.1").read_bytes())
    url = f"{site.url}/gateway-api/v1.2.1/standard-install.yaml"
    result = run_bash(cluster, f'run_kubectl_url apply "{url}"')
    assert result.returncode == 0, result.stderr
    assert f"+ kubectl apply -f {url}" in result.stdout
    assert "httproutes.gateway.networking.k8s.io" in cluster.names("CustomResourceDefinition")
    applies = [c for c in cluster.calls() if c["tool"] == "kubectl" and "apply" in c["args"]]
    # kubectl got a local file (curl's bounded download) and its request timeout, not the URL.
    assert applies and applies[0]["args"][0].startswith("--request-timeout=") and url not in applies[0]["args"]
    site.requests.clear()
    missing = run_bash(cluster, f'run_kubectl_url apply "{site.url}/nope.yaml" || echo "status $?"')
    assert "status 1" in missing.stdout and "returned error: 404" in missing.stderr


def test_istio_add_ons_come_from_the_pinned_release_tag_not_a_moving_branch(tmp_path):
    cluster = StandInCluster(tmp_path / "cluster")
    env = cluster.env()
    del env["ISTIO_ADDONS_BASE_URL"]  # the default, as a user gets it
    result = subprocess.run(["bash", "-c", f'source "{FAKES.parents[2]}/scripts/lib/common.sh"; '
                                           'printf "%s\\n" "$ISTIO_ADDONS_BASE_URL"'],
                            env=env, capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == f"https://raw.githubusercontent.com/istio/istio/{ISTIO}/samples/addons"
