"""Fault injection that a learner switches at runtime with curl.

Settings start from the environment (FAULT_* variables, FAULTS_ENABLED as the master switch) and can be changed while
the service runs through /admin/faults. They live in a small JSON file in the instance's runtime folder, so one PUT
reaches every gunicorn worker of the instance at once, and a restart returns to the environment's defaults.

Probes, /metrics and /admin are never faulted, so that the platform does not restart a "sick" pod while the mesh's
circuit breaker is the thing meant to detect it. A service may call before_business_request() itself, later than the
app factory would (payment answers a repeat from its ledger first).
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import random
import tempfile
import time
from typing import Any

from . import metrics
from .config import env_bool, env_float, env_int
from .errors import BadRequest
from .logs import get_logger

# field -> (environment variable, type, minimum, maximum)
COMMON_FIELDS: dict[str, tuple[str, type, float, float]] = {
    "enabled": ("FAULTS_ENABLED", bool, 0, 1),
    "error_rate": ("FAULT_ERROR_RATE", float, 0.0, 1.0),
    "delay_ms": ("FAULT_DELAY_MS", int, 0, 60_000),
    "sick": ("FAULT_SICK", bool, 0, 1),
}
PAYMENT_FIELDS: dict[str, tuple[str, type, float, float]] = {
    "decline_rate": ("FAULT_DECLINE_RATE", float, 0.0, 1.0),
    "timeout_rate": ("FAULT_TIMEOUT_RATE", float, 0.0, 1.0),
    "timeout_seconds": ("FAULT_TIMEOUT_SECONDS", float, 0.0, 120.0),
}


def defaults_from_env(fields: dict[str, tuple[str, type, float, float]], seed: dict[str, Any]) -> dict[str, Any]:
    """The service's seed defaults, each overridable by its environment variable."""
    values: dict[str, Any] = {}
    for name, (variable, kind, low, high) in fields.items():
        fallback = seed.get(name, True if name == "enabled" else (False if kind is bool else 0))
        if kind is bool:
            values[name] = env_bool(variable, bool(fallback))
        elif kind is int:
            values[name] = env_int(variable, int(fallback), int(low), int(high))
        else:
            values[name] = env_float(variable, float(fallback), low, high)
    return values


def validate_changes(fields: dict[str, tuple[str, type, float, float]], changes: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise BadRequest(f"unknown fault setting(s): {', '.join(unknown)}; known: {', '.join(fields)}")
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        _, kind, low, high = fields[name]
        if kind is bool:
            if not isinstance(value, bool):
                raise BadRequest(f"'{name}' must be true or false", field=name)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BadRequest(f"'{name}' must be a number", field=name)
        elif not math.isfinite(value):  # json_object refuses NaN and Infinity; this holds for any caller
            raise BadRequest(f"'{name}' must be a finite number", field=name)
        elif kind is int and value != int(value):
            raise BadRequest(f"'{name}' must be a whole number", field=name)
        elif not low <= value <= high:
            raise BadRequest(f"'{name}' must be between {low:g} and {high:g}", field=name)
        clean[name] = kind(value)
    return clean


class FaultStore:
    """The instance's current settings: a JSON file shared by all workers, re-read only when it changes."""

    def __init__(self, fields: dict[str, tuple[str, type, float, float]], defaults: dict[str, Any], folder: str):
        self.fields = fields
        self.defaults = defaults
        self.path = os.path.join(folder, "faults.json")
        self._lock_path = self.path + ".lock"
        self._seen: tuple[int, int, int] | None = None
        self._cached = dict(defaults)

    def current(self) -> dict[str, Any]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._seen = None
            self._cached = dict(self.defaults)
            return self._cached
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._seen:
            try:
                with open(self.path, encoding="utf-8") as f:
                    self._cached = {**self.defaults, **json.load(f)}
                self._seen = stamp
            except (OSError, ValueError):
                pass  # a writer is mid-rename; keep the last good settings
        return self._cached

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        clean = validate_changes(self.fields, changes)
        with open(self._lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            merged = {**self.current(), **clean}
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".faults-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(merged, f)
            os.replace(tmp, self.path)  # atomic: readers see the old file or the new one, never half of one
        return self.current()

    def reset(self) -> dict[str, Any]:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        return self.current()


class Faults:
    """Decides, request by request, whether to inject a fault, and counts and logs each one."""

    def __init__(self, store: FaultStore, service: str, version: str):
        self.store = store
        self.service = service
        self.version = version

    def settings(self) -> dict[str, Any]:
        return self.store.current()

    def record(self, fault: str, **details: Any) -> None:
        metrics.INJECTED_FAULTS.labels(self.service, self.version, fault).inc()
        get_logger().warning("injected fault", extra={"fault": fault, **details})

    def roll(self, rate_field: str, fault: str) -> bool:
        """True with the configured probability, if faults are enabled; counts the hit."""
        settings = self.settings()
        rate = settings.get(rate_field, 0.0)
        if not settings.get("enabled") or rate <= 0:
            return False
        if rate >= 1 or random.random() < rate:
            self.record(fault, rate=rate)
            return True
        return False

    def before_business_request(self) -> tuple[int, dict[str, Any]] | None:
        """Sick mode, added latency and random errors, in that order. Returns (status, body) to answer instead."""
        settings = self.settings()
        if not settings.get("enabled"):
            return None
        if settings.get("sick"):
            self.record("sick")
            return 500, self._body("sick", f"injected fault: {self.service} instance is sick (sick mode)")
        delay_ms = settings.get("delay_ms", 0)
        if delay_ms > 0:
            self.record("delay", delay_ms=delay_ms)
            time.sleep(delay_ms / 1000)
        if self.roll("error_rate", "error"):
            rate = settings.get("error_rate")
            return 500, self._body("error", f"injected fault: {self.service} error (error_rate={rate:g})")
        return None

    def _body(self, fault: str, message: str) -> dict[str, Any]:
        return {"error": message, "injected": True, "fault": fault, "service": self.service, "version": self.version}
