#!/usr/bin/env python3
"""The checks behind ./quick-test.sh: does the shop work, and what is the mesh doing?

Standard library only, on purpose: learners run this with the system python3 against a cluster, with no virtualenv.
Every check ends PASS, FAIL or SKIP with a reason and the measured figures. The client retries what a user would
retry (a GET after a 5xx, a checkout with the same Idempotency-Key after a decline or a timeout) and counts those
retries, so the run passes with the seed's default faults on and still shows them.

Run it through ./quick-test.sh, which checks the prerequisites and, in cluster mode, opens (and closes) the
port-forwards this script is given as URLs.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import math
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

# Names and ports from docs/architecture.md.
DEFAULT_URL = "http://localhost:5000"
NAMESPACE = "e-commerce"
LOCAL_SERVICE_PORTS = {
    "api-gateway": 5000,
    "catalog": 5001,
    "cart": 5002,
    "payment-v1": 5003,
    "payment-v2": 5013,
    "notification": 5004,
}
# (pod label app, pod label version or None) of every workload that must be ready in the cluster.
CLUSTER_WORKLOADS = [
    ("api-gateway", None),
    ("catalog-service", None),
    ("cart-service", None),
    ("payment-service", "v1"),
    ("payment-service", "v2"),
    ("notification-service", None),
    ("redis", None),
]
# Workloads whose /metrics our Prometheus must scrape (pod label app).
SCRAPED_APPS = ["api-gateway", "catalog-service", "cart-service", "payment-service", "notification-service"]
MESH_PROXY_CONTAINERS = {"istio": "istio-proxy", "linkerd": "linkerd-proxy"}

CANARY_V2_SHARE = 0.05  # the 95/5 split of both meshes' overlays
CANARY_SIGMAS = 3.0  # tolerance: 3 standard deviations of a binomial over the measured calls
# With mesh retries on GET (3 attempts against catalog's 5% injected errors) about 1 in 8000 requests fails;
# without retries 1 in 20 does. 99% separates the two with room to spare.
MESH_GET_SUCCESS_MIN = 0.99

GET_ATTEMPTS = 4  # a user reloads a failed page a few times
CHECKOUT_ATTEMPTS = 8  # ~20% of attempts fail (declines, timeouts, catalog errors): 8 in a row ~ 1 in 400000
# The checkout check buys in rounds until one purchase met a decline or timeout: with 15% of payments failing,
# 15 rounds of 4 purchases see one with a probability of 99.99%; the rounds stop at the first one.
CONCURRENT_PURCHASES = 4
PAYMENT_FAILURES = {"402", "503", "504", "no-answer"}  # first word of an attempt: declined, unavailable, timed out
CHECKOUT_ROUNDS = 15
CHECKOUT_TIMEOUT_S = 15.0  # above the gateway's CHECKOUT_TIMEOUT_S (12 s)
REQUEST_TIMEOUT_S = 6.0  # above the gateway's UPSTREAM_TIMEOUT_S (5 s)
HEALTH_TIMEOUT_S = 3.0
CONCURRENCY = 8
PROMETHEUS_SETTLE_S = 45.0  # two scrape intervals plus discovery, for a run right after a deploy
CURL_IMAGE = "curlimages/curl:8.11.1"
CURL_POD_LABEL = "quicktest-curl"  # name prefix and app label of the throwaway authorization pod

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


# ---------------------------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Check:
    name: str
    status: str
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout holds only the table (or the JSON)."""
    print(f"  .. {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------
# HTTP (urllib; proxies from the environment are ignored: every target is local or port-forwarded)
# ---------------------------------------------------------------------------------------------------------------
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Reply:
    status: int | None  # None: no HTTP answer at all (refused, timed out, reset)
    headers: dict[str, str]
    body: Any
    error: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        if self.status is None:
            return self.error
        detail = self.body.get("error") if isinstance(self.body, dict) else None
        return f"HTTP {self.status}" + (f" ({detail})" if detail else "")


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = REQUEST_TIMEOUT_S) -> Reply:
    data = None
    all_headers = {"Accept": "application/json", "User-Agent": "quick-test"}
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    started = time.monotonic()
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status, raw, resp_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as err:
        status, raw, resp_headers = err.code, err.read(), err.headers
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, ConnectionRefusedError):
            text = f"connection refused at {_netloc(url)}"
        elif isinstance(reason, TimeoutError) or "timed out" in str(reason):
            text = f"no answer from {_netloc(url)} within {timeout:g} s"
        else:
            text = f"{_netloc(url)}: {reason}"
        return Reply(None, {}, None, text, time.monotonic() - started)
    seconds = time.monotonic() - started
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")[:200]
    return Reply(status, {k.lower(): v for k, v in resp_headers.items()}, parsed, "", seconds)


