"""Calls to the gateway: one requests.Session per shopper thread (connection reuse), timeouts on every call, and
every outcome, answered or not, recorded once in Stats."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any

import requests

from .config import Settings
from .stats import Stats

USER_AGENT = "mesh-lab-loadgen/1"


@dataclass
class Answer:
    status: str                     # "200", "402", ... or "timeout" / "connection_error" when no answer came
    code: int | None = None
    body: dict[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # case-insensitive when it comes from requests

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def worth_retrying(self) -> bool:
        """A 5xx or no answer at all: the outcome is unknown or temporary, so the same request may be repeated."""
        return self.code is None or self.code >= 500


class GatewayClient:
    """Not shared between threads: requests.Session is not thread-safe, so each shopper thread has its own."""

    def __init__(self, settings: Settings, stats: Stats):
        self.settings = settings
        self.stats = stats
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})

    def close(self) -> None:
        self.session.close()

    def call(self, action: str, method: str, path: str, *, user: str, json_body: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, read_timeout_s: float | None = None) -> Answer:
        # x-user lets the mesh scenarios that target one shopper (header match) pick out loadgen users too.
        all_headers = {"x-user": user, **(headers or {})}
        timeout = (self.settings.connect_timeout_s, read_timeout_s or self.settings.read_timeout_s)
        started = time.perf_counter()
        try:
            response = self.session.request(method, self.settings.gateway_url + path, json=json_body,
                                            headers=all_headers, timeout=timeout)
            answer = Answer(str(response.status_code), response.status_code, headers=response.headers)
            try:
                body = response.json()
                if isinstance(body, dict):
                    answer.body = body
            except ValueError:
                pass  # a proxy's HTML or text error page: the status says enough
        except requests.Timeout:
            answer = Answer("timeout")
        except requests.RequestException:
            answer = Answer("connection_error")
        self.stats.request(action, method, answer.status, time.perf_counter() - started)
        return answer
