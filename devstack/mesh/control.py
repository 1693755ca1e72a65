"""The local control plane: manifests -> intent -> Envoy files, written so that running proxies take them.

There is no xDS server: each proxy watches its own LDS/CDS/RDS files, and a change is delivered by writing a new
file and renaming it over the old one. An update goes in the order istiod sends one, so no request meets a route
to a cluster its proxy does not know yet: clusters first (old and new together), then route tables, then
listeners, then the clusters no route uses any more are dropped. Each step waits until every proxy reports the new
version on its admin port.
"""
from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tools.manifestcheck.model import Tree

from . import istio, linkerd
from . import topology as topology_
from .ca import EXTRA_IDENTITIES, LocalCA
from .envoy import CDS, LDS, RDS, Builder, ProxyFiles, discovery_response, write_atomic
from .intent import MeshIntent
from .manifests import apply_operations, file_documents
from .topology import Topology

# Each mesh's front end: the overlay it reads, what stands at the edge, where its scenarios may create workloads.
FRONT_ENDS = {"istio": istio, "linkerd": linkerd}

UPDATE_TIMEOUT_S = 10.0


class ApplyError(RuntimeError):
    """A running proxy did not take a configuration; the message names it."""


@dataclass
class Layout:
    """Where one stack keeps its mesh files (under the data folder)."""

    mesh_dir: Path
    logs_dir: Path
    mesh: str = "istio"

    @property
    def ca(self) -> LocalCA:
        """One CA per mesh: Istio's folder keeps its name, Linkerd's trust anchor and issuer live beside it."""
        return LocalCA(self.mesh_dir / ("ca" if self.mesh == "istio" else f"ca-{self.mesh}"), self.mesh)

    @property
    def proxies_dir(self) -> Path:
        return self.mesh_dir / "proxies"

    @property
    def state_path(self) -> Path:
        return self.mesh_dir / "state.json"

    @property
    def inventory_path(self) -> Path:
        return self.mesh_dir / "inventory.json"

    @property
    def spawned_path(self) -> Path:
        """The processes of workloads a scenario created, by instance (they may outlive the command that
        started them)."""
        return self.mesh_dir / "spawned.json"


@dataclass
class Generated:
    intent: MeshIntent
    proxies: dict[str, ProxyFiles]


def load_topology(root: Path, mesh: str, port_offset: int = 0) -> tuple[Tree, Topology]:
    """The workloads laid out for one mesh: its edge proxy, and the Deployments its scenario files may create."""
    return topology_.load(root, port_offset, FRONT_ENDS[mesh].INGRESS, f"{mesh}/scenarios")


def accounts(topology: Topology) -> list[tuple[str, str]]:
    """Every identity to issue (a proxy with no ServiceAccount is outside the mesh and gets none)."""
    found = {(p.namespace, p.service_account) for p in topology.proxies if p.service_account}
    return sorted(found | set(EXTRA_IDENTITIES))


def generate(root: Path, topology: Topology, layout: Layout, operations: list[tuple[str, str]],
             tree: Tree | None = None) -> Generated:
    """The configuration of every proxy for the overlay plus the operations (apply/delete of a file), in order."""
    front = FRONT_ENDS[layout.mesh]
    intent = front.translate(objects(root, layout, operations, tree), topology)
    ca = layout.ca
    identities = {key: ca.identity(*key) for key in accounts(topology)}
    builder = Builder(topology, intent, identities, ca, layout.proxies_dir, layout.logs_dir)
    return Generated(intent, builder.write_all())


def objects(root: Path, layout: Layout, operations: list[tuple[str, str]], tree: Tree | None = None) -> dict:
    """The objects the overlay plus the operations leave, by (kind, namespace, name), as `kubectl apply -f` /
    `delete -f` of each file in order would."""
    state = FRONT_ENDS[layout.mesh].overlay_documents(tree or Tree.load(root))
    return apply_operations(state, [(verb, file_documents(resolve(root, path), root)) for verb, path in operations])


