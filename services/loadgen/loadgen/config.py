"""The load generator's settings, from the environment variables of docs/architecture.md ("Load generator")."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from shopkit.config import ConfigError, env_float, env_int, env_str

# 20 requests/s: shoppers check out in about one request in ten, so that is ~2 checkouts/s, ~120 a minute, and at a
# 95/5 canary split ~6 payments a minute reach v2: enough for a per-version success rate in any one-minute window.
# (At 5/s v2 would see ~1.5 a minute, and many minutes none at all.)
DEFAULT_RPS = 20.0
DEFAULT_CONCURRENCY = 4


@dataclass(frozen=True)
class Settings:
    gateway_url: str
    rps: float
    concurrency: int
    duration_s: float          # 0: until SIGTERM/SIGINT
    summary_every_s: float
    metrics_port: int          # 0: no /metrics endpoint
    instance: str
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 10.0       # above the gateway's own timeout to cart (CART_TIMEOUT_S, 6 s), so the gateway answers first
    checkout_timeout_s: float = 30.0   # above the gateway's CHECKOUT_TIMEOUT_S (25 s) and the mesh's checkout route (27 s)
    ready_poll_s: float = 2.0

    @classmethod
    def from_env(cls) -> "Settings":
        gateway_url = env_str("GATEWAY_URL", "http://localhost:5000").rstrip("/")
        if not gateway_url.startswith(("http://", "https://")):
            raise ConfigError(f"GATEWAY_URL={gateway_url!r} must start with http:// or https://")
        return cls(
            gateway_url=gateway_url,
            rps=env_float("LOADGEN_RPS", DEFAULT_RPS, 0.01, 10_000),
            concurrency=env_int("LOADGEN_CONCURRENCY", DEFAULT_CONCURRENCY, 1, 512),
            duration_s=env_float("LOADGEN_DURATION_S", 0.0, 0.0, 10 * 365 * 86400),
            summary_every_s=env_float("LOADGEN_SUMMARY_EVERY_S", 10.0, 0.1, 86400),
            metrics_port=env_int("METRICS_PORT", 9100, 0, 65535),
            instance=env_str("POD_NAME", socket.gethostname() or os.environ.get("HOSTNAME", "loadgen")),
        )