def _netloc(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def ms(seconds: float) -> int:
    return round(seconds * 1000)


class Shop:
    """The gateway's public API as a user drives it: retries GETs on 5xx, counts every retry by purpose."""

    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")
        self.retries: Counter[str] = Counter()
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return self.base + path

    def call(self, purpose: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             attempts: int = 1, timeout: float = REQUEST_TIMEOUT_S) -> Reply:
        """One request, repeated up to `attempts` times while the answer is a 5xx or no answer at all."""
        reply = http(method, self.url(path), body, headers, timeout)
        for attempt in range(1, attempts):
            if reply.status is not None and reply.status < 500:
                break
            self.count_retry(purpose)
            time.sleep(0.05 * 2**attempt)
            reply = http(method, self.url(path), body, headers, timeout)
        return reply

    def get(self, purpose: str, path: str) -> Reply:
        return self.call(purpose, "GET", path, attempts=GET_ATTEMPTS)

    def count_retry(self, purpose: str) -> None:
        with self._lock:
            self.retries[purpose] += 1

    def add_to_cart(self, user: str, product_id: str, quantity: int) -> Reply:
        """Add once. Adding is not idempotent, so after a 5xx look at the cart before trying again (as a user would)."""
        path = f"/api/cart/{user}/add"
        reply = Reply(None, {}, None, "not tried", 0.0)
        for _ in range(GET_ATTEMPTS):
            reply = self.call("cart", "POST", path, {"product_id": product_id, "quantity": quantity})
            if reply.status is not None and reply.status < 500:
                return reply
            cart = self.get("cart", f"/api/cart/{user}")
            if cart.ok and quantity_in(cart.body, product_id) == quantity:
                return cart
            self.count_retry("cart")
        return reply


def retries(count: int) -> str:
    return f"{count} {'retry' if count == 1 else 'retries'}"


def quantity_in(cart: Any, product_id: str) -> int:
    if not isinstance(cart, dict):
        return 0
    return sum(int(item.get("quantity", 0)) for item in cart.get("items", [])
               if str(item.get("product_id")) == product_id)


def payment_version(reply: Reply) -> str | None:
    """Which payment version answered: the X-Payment-Version header, else the body's payment.version."""
    version = reply.headers.get("x-payment-version")
    if not version and isinstance(reply.body, dict) and isinstance(reply.body.get("payment"), dict):
        version = reply.body["payment"].get("version")
    return version or None


def new_user(tag: str) -> str:
    return f"qt-{tag}-{secrets.token_hex(4)}"


# ---------------------------------------------------------------------------------------------------------------
# Checks through the gateway (both modes)
# ---------------------------------------------------------------------------------------------------------------
def check_service_health(name: str, base_url: str) -> Check:
    figures: dict[str, Any] = {"url": base_url}
    problems = []
    for probe in ("health", "ready"):
        reply = http("GET", f"{base_url.rstrip('/')}/{probe}", timeout=HEALTH_TIMEOUT_S)
        figures[f"{probe}_status"] = reply.status
        figures[f"{probe}_ms"] = ms(reply.seconds)
        if not reply.ok:
            problems.append(f"/{probe}: {reply.describe()}")
    if problems:
        return Check(f"health {name}", FAIL, "; ".join(problems), figures)
    return Check(f"health {name}", PASS,
                 f"/health and /ready answer 200 ({figures['health_ms']} ms, {figures['ready_ms']} ms) at {base_url}",
                 figures)


def check_catalog(shop: Shop) -> Check:
    listing = shop.get("catalog", "/api/products")
    figures: dict[str, Any] = {"status": listing.status, "ms": ms(listing.seconds)}
    if not listing.ok or not isinstance(listing.body, dict):
        return Check("catalog via gateway", FAIL, f"GET /api/products: {listing.describe()}", figures)
    products = listing.body.get("products") or []
    figures["products"] = len(products)
    if not products or listing.body.get("count") != len(products):
        return Check("catalog via gateway", FAIL,
                     f"GET /api/products listed {len(products)} products, count says {listing.body.get('count')}",
                     figures)
    first_id = str(products[0].get("id"))
    single = shop.get("catalog", f"/api/products/{first_id}")
    figures["retries"] = shop.retries["catalog"]
    if not single.ok or not isinstance(single.body, dict) or str(single.body.get("id")) != first_id:
        return Check("catalog via gateway", FAIL, f"GET /api/products/{first_id}: {single.describe()}", figures)
    return Check("catalog via gateway", PASS,
                 f"{len(products)} products; product {first_id} by id; {retries(figures['retries'])}", figures)


def first_product(shop: Shop) -> str | None:
    listing = shop.get("catalog", "/api/products")
    if listing.ok and isinstance(listing.body, dict) and listing.body.get("products"):
        return str(listing.body["products"][0]["id"])
    return None


def check_cart(shop: Shop) -> Check:
    name = "cart add/read/remove"
    product = first_product(shop)
    if product is None:
        return Check(name, FAIL, "no product to put in the cart (catalog failed)")
    user = new_user("cart")
    added = shop.add_to_cart(user, product, 2)
    if not added.ok or quantity_in(added.body, product) != 2:
        return Check(name, FAIL, f"add 2 x product {product}: {added.describe()}", {"user": user})
    read = shop.get("cart", f"/api/cart/{user}")
    if not read.ok or quantity_in(read.body, product) != 2:
        return Check(name, FAIL, f"read cart after add: {read.describe()}, quantity {quantity_in(read.body, product)}",
                     {"user": user})
    retries_before_remove = shop.retries["cart"]
    removed = shop.call("cart", "DELETE", f"/api/cart/{user}/items/{product}", attempts=GET_ATTEMPTS)
    # A 404 after this remove's own retried 5xx means its first attempt removed it (earlier retries say nothing).
    if not (removed.ok or (removed.status == 404 and shop.retries["cart"] > retries_before_remove)):
        return Check(name, FAIL, f"remove product {product}: {removed.describe()}", {"user": user})
    after = shop.get("cart", f"/api/cart/{user}")
    if not after.ok or quantity_in(after.body, product) != 0:
        return Check(name, FAIL, f"read cart after remove: {after.describe()}, "
                                 f"quantity {quantity_in(after.body, product)}",
                     {"user": user})
    figures = {"user": user, "product_id": product, "retries": shop.retries["cart"]}
    return Check(name, PASS, f"added 2 x product {product}, read 2, removed, read 0; {retries(figures['retries'])}",
                 figures)


@dataclass
class CheckoutRun:
    attempts: list[str] = field(default_factory=list)  # one outcome per attempt: "201 v1", "402 v2", "504", ...
    versions: list[str] = field(default_factory=list)  # payment version of every attempt payment answered
    order: dict[str, Any] | None = None
    last: Reply | None = None


def checkout_until_paid(shop: Shop, user: str, key: str) -> CheckoutRun:
    """Check out, repeating with the same Idempotency-Key after a decline or a timeout, as the storefront does."""
    run = CheckoutRun()
    path = f"/api/cart/{user}/checkout"
    for attempt in range(CHECKOUT_ATTEMPTS):
        if attempt:
            shop.count_retry("checkout")
            time.sleep(0.2)
        reply = http("POST", shop.url(path), None, {"Idempotency-Key": key}, CHECKOUT_TIMEOUT_S)
        run.last = reply
        version = payment_version(reply)
        if version:
            run.versions.append(version)
        run.attempts.append(f"{reply.status or 'no-answer'}" + (f" {version}" if version else ""))
        if reply.status in (200, 201) and isinstance(reply.body, dict):
            run.order = reply.body
            return run
        # 402 declined, 5xx timeout/unavailable, 409 a concurrent attempt with this key: all worth repeating.
        if reply.status is not None and reply.status not in (402, 409) and reply.status < 500:
            return run
    return run


def orders_with_key(shop: Shop, user: str, key: str) -> tuple[Reply, int]:
    reply = shop.get("checkout", f"/api/users/{user}/orders")
    orders = reply.body.get("orders", []) if reply.ok and isinstance(reply.body, dict) else []
    return reply, sum(1 for order in orders if order.get("idempotency_key") == key)


@dataclass
class Purchase:
    """One user's checkout, repeated with one Idempotency-Key until paid, then verified."""
    user: str
    key: str
    run: CheckoutRun
    problem: str = ""  # empty when the order is paid, replayed and stored once
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def retried(self) -> bool:
        return len(self.run.attempts) > 1

    @property
    def payment_failed_first(self) -> bool:
        """Repeated after a decline or a payment timeout: the case that could charge twice."""
        return any(a.split()[0] in PAYMENT_FAILURES for a in self.run.attempts[:-1])


def purchase(shop: Shop, product: str) -> Purchase:
    user, key = new_user("buy"), f"qt-{secrets.token_hex(8)}"
    added = shop.add_to_cart(user, product, 1)
    if not added.ok:
        return Purchase(user, key, CheckoutRun(), f"could not fill the cart of {user}: {added.describe()}")
    run = checkout_until_paid(shop, user, key)
    done = Purchase(user, key, run, figures={"user": user, "idempotency_key": key, "attempts": run.attempts})
    if run.order is None:
        done.problem = f"{user}: no order after {len(run.attempts)} attempts ({', '.join(run.attempts)})" + (
            f"; last: {run.last.describe()}" if run.last is not None else "")
        return done
    order_id = run.order.get("order_id")
    done.figures["order_id"] = order_id
    replay = http("POST", shop.url(f"/api/cart/{user}/checkout"), None, {"Idempotency-Key": key}, CHECKOUT_TIMEOUT_S)
    replay_id = replay.body.get("order_id") if isinstance(replay.body, dict) else None
    done.figures["replay"] = {"status": replay.status, "order_id": replay_id,
                              "idempotent_replayed": replay.headers.get("idempotent-replayed")}
    listing, same_key = orders_with_key(shop, user, key)
    done.figures["orders_with_key"] = same_key
    if replay.status != 200 or replay_id != order_id or replay.headers.get("idempotent-replayed") != "true":
        done.problem = (f"{user}: repeating the checkout with the same Idempotency-Key gave {replay.describe()}, "
                        f"order {replay_id}, Idempotent-Replayed {replay.headers.get('idempotent-replayed')}, "
                        f"instead of 200 with {order_id} and Idempotent-Replayed: true")
    elif not listing.ok or same_key != 1:
        done.problem = (f"{user}: {same_key} orders for Idempotency-Key {key} in /api/users/{user}/orders "
                        f"({listing.describe()}); expected exactly 1")
    return done


def check_checkout(shop: Shop) -> tuple[Check, list[str]]:
    """Buy until one purchase needed a repeat after a decline or timeout (the interesting case), at most
    CHECKOUT_ROUNDS rounds of CONCURRENT_PURCHASES. Returns the payment versions that answered (for the local
    canary row)."""
    name = "checkout (idempotent retry)"
    product = first_product(shop)
    if product is None:
        return Check(name, FAIL, "no product to buy (catalog failed)"), []
    started = time.monotonic()
    purchases: list[Purchase] = []
    with concurrent.futures.ThreadPoolExecutor(CONCURRENT_PURCHASES) as pool:
        for _ in range(CHECKOUT_ROUNDS):
            purchases += pool.map(lambda _: purchase(shop, product), range(CONCURRENT_PURCHASES))
            if any(p.problem or p.payment_failed_first for p in purchases):
                break
    versions = [v for p in purchases for v in p.run.versions]
    attempts = Counter(a.split()[0] for p in purchases for a in p.run.attempts)
    figures: dict[str, Any] = {
        "purchases": len(purchases), "seconds": round(time.monotonic() - started, 1),
        "attempt_statuses": dict(attempts), "retried": [p.figures for p in purchases if p.retried],
    }
    failed = [p for p in purchases if p.problem]
    if failed:
        figures["failed"] = [p.figures for p in failed]
        return Check(name, FAIL, "; ".join(p.problem for p in failed), figures), versions
    summary = (f"{len(purchases)} orders paid, each repeat replayed the same order, 1 order per key "
               f"(attempt statuses {fmt_counter(attempts)}; {figures['seconds']} s)")
    retried = sorted((p for p in purchases if p.retried), key=lambda p: not p.payment_failed_first)
    if not retried or not retried[0].payment_failed_first:
        return Check(name, PASS, summary + "; no payment decline or timeout came up (payment faults off?), so no "
                                           "repeat after one was needed", figures), versions
    shown = retried[0]
    return Check(name, PASS, f"{shown.figures['order_id']} paid after {' -> '.join(shown.run.attempts)} with one "
                             f"Idempotency-Key; " + summary, figures), versions


def measure_get_success(shop: Shop, samples: int) -> tuple[int, int, Counter[str]]:
    """`samples` single-attempt GETs of the catalog: the raw success rate a client sees."""
    def one(_: int) -> Reply:
        return http("GET", shop.url("/api/products"))

    outcomes: Counter[str] = Counter()
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        for reply in pool.map(one, range(samples)):
            outcomes[str(reply.status) if reply.status else "no answer"] += 1
    ok = sum(count for status, count in outcomes.items() if status.startswith("2"))
    return ok, samples, outcomes


def check_get_success(shop: Shop, samples: int, mesh: str | None) -> Check:
    name = "GET success with faults"
    ok, total, outcomes = measure_get_success(shop, samples)
    rate = ok / total if total else 0.0
    figures = {"samples": total, "ok": ok, "success_rate": round(rate, 4), "outcomes": dict(outcomes),
               "threshold": MESH_GET_SUCCESS_MIN}
    measured = f"{ok}/{total} = {rate:.1%} of single-attempt GET /api/products succeeded ({fmt_counter(outcomes)})"
    if mesh is None:
        return Check(name, SKIP, f"{measured}; no mesh retries locally, so catalog's injected errors reach the client "
                                 f"(a mesh must lift this to >= {MESH_GET_SUCCESS_MIN:.0%})", figures)
    allowed_failures = max(1, math.floor((1 - MESH_GET_SUCCESS_MIN) * total))
    if total - ok > allowed_failures:
        return Check(name, FAIL, f"{measured}; with {mesh} retrying GETs at least {MESH_GET_SUCCESS_MIN:.0%} expected "
                                 f"(are the GET retries of the overlay applied?)", figures)
    return Check(name, PASS, f"{measured}; {mesh} retries hide catalog's injected errors "
                             f"(>= {MESH_GET_SUCCESS_MIN:.0%} expected)", figures)


def fmt_counter(counter: Counter[str]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counter.items()))