def resolve(root: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else (root / candidate)


# -- writing ---------------------------------------------------------------------------------------------------------
def write_initial(proxies: dict[str, ProxyFiles]) -> None:
    """Before the proxies start: everything at once, then each bootstrap."""
    for files in proxies.values():
        write_cds(files, files.clusters)
        for name in files.routes:
            write_rds(files, name)
        write_lds(files)
        write_atomic(files.folder / "bootstrap.json", files.bootstrap)


def write_cds(files: ProxyFiles, clusters: list[dict]) -> str:
    body, version = discovery_response(clusters, CDS)
    write_atomic(files.cds_path, body)
    return version


def write_rds(files: ProxyFiles, name: str) -> str:
    body, version = discovery_response([files.routes[name]], RDS)
    write_atomic(files.rds_path(name), body)
    return version


def write_lds(files: ProxyFiles) -> str:
    body, version = discovery_response(files.listeners, LDS)
    write_atomic(files.lds_path, body)
    return version


def current_clusters(files: ProxyFiles) -> list[dict]:
    try:
        data = json.loads(files.cds_path.read_text())
    except (OSError, ValueError):
        return []
    return [{k: v for k, v in r.items() if k != "@type"} for r in data.get("resources", [])]


def update_running(proxies: dict[str, ProxyFiles], admin: dict[str, int],
                   timeout_s: float = UPDATE_TIMEOUT_S) -> list[str]:
    """Delivers new files to running proxies in the safe order; returns the proxies whose configuration changed."""
    changed = [name for name, files in proxies.items() if differs(files)]
    for step in ("clusters", "routes", "listeners", "prune"):
        waits: dict[str, list[tuple[str, str]]] = {}
        for name in changed:
            files = proxies[name]
            if step == "clusters":
                new = {c["name"]: c for c in files.clusters}
                union = files.clusters + [c for c in current_clusters(files) if c["name"] not in new]
                waits[name] = [("cluster_manager.cds.version_text", write_cds(files, union))]
            elif step == "routes":
                waits[name] = [(rds_stat(files, route), write_rds(files, route)) for route in files.routes
                               if rds_differs(files, route)]
            elif step == "listeners":
                waits[name] = [("listener_manager.lds.version_text", write_lds(files))]
            else:
                waits[name] = [("cluster_manager.cds.version_text", write_cds(files, files.clusters))]
        wait_for_versions(waits, admin, timeout_s)
    return changed


def differs(files: ProxyFiles) -> bool:
    for path, body in ((files.lds_path, discovery_response(files.listeners, LDS)[0]),
                       (files.cds_path, discovery_response(files.clusters, CDS)[0])):
        if read_version(path) != body["version_info"]:
            return True
    return any(rds_differs(files, name) for name in files.routes)


def rds_differs(files: ProxyFiles, name: str) -> bool:
    return read_version(files.rds_path(name)) != discovery_response([files.routes[name]], RDS)[1]


def read_version(path: Path) -> str | None:
    try:
        return json.loads(path.read_text()).get("version_info")
    except (OSError, ValueError):
        return None


def rds_stat(files: ProxyFiles, route: str) -> str:
    """The text readout Envoy keeps for an RDS subscription: http.<stat_prefix>.rds.<route config>.version_text"""
    for listener in files.listeners:
        for chain in listener.get("filter_chains", []):
            for f in chain.get("filters", []):
                hcm = f.get("typed_config", {})
                if hcm.get("rds", {}).get("route_config_name") == route:
                    # Envoy writes the route config's name into the stat name with ':' as '_'.
                    return f"http.{hcm['stat_prefix']}.rds.{route.replace(':', '_')}.version_text"
    raise KeyError(route)


def admin_stats(port: int, names: list[str]) -> dict[str, str]:
    """Text readouts and counters from /stats, by exact name."""
    wanted = set(names)
    pattern = "^(" + "|".join(re.escape(n) for n in sorted(wanted)) + ")$"
    url = f"http://127.0.0.1:{port}/stats?filter=" + urllib.parse.quote(pattern)
    out = {}
    with urllib.request.urlopen(url, timeout=2) as response:
        for line in response.read().decode().splitlines():
            name, _, value = line.partition(": ")
            if name in wanted:
                out[name] = value.strip().strip('"')
    return out


def wait_for_versions(waits: dict[str, list[tuple[str, str]]], admin: dict[str, int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = {name: dict(items) for name, items in waits.items() if items}
    while pending:
        for name in list(pending):
            try:
                seen = admin_stats(admin[name], list(pending[name]))
            except (urllib.error.URLError, OSError):
                seen = {}
            pending[name] = {stat: v for stat, v in pending[name].items() if seen.get(stat) != v}
            if not pending[name]:
                del pending[name]
        if not pending:
            return
        if time.monotonic() > deadline:
            late = ", ".join(f"{n} ({', '.join(s)})" for n, s in pending.items())
            raise ApplyError(f"not taken within {timeout_s:g}s by: {late}; see their logs (*.envoy.log)")
        time.sleep(0.05)


# -- validation ------------------------------------------------------------------------------------------------------
def validate(proxies: dict[str, ProxyFiles], envoy_binary: str) -> dict[str, str]:
    """`envoy --mode validate` on each proxy's resources (inline); returns the failures, by proxy."""
    failures = {}
    with tempfile.TemporaryDirectory(prefix="mesh-validate-") as folder:
        for name, files in proxies.items():
            path = Path(folder) / f"{name}.json"
            path.write_text(json.dumps(files.static_bootstrap()))
            result = subprocess.run([envoy_binary, "--mode", "validate", "-c", str(path), "--disable-hot-restart",
                                     "--log-level", "error"], capture_output=True, text=True, timeout=60)
            if result.returncode != 0:
                failures[name] = (result.stderr or result.stdout).strip()[-2000:]
    return failures


# -- the operations a learner applies ----------------------------------------------------------------------------------
def load_state(layout: Layout) -> list[tuple[str, str]]:
    try:
        return [(verb, path) for verb, path in json.loads(layout.state_path.read_text())["operations"]]
    except (OSError, ValueError, KeyError):
        return []


def save_state(layout: Layout, operations: list[tuple[str, str]]) -> None:
    write_atomic(layout.state_path, {"operations": [list(op) for op in operations]})
