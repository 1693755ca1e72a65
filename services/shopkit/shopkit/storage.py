"""Redis clients of the services that keep state in Redis (cart: carts and orders; payment: its ledger).

One place for how a service connects: URL and password from the environment, short timeouts (a Redis that hangs
must fail a request, not a worker), connection checks, and the readiness check that goes with it.
"""
from __future__ import annotations

from typing import Any

import redis

from .config import env_str


def redis_client(url_variable: str, default_url: str, password_variable: str) -> redis.Redis:
    return redis.Redis.from_url(
        env_str(url_variable, default_url),
        password=env_str(password_variable, "") or None,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=2.0,
        health_check_interval=30,
    )


def redis_readiness(client: redis.Redis, name: str):
    """A readiness check for create_service_app: ready while `client` answers PING."""
    def check() -> tuple[bool, dict[str, Any]]:
        try:
            client.ping()
            return True, {name: "ok"}
        except redis.RedisError as exc:
            return False, {name: f"unreachable: {type(exc).__name__}"}
    return check