# ---------------------------------------------------------------------------------------------------------------
# Canary
# ---------------------------------------------------------------------------------------------------------------
def canary_tolerance(calls: int, share: float = CANARY_V2_SHARE, sigmas: float = CANARY_SIGMAS) -> float:
    """Half-width of the accepted band of the v2 share: `sigmas` standard deviations of a binomial proportion."""
    return sigmas * math.sqrt(share * (1 - share) / calls) if calls else 1.0


def judge_canary(v1: int, v2: int) -> tuple[str, str, dict[str, Any]]:
    calls = v1 + v2
    tolerance = canary_tolerance(calls)
    low, high = max(0.0, CANARY_V2_SHARE - tolerance), min(1.0, CANARY_V2_SHARE + tolerance)
    share = v2 / calls if calls else 0.0
    figures = {"v1": v1, "v2": v2, "calls": calls, "v2_share": round(share, 4), "expected_v2_share": CANARY_V2_SHARE,
               "tolerance": round(tolerance, 4), "sigmas": CANARY_SIGMAS, "accepted": [round(low, 4), round(high, 4)]}
    text = (f"v1 {v1}, v2 {v2} of {calls} payment calls: v2 {share:.1%}, expected {CANARY_V2_SHARE:.0%} "
            f"+/- {tolerance:.1%} ({CANARY_SIGMAS:g} sd of a binomial over {calls})")
    if calls == 0:
        return FAIL, "no payment call reported its version (X-Payment-Version header or payment.version)", figures
    if low == 0.0:
        # The band reaches 0%: a cluster without any canary would pass too, so this count proves nothing.
        return SKIP, (f"too few payment calls with a version ({calls}); rerun with -n {canary_samples_needed()} "
                      f"or more ({text})"), figures
    return (PASS if low <= share <= high else FAIL), text, figures


