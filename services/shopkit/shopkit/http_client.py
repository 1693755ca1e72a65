"""Outbound HTTP: one pooled session per neighbour and process, timeouts on every call, headers forwarded.

Retries are deliberately absent: retrying is the mesh's job in this lab, and an application that retried on its own
would hide what the mesh does (and could charge twice).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from flask import g, has_request_context
from requests.adapters import HTTPAdapter

from . import metrics
from .errors import UpstreamBadResponse, UpstreamTimeout, UpstreamUnavailable


@dataclass
class UpstreamResponse:
    status: int
    body: dict[str, Any]
    raw: bytes
    headers: dict[str, str]

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
        self._session: requests.Session | None = None
        self._session_pid = 0
        self._lock = threading.Lock()

    def _pooled_session(self) -> requests.Session:
        # A session made before gunicorn forked would share sockets between workers: make one per process.
        if self._session is None or self._session_pid != os.getpid():
            with self._lock:
                if self._session is None or self._session_pid != os.getpid():
                    session = requests.Session()
                    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
                    session.mount("http://", adapter)
                    session.mount("https://", adapter)
                    session.trust_env = False  # no proxy from the environment between two pods
                    self._session, self._session_pid = session, os.getpid()
        return self._session

    def call(self, method: str, path: str, *, json_body: Any = None, raw_body: bytes | None = None,
             content_type: str | None = None, headers: dict[str, str] | None = None,
             read_timeout_s: float | None = None) -> UpstreamResponse:
        """Calls the neighbour; returns any answer whose body is a JSON object, raises UpstreamError otherwise."""
        outgoing = dict(g.get("forward_headers", {})) if has_request_context() else {}
        outgoing.update(headers or {})
        if raw_body is not None and content_type:
            outgoing["Content-Type"] = content_type
        timeout = (self.connect_timeout_s, read_timeout_s or self.read_timeout_s)
        started = time.perf_counter()
        try:
            response = self._pooled_session().request(
                method, self.base_url + path, json=json_body, data=raw_body, headers=outgoing, timeout=timeout)
        except requests.ConnectTimeout:
            raise self._fail(UpstreamUnavailable, started,
                             f"{self.name} did not accept a connection within {timeout[0]:g}s")
        except requests.ReadTimeout:
            raise self._fail(UpstreamTimeout, started, f"{self.name} did not answer within {timeout[1]:g}s")
        except requests.RequestException as exc:
            raise self._fail(UpstreamUnavailable, started, f"{self.name} is unreachable ({type(exc).__name__})")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            # Not our services' JSON: a proxy answered (Envoy's "upstream request timeout", an RBAC denial) or
            # something that is not our service is listening there.
            snippet = response.text[:120].strip().replace("\n", " ")
            message = f"{self.name} answered HTTP {response.status_code} without a JSON object: {snippet!r}"
            kind = {503: UpstreamUnavailable, 504: UpstreamTimeout}.get(response.status_code, UpstreamBadResponse)
            raise self._fail(kind, started, message, upstream_status=response.status_code)
        self._count(started, "ok" if response.status_code < 400 else f"http_{response.status_code // 100}xx")
        return UpstreamResponse(response.status_code, body, response.content, dict(response.headers))

    def _count(self, started: float, outcome: str) -> None:
        metrics.UPSTREAM_REQUESTS.labels(self.service, self.version, self.name, outcome).inc()
        metrics.UPSTREAM_DURATION.labels(self.service, self.version, self.name).observe(time.perf_counter() - started)

    def _fail(self, kind, started: float, message: str, **details: Any):
        self._count(started, kind.outcome)
        return kind(self.name, message, **details)
