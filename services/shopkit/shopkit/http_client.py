"""Outbound HTTP: one connection pool per neighbour and process, timeouts on every call, headers forwarded.

Retries are deliberately absent: retrying is the mesh's job in this lab, and an application that retried on its own
would hide what the mesh does (and could charge twice).

urllib3's pool is used directly rather than through requests: on the gateway's hot path requests cost about 0.35 ms
of CPU per call on top of urllib3, a third of what a relayed request costs in all (see bench/).
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import urllib3
from flask import g, has_request_context
from urllib3 import HTTPHeaderDict
from urllib3.exceptions import HTTPError, ReadTimeoutError

from . import metrics
from .background import Background
from .errors import UpstreamBadResponse, UpstreamError, UpstreamTimeout, UpstreamUnavailable

# Calls whose answer nobody waits for (notifications), shared by every neighbour of the process.
LATER = Background("upstream-later")


@dataclass
class UpstreamResponse:
    status: int
    body: dict[str, Any]
    raw: bytes
    # Case-insensitive, as HTTP header names are: Envoy lowercases every name it forwards over HTTP/1.1.
    headers: HTTPHeaderDict

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Upstream:
    """A neighbour service reached over HTTP, e.g. Upstream("catalog", "http://catalog-service:5001", settings)."""

    def __init__(self, name: str, base_url: str, service: str, version: str,
                 connect_timeout_s: float, read_timeout_s: float, pool_size: int = 32):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.service = service
        self.version = version
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.pool_size = pool_size
        self._pool: urllib3.HTTPConnectionPool | None = None
        self._pool_pid = 0
        self._lock = threading.Lock()

    def _connection_pool(self) -> urllib3.HTTPConnectionPool:
        # A pool made before gunicorn forked would share sockets between workers: make one per process.
        if self._pool is None or self._pool_pid != os.getpid():
            with self._lock:
                if self._pool is None or self._pool_pid != os.getpid():
                    self._pool = urllib3.connection_from_url(self.base_url, maxsize=self.pool_size, block=False,
                                                             retries=False)
                    self._pool_pid = os.getpid()
        return self._pool

    def call(self, method: str, path: str, *, json_body: Any = None, raw_body: bytes | None = None,
             content_type: str | None = None, headers: dict[str, str] | None = None,
             read_timeout_s: float | None = None) -> UpstreamResponse:
        """Calls the neighbour; returns any answer whose body is a JSON object, raises UpstreamError otherwise."""
        outgoing = dict(g.get("forward_headers", {})) if has_request_context() else {}
        outgoing.update(headers or {})
        if json_body is not None:
            raw_body, content_type = json.dumps(json_body).encode(), "application/json"
        if raw_body is not None and content_type:
            outgoing["Content-Type"] = content_type
        read_timeout = read_timeout_s or self.read_timeout_s
        started = time.perf_counter()
        try:
            response = self._connection_pool().urlopen(
                method, path, body=raw_body, headers=outgoing, retries=False, redirect=False,
                timeout=urllib3.Timeout(connect=self.connect_timeout_s, read=read_timeout))
        except ReadTimeoutError:
            raise self._fail(UpstreamTimeout, started, f"{self.name} did not answer within {read_timeout:g}s")
        except HTTPError as exc:  # refused, reset, DNS, connect timeout: nothing answered
            raise self._fail(UpstreamUnavailable, started, f"{self.name} is unreachable ({type(exc).__name__})")
        raw = response.data
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            # Not our services' JSON: a proxy answered (Envoy's "upstream request timeout", an RBAC denial) or
            # something that is not our service is listening there.
            snippet = raw[:120].decode("utf-8", "replace").strip().replace("\n", " ")
            message = f"{self.name} answered HTTP {response.status} without a JSON object: {snippet!r}"
            kind = {503: UpstreamUnavailable, 504: UpstreamTimeout}.get(response.status, UpstreamBadResponse)
            raise self._fail(kind, started, message, upstream_status=response.status)
        self._count(started, "ok" if response.status < 400 else f"http_{response.status // 100}xx")
        return UpstreamResponse(response.status, body, raw, response.headers)

    def call_later(self, method: str, path: str, *, json_body: Any = None) -> None:
        """The call in the background, after the caller has answered; its outcome is only counted and logged.

        The request and trace headers are taken now: the background thread runs outside the request."""
        forwarded = dict(g.get("forward_headers", {})) if has_request_context() else {}

        def send() -> None:
            try:
                self.call(method, path, json_body=json_body, headers=forwarded)
            except UpstreamError:
                pass  # counted in upstream_requests_total by call()

        if not LATER.submit(send):
            metrics.UPSTREAM_REQUESTS.labels(self.service, self.version, self.name, "dropped").inc()

    def _count(self, started: float, outcome: str) -> None:
        metrics.UPSTREAM_REQUESTS.labels(self.service, self.version, self.name, outcome).inc()
        metrics.UPSTREAM_DURATION.labels(self.service, self.version, self.name).observe(time.perf_counter() - started)

    def _fail(self, kind, started: float, message: str, **details: Any):
        self._count(started, kind.outcome)
        return kind(self.name, message, **details)
