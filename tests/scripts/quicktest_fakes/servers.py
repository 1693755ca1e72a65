"""HTTP stand-ins for what only a cluster has (the quick-test tests' names say "stand_in" when they use them).

- MeshRouter: the mesh's data plane between two local services. `split` sends exactly every 20th request to the
  second upstream (the 95/5 canary, deterministic so the test cannot flake); `retry_get` repeats a GET that got a
  5xx up to twice (the overlays' GET retries).
- Refuser: what a sidecar answers a caller its authorization policy does not allow (Istio: 403 RBAC: access denied).
- Resetter: what Istio's sidecar does to a plaintext connection under STRICT mTLS (no filter chain matches: reset).
- PrometheusStandIn: /api/v1/targets and /api/v1/query with canned answers.
"""
from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller gave up (the cart's payment timeout): what a mesh sees too


class _RouterHandler(_Quiet):
    def _any(self) -> None:
        router: MeshRouter = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        attempts = 3 if router.mode == "retry_get" and self.command == "GET" else 1
        for attempt in range(attempts):
            upstream = router.pick()
            try:
                connection = http.client.HTTPConnection(upstream, timeout=30)
                connection.request(self.command, self.path, body, headers)
                response = connection.getresponse()
                data = response.read()
            except OSError:
                if attempt + 1 < attempts:
                    continue
                self.reply(503, b'{"error": "upstream connect error"}', {"Content-Type": "application/json"})
                return
            if response.status < 500 or attempt + 1 == attempts:
                break
            router.retries += 1
        self.reply(response.status, data,
                   {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP})

    do_GET = do_POST = do_PUT = do_DELETE = _any


class MeshRouter(_Server):
    def __init__(self, mode: str):
        super().__init__(_RouterHandler)
        self.mode = mode
        self.upstreams: list[str] = []  # host:port; set once the stack's ports are known
        self.retries = 0
        self._count = 0
        self._lock = threading.Lock()

    def pick(self) -> str:
        if self.mode != "split":
            return self.upstreams[0]
        with self._lock:
            self._count += 1
            return self.upstreams[1] if self._count % 20 == 0 else self.upstreams[0]


class _RefuserHandler(_Quiet):
    def _any(self) -> None:
        self.reply(403, b"RBAC: access denied", {"Content-Type": "text/plain"})

    do_GET = do_POST = _any


class Refuser(_Server):
    def __init__(self) -> None:
        super().__init__(_RefuserHandler)


class Resetter:
    """Accepts, reads the request, and resets the connection (SO_LINGER 0): curl reports exit 56."""

    def __init__(self) -> None:
        import socket
        import struct
        self._socket_module, self._struct = socket, struct
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            try:
                connection.recv(65536)
                connection.setsockopt(self._socket_module.SOL_SOCKET, self._socket_module.SO_LINGER,
                                      self._struct.pack("ii", 1, 0))
            finally:
                connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()


class _PrometheusHandler(_Quiet):
    def do_GET(self) -> None:
        prometheus: PrometheusStandIn = self.server.owner  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        if parts.path == "/api/v1/targets":
            data: Any = {"activeTargets": prometheus.targets, "droppedTargets": []}
        elif parts.path == "/api/v1/query":
            query = parse_qs(parts.query).get("query", [""])[0]
            prometheus.queries.append(query)
            result = next((r for metric, r in prometheus.results.items() if metric in query), [])
            data = {"resultType": "vector", "result": result}
        else:
            self.reply(404, b"404 page not found")
            return
        self.reply(200, json.dumps({"status": "success", "data": data}).encode(),
                   {"Content-Type": "application/json"})


class PrometheusStandIn(_Server):
    def __init__(self, targets: list[dict[str, Any]], results: dict[str, list[dict[str, Any]]]):
        super().__init__(_PrometheusHandler)
        self.targets = targets
        self.results = results  # metric name -> vector result of any query that names it
        self.queries: list[str] = []
