"""Checks through the gateway, in both modes: health, catalog, cart, an idempotent checkout, GET success."""
from __future__ import annotations

import concurrent.futures
import math
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .client import Reply, Shop, http, ms, new_user, quantity_in, payment_version
from .results import FAIL, PASS, SKIP, Check, fmt_counter, retries
from .settings import (CHECKOUT_ATTEMPTS, CHECKOUT_ROUNDS, CHECKOUT_TIMEOUT_S, CONCURRENCY, CONCURRENT_PURCHASES,
                       GET_ATTEMPTS, HEALTH_TIMEOUT_S, MESH_GET_SUCCESS_MIN, PAYMENT_FAILURES)


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

