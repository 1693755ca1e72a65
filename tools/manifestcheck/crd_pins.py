"""The pinned CRDs (crds.toml): where the check finds them, how each file is verified, and how they are fetched.

Lookup order: `--crds DIR`, then $CRDS_DIR, then the cache `.cache/crds/` inside the clone (filled by
`python -m tools.manifestcheck fetch-crds`). Whatever folder is used, every pinned file is verified against its
sha256 before it is read, and only the pinned files are read: an edited, stale or partial copy is an error.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import tomllib
import urllib.parse
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

PINS_FILE = Path(__file__).with_name("crds.toml")
CACHE_DIR = ".cache/crds"  # relative to the repository root; git-ignored
CRDS_ENV = "CRDS_DIR"
HOW_TO_GET = (f"run `.venv/bin/python -m tools.manifestcheck fetch-crds` (downloads the pinned CRDs into {CACHE_DIR}) "
              f"or set {CRDS_ENV}=/path/to/a/folder/of/them")
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
MAX_FILE_BYTES = 32 * 1024 * 1024  # the largest pinned file (Istio's) is a few MB


@dataclass(frozen=True)
class PinnedFile:
    bundle: str
    release: str
    path: str    # inside the CRD folder
    url: str
    sha256: str


@dataclass(frozen=True)
class Pins:
    files: tuple[PinnedFile, ...]
    groups: frozenset[str]  # API groups the pinned CRDs define: their kinds are never core kinds


class CrdsUnavailable(Exception):
    """Nothing configured and the cache is empty: the CRD schema checks cannot run (tests skip)."""


class CrdsInvalid(Exception):
    """A folder was found or given, but it does not hold exactly the pinned files (tests fail)."""


@lru_cache(maxsize=None)
def load_pins(path: Path = PINS_FILE) -> Pins:
    with open(path, "rb") as f:
        data = tomllib.load(f)
    files, groups = [], set()
    for bundle in data["bundle"]:
        groups.update(bundle["groups"])
        for entry in bundle["files"]:
            files.append(PinnedFile(bundle["name"], bundle["release"], entry["path"], entry["url"], entry["sha256"]))
    return Pins(tuple(files), frozenset(groups))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def mismatch_line(what: str, pin: PinnedFile, actual: str) -> str:
    return (f"{what}: sha256 {actual}, expected {pin.sha256} (pinned in tools/manifestcheck/crds.toml for "
            f"{pin.bundle} {pin.release}; upstream {pin.url})")


def locate(root: Path, option: str | None) -> tuple[Path, str]:
    """(folder, what chose it): --crds wins over $CRDS_DIR, which wins over the cache in the clone."""
    if option:
        return Path(option).expanduser().resolve(), "--crds"
    if os.environ.get(CRDS_ENV):
        return Path(os.environ[CRDS_ENV]).expanduser().resolve(), f"${CRDS_ENV}"
    return (root / CACHE_DIR).resolve(), f"the cache {CACHE_DIR}"


def verified_folder(root: Path, option: str | None, pins: Pins | None = None) -> Path:
    """The CRD folder, every pinned file in it checked; CrdsUnavailable or CrdsInvalid (one line) otherwise."""
    pins = pins or load_pins()
    folder, how = locate(root, option)
    present = [pin for pin in pins.files if (folder / pin.path).is_file()]
    if not present and how.startswith("the cache"):
        raise CrdsUnavailable(f"no pinned CRDs in {folder}: the Istio, Linkerd, Gateway API and Flagger kinds "
                              f"cannot be checked against their schemas; {HOW_TO_GET}")
    if not folder.is_dir():
        raise CrdsInvalid(f"CRD folder {folder} (from {how}) does not exist; {HOW_TO_GET}")
    missing = [pin.path for pin in pins.files if pin not in present]
    if missing:
        raise CrdsInvalid(f"CRD folder {folder} (from {how}) lacks {', '.join(missing)}; {HOW_TO_GET}")
    for pin in pins.files:
        actual = _cached_sha256(str(folder / pin.path), *_stamp(folder / pin.path))
        if actual != pin.sha256:
            raise CrdsInvalid(mismatch_line(str(folder / pin.path), pin, actual))
    return folder


def _stamp(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


@lru_cache(maxsize=64)
def _cached_sha256(path: str, _ino: int, _size: int, _mtime_ns: int) -> str:
    """Hashing once per file version: the tests run the check hundreds of times."""
    return sha256_of(Path(path))


# -- fetch-crds -----------------------------------------------------------------------------------------------------
class FetchError(Exception):
    """One line: what could not be downloaded or did not match its pin."""


class _Connections:
    """One HTTP(S) connection per host, reused for every file from it; honours HTTPS_PROXY/HTTP_PROXY."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def get(self, url: str) -> bytes:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, parts.hostname or "", port)
        conn = self._open.get(key) or self._connect(*key)
        self._open[key] = conn
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            conn.request("GET", path, headers={"User-Agent": "mesh-lab-fetch-crds"})
            response = conn.getresponse()
            body = response.read(MAX_FILE_BYTES + 1)
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise FetchError(f"cannot download {url}: {type(exc).__name__}: {exc} (offline?)") from None
        if response.status != 200:
            raise FetchError(f"cannot download {url}: HTTP {response.status} {response.reason}")
        if len(body) > MAX_FILE_BYTES:
            raise FetchError(f"cannot download {url}: larger than {MAX_FILE_BYTES} bytes")
        return body

    def _connect(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        proxy = urllib.request.getproxies().get(scheme)
        if proxy and urllib.request.proxy_bypass(host):
            proxy = None
        target_cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        try:
            if proxy:
                p = urllib.parse.urlsplit(proxy)
                conn = target_cls(p.hostname, p.port or 8080, timeout=CONNECT_TIMEOUT_S)
                conn.set_tunnel(host, port)
            else:
                conn = target_cls(host, port, timeout=CONNECT_TIMEOUT_S)
            conn.connect()
        except OSError as exc:
            raise FetchError(f"cannot reach {host}:{port}{' through ' + proxy if proxy else ''}: {exc} (offline?)") from None
        conn.sock.settimeout(READ_TIMEOUT_S)  # connected: from now on the read timeout applies
        return conn

    def close(self) -> None:
        for conn in self._open.values():
            conn.close()
        self._open.clear()


def mirrored(url: str, mirror: str | None) -> str:
    """The same path on another host (a local mirror, or the tests' loopback server)."""
    if not mirror:
        return url
    base = urllib.parse.urlsplit(mirror)
    return urllib.parse.urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + urllib.parse.urlsplit(url).path,
                                    "", ""))


