"""Run the shoppers: wait for the gateway, keep the rate, print summaries, stop cleanly on SIGTERM/SIGINT."""
from __future__ import annotations

import logging
import random
import secrets
import signal
import sys
import threading
import time
from typing import Any

import requests
from prometheus_client import start_http_server

from shopkit.config import ConfigError, env_str
from shopkit.logs import configure_logging

from .client import GatewayClient
from .config import Settings
from .journeys import Shopper, shopper_loop
from .metrics import Metrics
from .pacer import Pacer
from .stats import Stats, describe

USERS_PER_SHOPPER = 25      # returning customers: each shopper thread plays its own 25, so carts carry over visits
WAITING_LOG_EVERY_S = 15.0  # while the gateway is not ready: one line now, then one per this many seconds
# On stop, how long the requests in flight may still take before the final summary is printed without them. Below
# the Deployment's terminationGracePeriodSeconds (15 s), so the summary makes it into the log before a SIGKILL.
STOP_WAIT_S = 10.0

USAGE = """\
Usage: python -m loadgen    (from services/loadgen; configured only by environment variables)

Plays shopper journeys against the api-gateway: browse the catalog, look at products, fill a cart, change
quantities, check out with an Idempotency-Key (repeated once with the same key after a 5xx or no answer).
Waits for GATEWAY_URL/ready first, prints a summary every LOADGEN_SUMMARY_EVERY_S seconds, serves Prometheus
metrics (loadgen_*) on METRICS_PORT, and stops cleanly with a final summary on SIGTERM or Ctrl-C.

Environment:
  GATEWAY_URL              where shoppers go                              (default http://localhost:5000)
  LOADGEN_RPS              requests per second over all shoppers          (default 20)
  LOADGEN_CONCURRENCY      concurrent shoppers                            (default 4)
  LOADGEN_DURATION_S       stop after this many seconds of traffic, 0 = until stopped  (default 0)
  LOADGEN_SUMMARY_EVERY_S  seconds between printed summaries              (default 10)
  METRICS_PORT             port of /metrics, 0 = off                      (default 9100)
  LOG_LEVEL                DEBUG, INFO, WARNING                           (default INFO)

Example:
  cd services/loadgen && GATEWAY_URL=http://localhost:5000 LOADGEN_RPS=5 python -m loadgen
"""


class LoadGenerator:
    def __init__(self, settings: Settings, metrics: Metrics | None = None, log: logging.Logger | None = None,
                 seed: int | None = None):
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.stats = Stats(self.metrics)
        self.log = log or logging.getLogger("loadgen")
        self.stop = threading.Event()
        self.stop_reason: str | None = None
        self._rng = random.Random(seed)
        self._threads: list[threading.Thread] = []
        self.metrics.target_rps.set(settings.rps)
        self.metrics.concurrency.set(settings.concurrency)
        self.metrics.gateway_ready.set(0)

    def request_stop(self, reason: str) -> None:
        """Safe to call from a signal handler: it only sets a flag; the main loop does the talking."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop.set()

    def wait_for_gateway(self) -> bool:
        """Poll GATEWAY_URL/ready until it answers 200. False if asked to stop first."""
        url = f"{self.settings.gateway_url}/ready"
        last_logged = float("-inf")
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    response = session.get(url, timeout=(self.settings.connect_timeout_s, 5.0))
                    if response.status_code == 200:
                        self.log.info(f"gateway is ready at {url}; starting {self.settings.concurrency} shoppers at "
                                      f"{self.settings.rps:g} requests/s", extra={"event": "ready"})
                        return True
                    reason = f"HTTP {response.status_code}"
                except requests.RequestException as exc:
                    reason = type(exc).__name__
                now = time.monotonic()
                if now - last_logged >= WAITING_LOG_EVERY_S:
                    self.log.info(f"waiting for the gateway: GET {url} -> {reason}; checking every "
                                  f"{self.settings.ready_poll_s:g} s", extra={"event": "waiting", "reason": reason})
                    last_logged = now
                self.stop.wait(self.settings.ready_poll_s)
        return False

    def _start_shoppers(self) -> None:
        pacer = Pacer(self.settings.rps, self.stop)
        run_id = secrets.token_hex(3)  # so two generators (or two runs) never share carts
        for index in range(self.settings.concurrency):
            users = [f"lg-{run_id}-{index}-{n}" for n in range(USERS_PER_SHOPPER)]
            client = GatewayClient(self.settings, self.stats)
            shopper = Shopper(client, self.stats, pacer, users, random.Random(self._rng.random()),
                              self.settings.checkout_timeout_s)
            thread = threading.Thread(target=shopper_loop, args=(shopper, self.stop, client.close),
                                      name=f"shopper-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def run(self) -> dict[str, Any]:
        """Blocks until LOADGEN_DURATION_S has passed or request_stop(); returns the final summary."""
        if self.wait_for_gateway():
            self.stats = Stats(self.metrics)  # the clock of the summaries starts with the traffic
            self.metrics.gateway_ready.set(1)
            self._start_shoppers()
            self._summaries_until_stopped()
        if self.stop_reason:
            self.log.info(f"{self.stop_reason}: stopping; waiting for the requests in flight",
                          extra={"event": "stopping"})
        self.stop.set()
        # Requests in flight may finish (a slow checkout takes up to the gateway's 12 s); after STOP_WAIT_S the
        # summary goes out without them (the shopper threads are daemons and end with the process).
        deadline = time.monotonic() + STOP_WAIT_S
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.metrics.gateway_ready.set(0)
        summary = self.stats.summary(final=True)
        self.log.info(describe(summary), extra={"event": "summary", "summary": summary})
        return summary

    def _summaries_until_stopped(self) -> None:
        every = self.settings.summary_every_s
        started = time.monotonic()
        end = started + self.settings.duration_s if self.settings.duration_s > 0 else float("inf")
        next_summary = started + every
        while True:
            if self.stop.wait(max(0.0, min(next_summary, end) - time.monotonic())):
                return
            now = time.monotonic()
            if now >= end:
                self.request_stop(f"LOADGEN_DURATION_S={self.settings.duration_s:g} reached")
                return
            if now >= next_summary:
                summary = self.stats.summary()
                self.log.info(describe(summary), extra={"event": "summary", "summary": summary})
                next_summary += every


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0
    if args:
        print(f"loadgen: unexpected argument {args[0]!r}; it is configured by environment variables only "
              "(python -m loadgen --help)", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
        log_level = env_str("LOG_LEVEL", "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"LOG_LEVEL={log_level!r} must be DEBUG, INFO, WARNING or ERROR")
    except ConfigError as exc:
        print(f"loadgen: {exc}; fix the variable and start again (python -m loadgen --help)", file=sys.stderr)
        return 2

    log = configure_logging("loadgen", env_str("SERVICE_VERSION", "v1"), settings.instance, log_level)
    generator = LoadGenerator(settings, log=log)
    server = None
    if settings.metrics_port:
        try:
            server, _ = start_http_server(settings.metrics_port, addr="0.0.0.0", registry=generator.metrics.registry)
        except OSError as exc:
            print(f"loadgen: cannot serve metrics on port {settings.metrics_port} ({exc.strerror}); set METRICS_PORT "
                  "to a free port, or 0 to turn metrics off", file=sys.stderr)
            return 1
        log.info(f"metrics on :{settings.metrics_port}/metrics", extra={"event": "metrics"})

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: generator.request_stop(f"received {signal.Signals(number).name}"))
    try:
        generator.run()
    finally:
        if server is not None:
            server.shutdown()
    return 0
