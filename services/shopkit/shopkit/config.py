"""Settings from the environment, read once per process.

A wrong value stops the service at start with a message naming the variable, instead of failing later.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """An environment variable holds a value the service cannot use."""


def env_str(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def env_float(name: str, default: float, minimum: float = 0.0, maximum: float = float("inf")) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={raw!r} must be between {minimum} and {maximum}")
    return value


def env_int(name: str, default: int, minimum: int = 0, maximum: int = 2**31) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name}={raw!r} must be between {minimum} and {maximum}")
    return value


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name}={raw!r} must be true or false")


def admin_port_from_env(port: int) -> int:
    """ADMIN_PORT, by default the business port + 100 (5000 -> 5100); never the business port itself."""
    admin_port = env_int("ADMIN_PORT", port + 100 if port <= 65435 else port - 100, 1, 65535)
    if admin_port == port:
        raise ConfigError(f"ADMIN_PORT={admin_port} is the business port (PORT): the admin port must be another one")
    return admin_port


@dataclass(frozen=True)
class Settings:
    """What every service knows about itself and its neighbours."""

    service: str
    version: str
    port: int
    admin_port: int
    instance: str
    connect_timeout_s: float
    read_timeout_s: float
    upstreams: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, service: str, default_port: int, upstreams: dict[str, tuple[str, str]] | None = None) -> "Settings":
        """`upstreams` maps a neighbour's name to (environment variable, default URL)."""
        port = env_int("PORT", default_port, 1, 65535)
        admin_port = admin_port_from_env(port)
        urls = {}
        for name, (variable, default_url) in (upstreams or {}).items():
            url = env_str(variable, default_url).rstrip("/")
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"{variable}={url!r} must start with http:// or https://")
            urls[name] = url
        return cls(
            service=env_str("SERVICE_NAME", service),
            version=env_str("SERVICE_VERSION", "v1"),
            port=port,
            admin_port=admin_port,
            instance=env_str("POD_NAME", f"{socket.gethostname()}:{port}"),
            connect_timeout_s=env_float("UPSTREAM_CONNECT_TIMEOUT_S", 1.0, 0.01, 60),
            read_timeout_s=env_float("UPSTREAM_TIMEOUT_S", 5.0, 0.01, 300),
            upstreams=urls,
        )