def canary_samples_needed(share: float = CANARY_V2_SHARE, sigmas: float = CANARY_SIGMAS) -> int:
    """Calls from which the band's lower bound is above 0% (172 for 5% and 3 sd), rounded up to a hundred with
    room for the checkouts that reach no payment answer (up to ~20% with the seed's faults and no retries)."""
    calls = math.floor(sigmas ** 2 * (1 - share) / share) + 1
    return math.ceil(calls * 1.3 / 100) * 100


def sample_payment_versions(shop: Shop, samples: int, product: str) -> tuple[Counter[str], int]:
    """`samples` checkouts by fresh users, one payment call each; declines name their version too."""
    def one(_: int) -> str | None:
        user = new_user("canary")
        if not shop.add_to_cart(user, product, 1).ok:
            return None
        reply = http("POST", shop.url(f"/api/cart/{user}/checkout"), None,
                     {"Idempotency-Key": f"qt-{secrets.token_hex(8)}"}, CHECKOUT_TIMEOUT_S)
        return payment_version(reply)

    versions: Counter[str] = Counter()
    unknown = 0
    with concurrent.futures.ThreadPoolExecutor(CONCURRENCY) as pool:
        for version in pool.map(one, range(samples)):
            if version:
                versions[version] += 1
            else:
                unknown += 1
    return versions, unknown


def check_canary(shop: Shop, samples: int, mesh: str | None, local_versions: list[str]) -> Check:
    name = "canary split 95/5"
    if mesh is None:
        seen = Counter(local_versions)
        return Check(name, SKIP, "no mesh routes locally: the cart calls the one payment version at PAYMENT_URL"
                                 + (f" (this run's checkouts: {fmt_counter(seen)})" if seen else ""),
                     {"versions_seen": dict(seen)})
    product = first_product(shop)
    if product is None:
        return Check(name, FAIL, "no product to buy (catalog failed)")
    versions, unknown = sample_payment_versions(shop, samples, product)
    status, text, figures = judge_canary(versions.get("v1", 0), versions.get("v2", 0))
    figures["without_version"] = unknown
    if unknown:
        text += f"; {unknown} checkouts that reached no payment answer (timeouts, catalog errors) not counted"
    return Check(name, status, text, figures)


