"""The pinned CRDs: found by --crds, $CRDS_DIR or the cache; verified byte for byte; fetched from a loopback server
that plays raw.githubusercontent.com; and, when none can be had, a check that says how to get them and exits 2."""
from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.manifests.manifest_copy import REPO_ROOT, crds_folder, matching
from tools.manifestcheck import crd_pins

PINS = crd_pins.load_pins()


def env_without_crds(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != crd_pins.CRDS_ENV}, **extra}


def copy_of_pinned_files(source: Path, dest: Path) -> Path:
    for pin in PINS.files:
        (dest / pin.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / pin.path, dest / pin.path)
    return dest


def tree_state(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_pins_name_every_bundle_the_manifests_use():
    bundles = {pin.bundle for pin in PINS.files}
    assert bundles == {"Istio", "Linkerd", "Gateway API", "Flagger"}
    assert len(PINS.files) == 8 and all(len(pin.sha256) == 64 for pin in PINS.files)
    assert all(pin.url.startswith("https://raw.githubusercontent.com/") for pin in PINS.files)
    assert {"networking.istio.io", "policy.linkerd.io", "gateway.networking.k8s.io", "flagger.app"} <= PINS.groups


# -- no CRDs to be had --------------------------------------------------------------------------------------------
def test_without_crds_the_check_exits_2_says_how_to_get_them_and_still_runs_the_others(tree_copy):
    rel, _ = tree_copy.edit("Service", lambda d: d["spec"]["selector"].update(app="nobody"),
                            where=lambda d: bool(d.get("spec", {}).get("selector")), folder="kubernetes/")
    result = tree_copy.cli("--skip", "hardening", env=env_without_crds())
    # A manifest error found by another check wins: exit 1, and the CRD line is still there.
    assert result.returncode == 1, result.stderr
    assert any(line.startswith(f"{rel}:") and "selector" in line for line in result.stdout.splitlines()), result.stdout
    assert "the crd check did not run: no pinned CRDs in" in result.stderr
    assert "fetch-crds" in result.stderr and "CRDS_DIR=" in result.stderr
    # ... and with nothing else wrong: exit 2, neither 0 nor a manifest error's 1, with the same one line.
    tree_copy.edit("Service", lambda d: d["spec"]["selector"].update(app=d["metadata"]["name"]),
                   where=lambda d: d.get("spec", {}).get("selector", {}).get("app") == "nobody", folder="kubernetes/")
    clean = tree_copy.cli("--only", "crd,refs", env=env_without_crds())
    assert clean.returncode == 2, clean.stdout + clean.stderr
    assert clean.stdout == ""
    lines = [line for line in clean.stderr.splitlines() if "did not run" in line]
    assert len(lines) == 1 and "fetch-crds" in lines[0] and str(tree_copy.root / ".cache/crds") in lines[0], clean.stderr


def test_core_kinds_are_still_checked_strictly_without_crds(tree_copy):
    """The pins name the custom API groups, so an unknown core kind is an error even with no CRD at hand."""
    tree_copy.edit("ConfigMap", lambda d: d.update(kind="ConfigMapp"), folder="kubernetes/")
    result = tree_copy.cli("--only", "core", env=env_without_crds())
    assert result.returncode == 1 and "unknown kind 'ConfigMapp'" in result.stdout, result.stdout + result.stderr
    assert "VirtualService" not in result.stdout  # Istio kinds are left to the CRD check


def test_crds_dir_pointing_nowhere_is_an_error_naming_it(tree_copy, tmp_path):
    nowhere = tmp_path / "no-crds-here"
    result = tree_copy.cli("--only", "crd", env=env_without_crds(CRDS_DIR=str(nowhere)))
    assert result.returncode == 2
    assert f"CRD folder {nowhere} (from $CRDS_DIR) does not exist" in result.stderr, result.stderr


# -- verification --------------------------------------------------------------------------------------------------
@pytest.mark.crds
def test_the_pinned_folder_passes_through_crds_dir_and_through_the_option(tree_copy, tmp_path):
    folder = copy_of_pinned_files(crds_folder(), tmp_path / "crds")
    (folder / "README.md").write_text("not a CRD, never read")
    assert tree_copy.cli("--only", "crd", env=env_without_crds(CRDS_DIR=str(folder))).returncode == 0
    assert tree_copy.cli("--only", "crd", "--crds", str(folder), env=env_without_crds()).returncode == 0


@pytest.mark.crds
def test_one_byte_changed_in_one_crd_file_fails_with_the_checksum_line_naming_it(tree_copy, tmp_path):
    folder = copy_of_pinned_files(crds_folder(), tmp_path / "crds")
    pin = next(p for p in PINS.files if p.bundle == "Linkerd")
    edited = folder / pin.path
    data = bytearray(edited.read_bytes())
    data[len(data) // 2] ^= 0x01
    edited.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    result = tree_copy.cli("--only", "crd", "--crds", str(folder), env=env_without_crds())
    assert result.returncode == 2, result.stdout + result.stderr
    line = next(line for line in result.stderr.splitlines() if "did not run" in line)
    assert str(edited) in line and f"sha256 {actual}, expected {pin.sha256}" in line, line
    # The tests' own lookup fails (not skips) on such a folder.
    with pytest.raises(crd_pins.CrdsInvalid, match="expected " + pin.sha256):
        crd_pins.verified_folder(REPO_ROOT, str(folder))


@pytest.mark.crds
def test_a_folder_missing_a_pinned_file_is_an_error_naming_it(tmp_path):
    folder = copy_of_pinned_files(crds_folder(), tmp_path / "crds")
    gone = next(p for p in PINS.files if p.path.endswith("httproutes.yaml"))
    (folder / gone.path).unlink()
    with pytest.raises(crd_pins.CrdsInvalid, match=f"lacks {gone.path}"):
        crd_pins.verified_folder(REPO_ROOT, str(folder))


# -- fetch-crds against a loopback stand-in for raw.githubusercontent.com ------------------------------------------
class RawFiles:
    """Serves each pinned file at its URL's path (HTTP/1.1 keep-alive), counting requests and connections."""

    def __init__(self, source: Path, replace: dict[str, bytes] | None = None):
        files = {urlsplit(pin.url).path: (source / pin.path).read_bytes() for pin in PINS.files}
        files.update(replace or {})
        self.requests: list[str] = []
        self.connections = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                outer.connections += 1

            def do_GET(self):
                outer.requests.append(self.path)
                body = files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def fetch_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.manifestcheck", "fetch-crds", "--root", str(root), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, env=env_without_crds())


@pytest.mark.crds
def test_fetch_crds_fills_the_cache_over_one_connection_and_then_has_nothing_to_do(tree_copy, monkeypatch):
    server = RawFiles(crds_folder())
    monkeypatch.delenv(crd_pins.CRDS_ENV, raising=False)
    try:
        first = fetch_cli(tree_copy.root, "--mirror", server.url)
        assert first.returncode == 0, first.stderr
        assert f"{len(PINS.files)} file(s) downloaded and verified" in first.stderr
        assert server.connections == 1 and len(server.requests) == len(PINS.files)  # one kept-alive connection
        cache = tree_copy.root / crd_pins.CACHE_DIR
        assert crd_pins.verified_folder(tree_copy.root, None) == cache.resolve()
        again = fetch_cli(tree_copy.root, "--mirror", server.url)
        assert again.returncode == 0 and "verified" in again.stderr
        assert len(server.requests) == len(PINS.files)  # nothing downloaded the second time
    finally:
        server.close()
    # The cache is what the check uses when neither --crds nor $CRDS_DIR is given.
    assert tree_copy.cli("--only", "crd", env=env_without_crds()).returncode == 0


@pytest.mark.crds
def test_fetch_crds_refuses_a_wrong_file_and_leaves_the_cache_as_it_was(tree_copy):
    source = crds_folder()
    cache = tree_copy.root / crd_pins.CACHE_DIR
    kept = next(p for p in PINS.files if p.bundle == "Flagger")
    copy_target = cache / kept.path
    copy_target.parent.mkdir(parents=True)
    shutil.copy2(source / kept.path, copy_target)  # one file already there, verified
    wrong = next(p for p in PINS.files if p.bundle == "Istio")
    tampered = (source / wrong.path).read_bytes() + b"\n# tampered\n"
    before = tree_state(cache)
    server = RawFiles(source, {urlsplit(wrong.url).path: tampered})
    try:
        result = fetch_cli(tree_copy.root, "--mirror", server.url)
    finally:
        server.close()
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("fetch-crds: refused ") and wrong.path in line, line
    assert f"sha256 {hashlib.sha256(tampered).hexdigest()}, expected {wrong.sha256}" in line, line
    assert tree_state(cache) == before  # nothing moved in, nothing removed
    assert not [p for p in cache.parent.iterdir() if p.name.startswith(".crds-")]  # no staging left behind


def test_fetch_crds_offline_says_so_in_one_line(tree_copy):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    result = fetch_cli(tree_copy.root, "--mirror", url)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot reach 127.0.0.1" in result.stderr, result.stderr
    assert not (tree_copy.root / crd_pins.CACHE_DIR).exists()


@pytest.mark.parametrize("mirror", ["/nonexistent", "127.0.0.1:8000"])
def test_a_mirror_that_is_not_a_url_is_refused_before_any_download(tree_copy, mirror):
    result = fetch_cli(tree_copy.root, "--mirror", mirror)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"--mirror (or $CRDS_MIRROR) needs an http:// or https:// URL, got {mirror!r}" in result.stderr
    assert not (tree_copy.root / crd_pins.CACHE_DIR).exists()


def ensure_crds(root: Path, **env: str) -> subprocess.CompletedProcess:
    """test.sh's first-run step (scripts/lib/venv.sh ensure_crds) in a tree of its own."""
    return subprocess.run(["bash", "-c", 'source "$REPO_ROOT/scripts/lib/venv.sh"; ensure_crds'], capture_output=True,
                          text=True, timeout=60, env=env_without_crds(REPO_ROOT=str(root), **env))


@pytest.mark.crds
def test_test_sh_fetches_the_crds_on_its_first_run_and_goes_on_offline(tree_copy):
    root = tree_copy.root
    shutil.copytree(REPO_ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".venv").symlink_to(REPO_ROOT / ".venv")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    offline = ensure_crds(root, CRDS_MIRROR=closed)
    assert offline.returncode == 0
    lines = offline.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Note: the pinned CRDs could not be downloaded (fetch-crds: cannot "
                                                   "reach 127.0.0.1"), lines
    assert "tests will be skipped" in lines[0] and not (root / crd_pins.CACHE_DIR).exists()
    server = RawFiles(crds_folder())
    try:
        online = ensure_crds(root, CRDS_MIRROR=server.url)
        assert online.returncode == 0 and "downloaded and verified" in online.stderr, online.stderr
        assert len(server.requests) == len(PINS.files)
        assert ensure_crds(root, CRDS_MIRROR=server.url).stderr == ""  # the cache is there: nothing to do
        assert len(server.requests) == len(PINS.files)
    finally:
        server.close()
    assert crd_pins.verified_folder(root, str(root / crd_pins.CACHE_DIR))


# -- a fresh clone with no CRDs anywhere ---------------------------------------------------------------------------
@pytest.mark.slow
def test_a_fresh_clone_without_crds_passes_and_names_each_skipped_test(tmp_path):
    """What a user who clones the repository offline gets: the CRD tests skip with the fetch-crds line, every other
    manifest test runs and passes (a subset here: the suites that touch the CRDs; ./test.sh runs them all)."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True, timeout=60)
    # The working tree as it is now, not only what is committed.
    for rel in ("tools/manifestcheck", "tests/manifests"):
        shutil.rmtree(clone / rel)
        shutil.copytree(REPO_ROOT / rel, clone / rel, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-o", "addopts=",
         "tests/manifests/test_schemas.py", "tests/manifests/test_real_tree.py", "tests/manifests/test_routes.py"],
        cwd=clone, capture_output=True, text=True, timeout=300, env=env_without_crds())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped, result.stdout[-2000:]
    assert all("needs the pinned CRDs" in line and "fetch-crds" in line for line in skipped), skipped
    assert matching(skipped, "test_real_tree.py")
