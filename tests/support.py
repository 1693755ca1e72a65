"""Helpers the suites share: switching faults, reading metrics, extra service instances, misbehaving neighbours."""
from __future__ import annotations

import requests


def admin_url(stack, service: str) -> str:
    """Where a service answers /admin/*, /health, /ready and /metrics apart from its business requests."""
    return stack.admin_urls[service]


class FaultSwitch:
    """Changes fault settings through the real /admin/faults endpoints and puts them back afterwards."""

    def __init__(self, stack):
        self.stack = stack
        self.touched: set[str] = set()

    def set(self, service: str, **settings) -> dict:
        """Turns faults on with exactly `settings`: every rate not named is 0, so no other fault interferes."""
        url = admin_url(self.stack, service) + "/admin/faults"
        current = requests.get(url, timeout=5).json()
        quiet = {name: (False if isinstance(value, bool) else 0) for name, value in current.items()
                 if name not in ("enabled", "timeout_seconds")}
        settings = {**quiet, "enabled": True, **settings}
        response = requests.put(url, json=settings, timeout=5)
        assert response.status_code == 200, response.text
        self.touched.add(service)
        return response.json()

    def reset(self) -> None:
        for service in self.touched:
            requests.delete(admin_url(self.stack, service) + "/admin/faults", timeout=5)
        self.touched.clear()


def add(http, stack, user, product_id="1", quantity=1):
    response = http.post(f"{stack.urls['api-gateway']}/api/cart/{user}/add",
                         json={"product_id": product_id, "quantity": quantity}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def metric_value(text: str, name: str, **labels) -> float:
    """The sum of the samples of `name` whose labels include `labels`, from a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        series, _, value = line.rpartition(" ")
        if all(f'{key}="{val}"' in series for key, val in labels.items()):
            total += float(value)
    return total


class LoneService:
    """One more real instance of a service (gunicorn, shopkit config) wired to neighbours of the test's choosing.

    `unset` names variables to leave out of the environment, so a test can see the service's own defaults."""

    def __init__(self, component_name: str, env: dict[str, str], folder, unset: tuple[str, ...] = ()):
        from devstack.stack import COMPONENTS, SERVICES, free_ports

        self.component = next(c for c in COMPONENTS if c.name == component_name)
        self.port, self.admin_port = free_ports(2)
        self.url = f"http://127.0.0.1:{self.port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.env = env
        self.unset = unset
        self.cwd = SERVICES / self.component.directory
        self.log = folder / f"{component_name}-{self.port}.log"
        self.process = None

    def __enter__(self):
        import os
        import subprocess
        import sys
        import time

        from devstack.stack import SERVICES, http_ok

        env = {k: v for k, v in os.environ.items() if k not in ("SHOPKIT_RUNTIME_DIR", "PROMETHEUS_MULTIPROC_DIR")}
        env.update(self.component.env, PORT=str(self.port), ADMIN_PORT=str(self.admin_port),
                   PYTHONPATH=str(SERVICES / "shopkit"), FAULTS_ENABLED="false", **self.env)
        for name in self.unset:
            env.pop(name, None)
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", "python:shopkit.gunicorn_conf", self.component.target],
                cwd=self.cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while not http_ok(self.url + "/health"):
            assert self.process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "service did not start"
            time.sleep(0.1)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        # Up to gunicorn's graceful_timeout (20 s) and a margin: a worker forked just before the TERM still runs the
        # master's signal handler (gunicorn's Worker.init_signals comes later in init_process), so the TERM is lost
        # there and the master waits that long before it kills the worker.
        self.process.wait(30)


class FakeUpstream:
    """A real HTTP server that plays a misbehaving neighbour and records the headers it was sent.

    `headers` are sent with every answer, with their names exactly as given (Envoy sends lowercase ones);
    `respond(method, path, body)` -> (status, payload) decides the answer per request when given."""

    def __init__(self, status=200, body=b'{"products": [], "count": 0, "currency": "USD"}',
                 content_type="application/json", delay_s=0.0, by_path: dict[str, tuple[int, bytes]] | None = None,
                 headers: dict[str, str] | None = None, respond=None):
        import http.server
        import threading
        import time

        self.requests: list[dict[str, str]] = []
        self.calls: list[tuple[str, str, bytes]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                outer.requests.append({k.lower(): v for k, v in self.headers.items()})
                length = int(self.headers.get("Content-Length") or 0)
                sent = self.rfile.read(length) if length else b""
                outer.calls.append((self.command, self.path, sent))
                time.sleep(delay_s)
                if respond is not None:
                    code, payload = respond(self.command, self.path, sent)
                else:
                    code, payload = (by_path or {}).get(self.path, (status, body))
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_PUT = do_DELETE = do_GET

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def spread_over_workers(send, log_file, marker: str, rounds: int = 6, burst: int = 24) -> tuple[int, set[int]]:
    """Sends bursts of concurrent requests until log lines show that at least two gunicorn workers answered.

    The kernel decides which worker accepts a connection, and one busy worker can take them all; a test that must
    prove something about *all* workers keeps sending until two have answered. `send(request_id)` makes one request;
    returns (requests sent, pids that logged a request whose id starts with `marker`).
    """
    import json
    from concurrent.futures import ThreadPoolExecutor

    sent, pids = 0, set()
    for round_no in range(rounds):
        with ThreadPoolExecutor(max_workers=burst) as pool:
            list(pool.map(send, [f"{marker}{round_no}-{n}" for n in range(burst)]))
        sent += burst
        pids = {json.loads(raw)["pid"] for raw in log_file.read_text().splitlines()
                if raw.startswith("{") and f'"request_id":"{marker}' in raw and '"msg":"request"' in raw}
        if len(pids) >= 2:
            break
    return sent, pids


def eventually(probe, timeout_s: float = 10.0, every_s: float = 0.1):
    """Calls `probe` until it returns something true (and returns that), or fails after `timeout_s`: for effects that
    happen after an answer (a notification sent in the background)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"still not true after {timeout_s:g} s: {probe.__doc__ or probe}"
        time.sleep(every_s)


def start_run_local(*args: str, timeout_s: float = 90):
    """./run-local.sh ARGS in a session of its own, once it printed that it is ready: (process, output lines so far,
    still growing). The caller stops it with os.killpg(process.pid, SIGINT), as Ctrl-C in a terminal would."""
    import subprocess
    import threading
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen([str(root / "run-local.sh"), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    output: list[str] = []
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()  # never blocks the test
    deadline = time.monotonic() + timeout_s
    while not any("Ctrl-C stops everything." in line for line in output) and time.monotonic() < deadline:
        if process.poll() is not None:
            break
        time.sleep(0.2)
    return process, output