# ---------------------------------------------------------------------------------------------------------------
# Cluster-only checks (kubectl, istioctl, linkerd, Prometheus)
# ---------------------------------------------------------------------------------------------------------------
class Kube:
    def __init__(self, kubectl: str, namespace: str, dry_run: bool = False):
        self.kubectl = kubectl
        self.namespace = namespace
        self.dry_run = dry_run

    def read(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A read-only kubectl call."""
        return _command([self.kubectl, "--request-timeout=15s", "-n", self.namespace, *args], timeout)

    def change(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        """Every kubectl call that changes the cluster goes through here, so --dry-run only prints it."""
        command = [self.kubectl, "-n", self.namespace, *args]
        if self.dry_run:
            print(f"[dry-run] {' '.join(command)}")
            return subprocess.CompletedProcess(command, 0, "", "")
        progress("+ " + " ".join(command))
        return _command(command, timeout)


def _command(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return subprocess.CompletedProcess(command, 127, "", f"{command[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, 124, "",
                                           f"{' '.join(command[:3])}... timed out after {timeout:g} s")


def first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def check_pods(kube: Kube, mesh: str | None) -> list[Check]:
    listing = kube.read("get", "pods", "-o", "json")
    if listing.returncode != 0:
        return [Check("pods ready", FAIL, f"kubectl get pods -n {kube.namespace}: {first_line(listing.stderr)}")]
    pods = [p for p in json.loads(listing.stdout).get("items", []) if not p["metadata"].get("deletionTimestamp")]
    checks = []
    proxy = MESH_PROXY_CONTAINERS.get(mesh or "")
    for app, version in CLUSTER_WORKLOADS:
        name = f"pods {app}" + (f" {version}" if version else "")
        mine = [p for p in pods if p["metadata"].get("labels", {}).get("app") == app
                and (version is None or p["metadata"].get("labels", {}).get("version") == version)]
        ready = [p for p in mine if _pod_ready(p)]
        restarts = sum(c.get("restartCount", 0) for p in mine for c in p.get("status", {}).get("containerStatuses", []))
        figures: dict[str, Any] = {"ready": len(ready), "pods": len(mine), "restarts": restarts}
        if not mine:
            checks.append(Check(name, FAIL, f"no pod with label app={app}" + (f",version={version}" if version else "")
                                + f" in namespace {kube.namespace}", figures))
            continue
        if len(ready) < len(mine):
            waiting = [_pod_problem(p) for p in mine if not _pod_ready(p)]
            checks.append(Check(name, FAIL, f"{len(ready)}/{len(mine)} ready: {'; '.join(waiting)}", figures))
            continue
        text = f"{len(ready)}/{len(mine)} ready, {restarts} restarts"
        if proxy:
            without = [p["metadata"]["name"] for p in mine if proxy not in _container_names(p)]
            figures["proxy"] = proxy
            if without:
                checks.append(Check(name, FAIL, f"{text}, but no {proxy} in {', '.join(without)}: restart the "
                                                f"Deployment after enabling injection", figures))
                continue
            text += f", {proxy} injected"
        checks.append(Check(name, PASS, text, figures))
    return checks


def _pod_ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _pod_problem(pod: dict[str, Any]) -> str:
    for status in pod.get("status", {}).get("containerStatuses", []):
        waiting = status.get("state", {}).get("waiting")
        if waiting:
            return f"{pod['metadata']['name']} {waiting.get('reason', 'waiting')}"
    return f"{pod['metadata']['name']} {pod.get('status', {}).get('phase', 'not ready')}"


def _container_names(pod: dict[str, Any]) -> set[str]:
    spec = pod.get("spec", {})
    return {c["name"] for c in spec.get("containers", []) + spec.get("initContainers", [])}


# The curl pod is meshed, so a denial comes from its peer's proxy: Istio answers HTTP 403 (RBAC: access denied),
# Linkerd's proxy 403 too, or it closes the connection. curl's exits for a connection that was closed or reset:
CURL_REFUSED = {52: "empty reply", 56: "connection reset"}
# ... and those that prove nothing about a policy: a slow or absent payment is not a denial.
CURL_INCONCLUSIVE = {7: "connection refused (is payment-service running?)", 28: "no answer within 5 s"}


def judge_authorization_probe(curl_exit: int, http_status: str) -> tuple[str, str]:
    """(outcome, text) of the throwaway pod's POST to payment: outcome "refused", "allowed" or "inconclusive"."""
    if curl_exit == 0 and http_status == "403":
        return "refused", "HTTP 403"
    if curl_exit in CURL_REFUSED:
        return "refused", CURL_REFUSED[curl_exit]
    if curl_exit == 0:
        return "allowed", f"HTTP {http_status}"
    if curl_exit in CURL_INCONCLUSIVE:
        return "inconclusive", CURL_INCONCLUSIVE[curl_exit]
    if curl_exit == 6:
        return "inconclusive", "could not resolve payment-service (cluster DNS?)"
    return "inconclusive", f"curl failed (exit {curl_exit})"


def check_authorization(kube: Kube, mesh: str | None, image: str, gateway_check: Check) -> Check:
    name = "authorization"
    if mesh is None:
        return Check(name, SKIP, "no mesh policy locally: any process on this machine may call payment")
    pod = f"{CURL_POD_LABEL}-{secrets.token_hex(3)}"
    # Leftovers of a run that was killed before it could clean up (safe to rerun).
    kube.change("delete", "pod", "-l", f"app={CURL_POD_LABEL}", "--ignore-not-found", "--wait=false")
    created = kube.change("run", pod, f"--image={image}", "--restart=Never", f"--labels=app={CURL_POD_LABEL}",
                          "--command", "--", "sleep", "300")
    try:
        if created.returncode != 0:
            return Check(name, SKIP, f"could not start a throwaway curl pod: {first_line(created.stderr)}")
        waited = kube.change("wait", "--for=condition=Ready", f"pod/{pod}", "--timeout=90s", timeout=100)
        if waited.returncode != 0:
            return Check(name, SKIP, f"throwaway pod {pod} ({image}) not ready within 90 s: "
                                     f"{first_line(waited.stderr)} (is the image pullable?)")
        # An invalid body: if a policy wrongly lets us through, payment answers 400 and charges nothing.
        probe = kube.read("exec", pod, "-c", pod, "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                          "-m", "5", "-X", "POST", "-H", "Content-Type: application/json", "-d", "{}",
                          "http://payment-service:5003/payments", timeout=30)
    finally:
        kube.change("delete", "pod", pod, "--ignore-not-found", "--wait=false")
    code = probe.stdout.strip()[-3:]
    figures: dict[str, Any] = {"pod": pod, "curl_exit": probe.returncode, "http_status": code,
                               "gateway": gateway_check.status}
    outcome, refused = judge_authorization_probe(probe.returncode, code)
    if outcome == "allowed":
        return Check(name, FAIL, f"payment answered {refused} to pod {pod} (not the cart): the "
                                 f"{mesh} authorization policy does not protect payment", figures)
    if outcome == "inconclusive":
        detail = first_line(probe.stderr) or first_line(probe.stdout)
        return Check(name, SKIP, f"inconclusive: pod {pod} got no answer from payment: {refused}"
                                 + (f" ({detail})" if detail else ""), figures)
    if gateway_check.status != PASS:
        return Check(name, FAIL, f"payment refused pod {pod} ({refused}), but the gateway is not reachable: "
                                 f"{gateway_check.reason}", figures)
    return Check(name, PASS, f"payment refused throwaway pod {pod} ({refused}); gateway reachable; pod deleted",
                 figures)


class Prometheus:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def get(self, path: str, **params: str) -> tuple[Any, str]:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        reply = http("GET", f"{self.url}{path}{query}", timeout=10)
        if not reply.ok or not isinstance(reply.body, dict) or reply.body.get("status") != "success":
            return None, f"Prometheus at {self.url}: {reply.describe()}"
        return reply.body.get("data"), ""

    def query(self, promql: str) -> tuple[list[dict[str, Any]] | None, str]:
        data, error = self.get("/api/v1/query", query=promql)
        return (data.get("result", []) if data else None), error


def check_mtls(kube: Kube, mesh: str | None, prometheus: Prometheus | None, tools: dict[str, str]) -> Check:
    name = "mTLS"
    if mesh is None:
        return Check(name, SKIP, "no mesh locally: services talk plain HTTP on loopback")
    if mesh == "istio":
        return _mtls_istio(kube, prometheus, tools.get("istioctl", "istioctl"))
    return _mtls_linkerd(kube, prometheus, tools.get("linkerd", "linkerd"))


def _mtls_istio(kube: Kube, prometheus: Prometheus | None, istioctl: str) -> Check:
    name, notes = "mTLS", []
    if prometheus:
        result, error = prometheus.query(
            'sum by (connection_security_policy) (increase(istio_requests_total{reporter="destination",'
            f'destination_workload_namespace="{kube.namespace}"}}[10m]))')
        by_policy = {r["metric"].get("connection_security_policy", ""): float(r["value"][1]) for r in result or []}
        if by_policy:
            figures = {"source": "istio_requests_total", "requests_10m": {k: round(v) for k, v in by_policy.items()}}
            mutual = by_policy.get("mutual_tls", 0.0)
            plain = sum(v for k, v in by_policy.items() if k != "mutual_tls")
            text = f"istio_requests_total last 10 min: {round(mutual)} mutual_tls, {round(plain)} other"
            if mutual > 0 and plain < 0.5:
                return Check(name, PASS, text, figures)
            return Check(name, FAIL, text + ": some requests into the namespace were not mTLS", figures)
        notes.append(error or "no istio_requests_total yet")
    pods = kube.read("get", "pods", "-l", "app=payment-service", "-o", "jsonpath={.items[0].metadata.name}")
    described = _command([istioctl, "x", "describe", "pod", pods.stdout.strip(), "-n", kube.namespace], 60)
    mode = re.search(r"Workload mTLS mode:\s*(\S+)", described.stdout)
    if described.returncode == 0 and mode:
        figures = {"source": "istioctl x describe", "pod": pods.stdout.strip(), "mode": mode.group(1)}
        text = f"istioctl x describe pod {pods.stdout.strip()}: workload mTLS mode {mode.group(1)}"
        return Check(name, PASS if mode.group(1) == "STRICT" else FAIL, text, figures)
    notes.append(first_line(described.stderr) or "istioctl x describe showed no mTLS mode")
    return Check(name, SKIP, "could not observe mTLS: " + "; ".join(notes))


def _mtls_linkerd(kube: Kube, prometheus: Prometheus | None, linkerd: str) -> Check:
    name, notes = "mTLS", []
    edges = _command([linkerd, "viz", "edges", "deployment", "-n", kube.namespace, "-o", "json"], 60)
    if edges.returncode == 0:
        ours = [e for e in json.loads(edges.stdout or "[]") if _is_app_workload(e.get("dst", ""))]
        if ours:
            plain = [f"{e.get('src')}->{e.get('dst')} ({e.get('no_tls_reason')})"
                     for e in ours if e.get("no_tls_reason")]
            figures = {"source": "linkerd viz edges", "edges": len(ours), "without_tls": plain}
            if plain:
                return Check(name, FAIL, f"{len(plain)} of {len(ours)} edges without mTLS: {', '.join(plain)}", figures)
            return Check(name, PASS, f"linkerd viz edges: all {len(ours)} edges into our deployments secured", figures)
        notes.append("linkerd viz edges listed no edge into our deployments yet")
    else:
        notes.append(first_line(edges.stderr) or "linkerd viz edges failed")
    if prometheus:
        result, error = prometheus.query(
            f'sum by (tls) (increase(request_total{{direction="outbound",namespace="{kube.namespace}",'
            f'dst_namespace="{kube.namespace}"}}[10m]))')
        by_tls = {r["metric"].get("tls", ""): float(r["value"][1]) for r in result or []}
        if by_tls:
            figures = {"source": "request_total tls label", "requests_10m": {k: round(v) for k, v in by_tls.items()}}
            secured, other = by_tls.get("true", 0.0), sum(v for k, v in by_tls.items() if k != "true")
            text = f"request_total last 10 min between our pods: {round(secured)} tls=true, {round(other)} other"
            return Check(name, PASS if secured > 0 and other < 0.5 else FAIL, text, figures)
        notes.append(error or "no request_total yet")
    return Check(name, SKIP, "could not observe mTLS: " + "; ".join(notes))


def _is_app_workload(name: str) -> bool:
    return any(name == app or name.startswith(app + "-") for app, _ in CLUSTER_WORKLOADS)


def check_prometheus_targets(prometheus: Prometheus | None, expected: dict[str, Callable[[dict[str, Any]], bool]],
                             why_missing: str, settle_s: float = 0.0) -> Check:
    """Every expected service has a target that is up. Right after a deploy Prometheus may not have discovered or
    scraped a new pod yet (no target, or health "unknown"): that is waited out for up to `settle_s`; "down" is not."""
    name = "Prometheus targets"
    if prometheus is None:
        return Check(name, SKIP, why_missing)
    deadline = time.monotonic() + settle_s
    while True:
        data, error = prometheus.get("/api/v1/targets", state="active")
        if data is None:
            return Check(name, FAIL, error)
        targets = data.get("activeTargets", [])
        figures: dict[str, Any] = {"url": prometheus.url, "targets": len(targets), "up": {}}
        missing, settling = [], False
        for service, matches in expected.items():
            mine = [t for t in targets if matches(t)]
            up = [t for t in mine if t.get("health") == "up"]
            figures["up"][service] = f"{len(up)}/{len(mine)}"
            if not up:
                settling = settling or all(t.get("health") == "unknown" for t in mine)
                last_error = next((t.get("lastError") for t in mine if t.get("lastError")), "")
                missing.append(f"{service} ({'no target' if not mine else 'down: ' + last_error})")
        if not missing:
            listed = ", ".join(f"{k} {v}" for k, v in figures["up"].items())
            return Check(name, PASS, f"{len(expected)} services up ({listed})", figures)
        if not settling or time.monotonic() >= deadline:
            return Check(name, FAIL, f"not scraped: {', '.join(missing)}", figures)
        time.sleep(5)


def cluster_target_matchers() -> dict[str, Callable[[dict[str, Any]], bool]]:
    """A target belongs to an app when one of its labels names it (app=..., pod=<app>-..., ...)."""
    def matcher(app: str) -> Callable[[dict[str, Any]], bool]:
        return lambda target: any(isinstance(v, str) and (v == app or v.startswith(app + "-"))
                                  for v in target.get("labels", {}).values())
    return {app: matcher(app) for app in SCRAPED_APPS}


def local_target_matchers(service_urls: dict[str, str]) -> dict[str, Callable[[dict[str, Any]], bool]]:
    """Locally a target belongs to a service when it scrapes the service's host:port."""
    def matcher(url: str) -> Callable[[dict[str, Any]], bool]:
        port = urllib.parse.urlsplit(url).port
        return lambda target: urllib.parse.urlsplit(target.get("scrapeUrl", "")).port == port
    return {name: matcher(url) for name, url in service_urls.items()}


# ---------------------------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------------------------
def parse_service_urls(text: str) -> dict[str, str]:
    urls = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, url = part.partition("=")
        if not sep or not url.startswith(("http://", "https://")):
            raise argparse.ArgumentTypeError(f"bad --service-urls entry '{part}': use name=http://host:port")
        urls[name.strip()] = url.strip()
    return urls


def default_service_urls(gateway_url: str) -> dict[str, str]:
    """The local ports of docs/architecture.md, on the gateway's host, when the gateway is on its own port 5000."""
    parts = urllib.parse.urlsplit(gateway_url)
    if parts.port != LOCAL_SERVICE_PORTS["api-gateway"]:
        return {"api-gateway": gateway_url}
    return {name: f"{parts.scheme}://{parts.hostname}:{port}" for name, port in LOCAL_SERVICE_PORTS.items()}


def guarded(name: str, check: Callable[[], Any]) -> Any:
    """A check that breaks (an unexpected answer from kubectl or Prometheus) becomes a FAIL row, not a traceback."""
    try:
        return check()
    except Exception as err:  # noqa: BLE001 - any error of one check must not hide the others
        return Check(name, FAIL, f"the check itself failed: {type(err).__name__}: {err}")


def run_checks(args: argparse.Namespace) -> list[Check]:
    mesh = args.mesh if args.mode == "cluster" and args.mesh != "none" else None
    shop = Shop(args.url)
    kube = Kube(args.kubectl, args.namespace)
    checks: list[Check] = []

    progress("health")
    if args.mode == "local":
        given = args.service_urls or default_service_urls(args.url)
        # The gateway is always the --url one, and comes first.
        service_urls = {"api-gateway": args.url, **{k: v for k, v in given.items() if k != "api-gateway"}}
        checks.extend(check_service_health(name, url) for name, url in service_urls.items())
        gateway = checks[0]
        if gateway.status == FAIL and "connection refused" in gateway.reason:
            gateway.reason += " (is the stack running? ./run-local.sh)"
        if len(service_urls) == 1:
            checks.append(Check("health other services", SKIP,
                                "not probed directly: the gateway is not on port 5000, pass --service-urls "
                                "name=url,... (they are exercised through the gateway below)"))
    else:
        service_urls = {}
        pods = guarded("pods ready", lambda: check_pods(kube, mesh))
        checks.extend(pods if isinstance(pods, list) else [pods])
        gateway = check_service_health("api-gateway", args.url)
        gateway.name = "gateway reachable"
        gateway.reason = gateway.reason.replace(f" at {args.url}", f" through {args.access}")
        gateway.figures["access"] = args.access
        checks.append(gateway)

    versions_seen: list[str] = []

    def checkout() -> Check:
        check, versions = check_checkout(shop)
        versions_seen.extend(versions)
        return check

    steps: list[tuple[str, Callable[[], Check]]] = [
        ("catalog via gateway", lambda: check_catalog(shop)),
        ("cart add/read/remove", lambda: check_cart(shop)),
        ("checkout (idempotent retry)", checkout),
        ("canary split 95/5", lambda: check_canary(shop, args.samples, mesh, versions_seen)),
        ("GET success with faults", lambda: check_get_success(shop, args.samples, mesh)),
    ]
    for name, step in steps:
        if gateway.status != PASS:
            checks.append(Check(name, SKIP, f"gateway not reachable at {args.url} (see above)"))
            continue
        progress(name)
        checks.append(guarded(name, step))

    progress("authorization, mTLS, Prometheus")
    checks.append(guarded("authorization", lambda: check_authorization(kube, mesh, args.curl_image, gateway)))
    mesh_prometheus_url = args.mesh_prometheus_url or args.prometheus_url
    mesh_prometheus = Prometheus(mesh_prometheus_url) if mesh_prometheus_url else None
    tools = {"istioctl": args.istioctl, "linkerd": args.linkerd}
    checks.append(guarded("mTLS", lambda: check_mtls(kube, mesh, mesh_prometheus, tools)))
    app_prometheus = Prometheus(args.prometheus_url) if args.prometheus_url else None
    if args.mode == "local":
        matchers, settle_s = local_target_matchers(service_urls), 0.0
        why_none = "no Prometheus given: pass --prometheus-url http://host:port to check its targets"
    else:
        matchers, settle_s = cluster_target_matchers(), PROMETHEUS_SETTLE_S
        why_none = ("no Prometheus Service found (monitoring/, e-commerce/ or the mesh's): apply monitoring/ or pass "
                    "--prometheus-url")
    checks.append(guarded("Prometheus targets",
                          lambda: check_prometheus_targets(app_prometheus, matchers, why_none, settle_s)))
    args.retries = dict(shop.retries)
    args.total_retries = sum(shop.retries.values())
    return checks


def print_plan(args: argparse.Namespace) -> None:
    """--dry-run: what a run would do; nothing is sent."""
    mesh = args.mesh if args.mode == "cluster" and args.mesh != "none" else None
    print(f"[dry-run] quick-test in {args.mode} mode against {args.url}" + (f" ({mesh})" if mesh else ""))
    print("[dry-run] would create test users qt-* with carts and orders through the gateway "
          f"({args.samples} GETs" + (f", {args.samples} checkouts" if mesh else "") + ")")
    if mesh:
        Kube(args.kubectl, args.namespace, dry_run=True).change(
            "run", "quicktest-curl-XXXXXX", f"--image={args.curl_image}", "--restart=Never", "--command", "--",
            "sleep", "300")
        Kube(args.kubectl, args.namespace, dry_run=True).change("delete", "pod", "quicktest-curl-XXXXXX",
                                                                "--ignore-not-found", "--wait=false")


def render_table(checks: list[Check], header: str, footer: str, colour: bool) -> str:
    colours = {PASS: "32", FAIL: "31", SKIP: "33"}
    width = max(len(c.name) for c in checks)
    lines = [header, "", f"{'CHECK':<{width}}  RESULT  REASON AND FIGURES"]
    for check in checks:
        status = f"\033[{colours[check.status]}m{check.status}\033[0m" if colour else check.status
        lines.append(f"{check.name:<{width}}  {status}    {check.reason}")
    lines += ["", footer]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quicktest.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["local", "cluster"], default="local")
    parser.add_argument("--url", default=DEFAULT_URL, help="gateway base URL (default %(default)s)")
    parser.add_argument("--service-urls", type=parse_service_urls, default=None,
                        help="local mode: name=url,... of the services to probe directly")
    parser.add_argument("--mesh", choices=["istio", "linkerd", "none"], default="none")
    parser.add_argument("--access", default="given URL", help="how the gateway is reached (shown in the table)")
    parser.add_argument("--namespace", default=NAMESPACE)
    parser.add_argument("-n", "--samples", type=int, default=canary_samples_needed(),
                        help=f"calls for the rate checks (default {canary_samples_needed()})")
    parser.add_argument("--prometheus-url", default=None, help="Prometheus that scrapes the app")
    parser.add_argument("--mesh-prometheus-url", default=None, help="Prometheus with the mesh's metrics")
    parser.add_argument("--kubectl", default=os.environ.get("KUBECTL", "kubectl"))
    parser.add_argument("--istioctl", default="istioctl")
    parser.add_argument("--linkerd", default="linkerd")
    parser.add_argument("--curl-image", default=CURL_IMAGE)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--no-color", action="store_true")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    if not args.url.startswith(("http://", "https://")):
        parser.error(f"--url {args.url} is not an http(s) URL")

    if args.dry_run:
        print_plan(args)
        return 0
    # SIGTERM (bash trap, CI timeout) unwinds like Ctrl-C, so the throwaway pod is still deleted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    started = time.monotonic()
    checks = run_checks(args)
    seconds = round(time.monotonic() - started, 1)
    counts = Counter(c.status for c in checks)
    mesh = args.mesh if args.mode == "cluster" else "none"
    if args.json:
        print(json.dumps({
            "mode": args.mode, "url": args.url, "mesh": mesh, "samples": args.samples, "seconds": seconds,
            "ok": counts[FAIL] == 0,
            "summary": {"pass": counts[PASS], "fail": counts[FAIL], "skip": counts[SKIP]},
            "retries": {"total": args.total_retries, "by_purpose": args.retries},
            "checks": [asdict(c) for c in checks],
        }, indent=2))
    else:
        where = "local stack" if args.mode == "local" else f"cluster namespace {args.namespace}, mesh {mesh}"
        header = f"quick-test: {where}, gateway {args.url} ({args.access}), {args.samples} samples"
        retries = fmt_counter(Counter(args.retries)) or "none"
        footer = (f"{counts[PASS]} PASS, {counts[FAIL]} FAIL, {counts[SKIP]} SKIP in {seconds} s; "
                  f"client retries: {args.total_retries} ({retries})")
        colour = sys.stdout.isatty() and not args.no_color and not os.environ.get("NO_COLOR")
        print(render_table(checks, header, footer, colour))
    return 1 if counts[FAIL] else 0


if __name__ == "__main__":
    sys.exit(main())
