"""The load generator against the real stack: its own figures must match what the services counted."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from devstack.stack import free_ports
from loadgen.client import GatewayClient
from loadgen.config import Settings
from loadgen.journeys import Shopper
from loadgen.metrics import METRIC_NAMES, Metrics
from loadgen.pacer import Pacer
from loadgen.runner import LoadGenerator
from loadgen.stats import Stats, percentile
from tests.support import FaultSwitch

ROOT = Path(__file__).resolve().parents[2]
LOADGEN_DIR = ROOT / "services" / "loadgen"


@pytest.fixture
def faults(stack):
    switch = FaultSwitch(stack)
    yield switch
    switch.reset()


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called `name` in a Prometheus text page."""
    return [(s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == name]


def counts(text: str, name: str, keys: tuple[str, ...], where=lambda labels: True) -> Counter:
    totals: Counter = Counter()
    for labels, value in samples(text, name):
        if where(labels):
            totals[tuple(labels[k] for k in keys)] += value
    return +totals  # drop zero entries (labels seen once, never incremented in this window)


def scrape(stack) -> dict[str, str]:
    return {name: requests.get(stack.urls[name] + "/metrics", timeout=5).text
            for name in ("api-gateway", "cart", "payment-v1", "payment-v2")}


def delta(after: Counter, before: Counter) -> Counter:
    result = Counter(after)
    result.subtract(before)
    return +result


def loadgen_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADGEN_", "GATEWAY_URL", "METRICS_PORT"))}
    env["PYTHONPATH"] = str(ROOT / "services" / "shopkit")
    env.update(extra)
    return env


def start_loadgen(**extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "loadgen"], cwd=LOADGEN_DIR, env=loadgen_env(**extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class LineReader:
    """Collects a process's stdout lines in the background, so the test can wait for one without blocking."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self.thread.start()

    def wait_for(self, predicate, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in list(self.lines):
                event = json.loads(line)
                if predicate(event):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no such log line within {timeout_s}s; got: {self.lines}")


def test_loadgen_counts_agree_with_the_services_own_metrics(stack, faults):
    """Equality (tolerance 0) holds only under these conditions, which the test sets up:

    - every fault off except payment v1's declines (the `stack` fixture starts with every fault off; checked below):
      a catalog fault makes cart answer 502 without counting a checkout result, which loadgen counts as `error`;
    - the gateway reaches the cart and every answer arrives in time, so none of loadgen's client-only results
      (`timeout`, `connection_error`, `rejected`, `error`) occurs and a 503/504 can only be the cart's;
    - no other traffic reaches the stack in this window.
    """
    # Half the payments declined, so the comparison covers a failure result as well as approvals.
    faults.set("payment-v1", enabled=True, decline_rate=0.5, timeout_rate=0.0, error_rate=0.0)
    for service in ("api-gateway", "catalog", "cart", "payment-v2", "notification"):
        assert requests.get(stack.admin_urls[service] + "/admin/faults", timeout=5).json()["enabled"] is False, service
    before = scrape(stack)
    settings = Settings(gateway_url=stack.urls["api-gateway"], rps=30, concurrency=4, duration_s=5,
                        summary_every_s=2, metrics_port=0, instance="test")
    generator = LoadGenerator(settings, seed=1)
    summary = generator.run()
    time.sleep(0.3)  # let the last answers' counters land before the second scrape
    after = scrape(stack)
    own = generator.metrics.registry

    def own_counts(name: str, keys: tuple[str, ...]) -> Counter:
        totals: Counter = Counter()
        for family in own.collect():
            for sample in family.samples:
                if sample.name == name:
                    totals[tuple(sample.labels[k] for k in keys)] += sample.value
        return +totals

    sent = own_counts("loadgen_requests_total", ("method", "status"))
    checkouts = own_counts("loadgen_checkouts_total", ("payment_version", "result"))
    assert sum(sent.values()) >= 100, f"too little traffic to compare: {sent}"
    assert checkouts[("v1", "approved")] > 0 and checkouts[("v1", "declined")] > 0, checkouts
    client_only = {"timeout", "connection_error", "rejected", "error"}
    assert not [key for key in checkouts if key[1] in client_only], f"results the cart has no word for: {checkouts}"

    # Tolerance 0: in this window all traffic is the generator's, and every counter moves before its answer leaves.
    is_api = lambda labels: labels["route"].startswith("/api/")  # noqa: E731  (not /ready, which loadgen polls)
    gateway = delta(counts(after["api-gateway"], "http_requests_total", ("method", "status"), is_api),
                    counts(before["api-gateway"], "http_requests_total", ("method", "status"), is_api))
    assert gateway == sent

    by_result = Counter()
    for (_version, result), value in checkouts.items():
        by_result[(result,)] += value
    cart = delta(counts(after["cart"], "checkouts_total", ("result",)),
                 counts(before["cart"], "checkouts_total", ("result",)))
    assert cart == by_result

    for version in ("v1", "v2"):
        payments = delta(counts(after[f"payment-{version}"], "payments_total", ("result",)),
                         counts(before[f"payment-{version}"], "payments_total", ("result",)))
        ours = +Counter({(result,): value for (v, result), value in checkouts.items() if v == version})
        assert payments == ours, version

    # The printed summary tells the same story as the metrics.
    assert summary["requests"] == sum(sent.values())
    assert summary["checkouts_by_version"] == {"v1": sum(v for (ver, _), v in checkouts.items() if ver == "v1")}
    assert summary["window_rps"] == pytest.approx(30, rel=0.2)
    assert all(summary["latency_ms"][p] is not None for p in ("p50", "p95", "p99"))


class RecordingClient(GatewayClient):
    """The real client, noting the Idempotency-Key of every checkout it sends."""

    def __init__(self, *args):
        super().__init__(*args)
        self.checkout_keys: list[str] = []

    def call(self, action, method, path, **kwargs):
        if action == "checkout":
            self.checkout_keys.append(kwargs["headers"]["Idempotency-Key"])
        return super().call(action, method, path, **kwargs)


@pytest.mark.parametrize("payment_fault, results, keys_sent", [
    ({"error_rate": 1.0}, ("payment_unavailable", "payment_unavailable"), 2),  # 5xx: once more, same key
    ({"decline_rate": 1.0}, ("declined",), 1),                                 # a decline is an answer: no repeat
])
def test_shopper_repeats_a_failed_checkout_once_with_the_same_key(stack, faults, payment_fault, results, keys_sent):
    settings = Settings(gateway_url=stack.urls["api-gateway"], rps=100, concurrency=1, duration_s=0,
                        summary_every_s=10, metrics_port=0, instance="test")
    stats = Stats(Metrics())
    client = RecordingClient(settings, stats)
    user = f"lg-test-{uuid.uuid4().hex[:12]}"
    shopper = Shopper(client, stats, Pacer(100, threading.Event()), [user])
    shopper.browse(user)
    cart = shopper.add_to_cart(user, shopper.product_ids[0], 1, {})
    assert cart, "the product is in the cart"
    faults.set("payment-v1", enabled=True, timeout_rate=0.0, error_rate=0.0, decline_rate=0.0)
    faults.set("payment-v1", **payment_fault)
    before = counts(scrape(stack)["cart"], "checkouts_total", ("result",))
    shopper.checkout(user)
    after = counts(scrape(stack)["cart"], "checkouts_total", ("result",))

    assert len(client.checkout_keys) == keys_sent and len(set(client.checkout_keys)) == 1
    assert stats.checkout_retries == keys_sent - 1
    assert sum(stats.checkouts.values()) == keys_sent
    assert delta(after, before) == Counter((result,) for result in results)
    assert shopper.view_cart(user) == cart, "a failed checkout leaves the cart as it was"
    client.close()


def test_loadgen_program_serves_metrics_prints_summaries_and_stops_on_sigterm(stack):
    metrics_port = free_ports(1)[0]
    process = start_loadgen(GATEWAY_URL=stack.urls["api-gateway"], LOADGEN_RPS="20", LOADGEN_CONCURRENCY="3",
                            LOADGEN_SUMMARY_EVERY_S="1", METRICS_PORT=str(metrics_port))
    try:
        out = LineReader(process.stdout)
        out.wait_for(lambda e: e.get("event") == "ready", 20)
        out.wait_for(lambda e: e.get("event") == "summary" and not e["summary"]["final"], 10)
        page = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        names = {family.name for family in text_string_to_metric_families(page)}
        assert {name.removesuffix("_total") for name in METRIC_NAMES} <= names
        scraped = sum(v for _, v in samples(page, "loadgen_requests_total"))
        assert scraped > 0
        assert samples(page, "loadgen_target_rps")[0][1] == 20

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=25) == 0, process.stderr.read()
        out.thread.join(5)
        final = out.wait_for(lambda e: e.get("event") == "summary" and e["summary"]["final"], 1)
        assert final["summary"]["requests"] >= scraped
        assert "received SIGTERM" in " ".join(out.lines)
        assert process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_loadgen_waits_for_the_gateway_and_stops_cleanly_while_waiting():
    nothing_there = free_ports(1)[0]
    process = start_loadgen(GATEWAY_URL=f"http://127.0.0.1:{nothing_there}", METRICS_PORT="0")
    try:
        out = LineReader(process.stdout)
        waiting = out.wait_for(lambda e: e.get("event") == "waiting", 15)
        assert f"waiting for the gateway: GET http://127.0.0.1:{nothing_there}/ready" in waiting["msg"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        out.thread.join(5)
        final = out.wait_for(lambda e: e.get("event") == "summary", 1)
        assert final["summary"]["requests"] == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("variable, value", [("LOADGEN_RPS", "-1"), ("LOADGEN_CONCURRENCY", "many"),
                                             ("GATEWAY_URL", "api-gateway:5000"), ("METRICS_PORT", "70000")])
def test_loadgen_refuses_a_bad_setting_with_one_line(variable, value):
    result = subprocess.run([sys.executable, "-m", "loadgen"], cwd=LOADGEN_DIR, env=loadgen_env(**{variable: value}),
                            capture_output=True, text=True, timeout=20)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("loadgen: ") and variable in lines[0], result.stderr
    assert result.stdout == ""


def test_pacer_holds_the_rate_over_all_threads_without_bursting_after_a_pause():
    stop = threading.Event()
    pacer = Pacer(rate=100, stop=stop)
    started = time.monotonic()

    def take(n: int) -> None:
        for _ in range(n):
            assert pacer.wait_turn()

    threads = [threading.Thread(target=take, args=(15,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert 0.55 <= elapsed <= 0.9, elapsed  # 60 turns at 100/s: the first is immediate, the last at 0.59 s

    time.sleep(0.3)  # nobody asked for 30 turns' worth of time: that must not be paid out as a burst
    started = time.monotonic()
    take(10)
    assert time.monotonic() - started >= 0.08

    stop.set()
    assert pacer.wait_turn() is False


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50.0, 95.0, 99.0)
    assert percentile([7.0], 0.99) == 7.0
    assert percentile([], 0.5) is None