def fetch(root: Path, dest: Path | None = None, mirror: str | None = None, pins: Pins | None = None,
          say=print) -> Path:
    """Downloads every pinned file that the folder lacks or holds in another version, verifies it, and only when
    all are right moves them in: a refused download leaves the folder as it was."""
    pins = pins or load_pins()
    dest = (dest or root / CACHE_DIR).resolve()
    todo = [pin for pin in pins.files
            if not (dest / pin.path).is_file() or sha256_of(dest / pin.path) != pin.sha256]
    if not todo:
        say(f"fetch-crds: all {len(pins.files)} pinned CRD files are in {dest} and verified")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".crds-", dir=dest.parent))
    connections = _Connections()
    try:
        for pin in todo:
            url = mirrored(pin.url, mirror)
            body = connections.get(url)
            actual = hashlib.sha256(body).hexdigest()
            if actual != pin.sha256:
                raise FetchError("refused " + mismatch_line(f"{url} (for {pin.path})", pin, actual))
            staged = staging / pin.path
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_bytes(body)
        for pin in todo:  # every file verified: now move them in
            target = dest / pin.path
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / pin.path, target)
    finally:
        connections.close()
        shutil.rmtree(staging, ignore_errors=True)
    say(f"fetch-crds: {len(todo)} file(s) downloaded and verified into {dest}")
    return dest
