"""Checkout: price the cart from the catalog, charge once per Idempotency-Key, store the order, notify.

Safety rules, in the order the code keeps them:
1. One checkout per (user, key) at a time: a Redis claim (SET NX). A concurrent repeat waits for the first to finish
   and answers with the same order.
2. One checkout per cart at a time: a second attempt with another key while one runs is refused (409), so two tabs
   cannot pay for the same items twice.
3. The amount comes from the catalog's current prices, never from the client.
4. Payment's Idempotency-Key is the order id, which is derived from (user, key): every attempt of one checkout asks
   payment for the same charge, and a repeat that reaches the same payment instance is answered from its ledger.
5. Only an approved payment changes the cart, in one Lua script together with the order. Declines, timeouts and
   unreachable payment leave the cart exactly as it was and free the key for a retry.
"""
from __future__ import annotations

import hashlib
import time
import uuid
from decimal import Decimal
from typing import Any

import redis

from shopkit import metrics
from shopkit.config import env_int
from shopkit.errors import ApiError, Conflict, UpstreamBadResponse, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from shopkit.http_client import Upstream

from .products import checked_product
from .store import CartStore



class CheckoutResult:
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str]):
        self.status, self.body, self.headers = status, body, headers


def order_id_for(user_id: str, idempotency_key: str) -> str:
    """Derived from the key, so every attempt of one checkout names the same order."""
    return "ord_" + hashlib.sha256(f"{user_id}:{idempotency_key}".encode()).hexdigest()[:20]


class Checkout:
    def __init__(self, store: CartStore, catalog: Upstream, payment: Upstream, notification: Upstream,
                 service: str, version: str, currency: str, payment_timeout_s: float, catalog_timeout_s: float):
        self.store, self.catalog, self.payment, self.notification = store, catalog, payment, notification
        self.service, self.version, self.currency = service, version, currency
        # A pending claim outlives the slowest attempt (pricing + payment), and no more: a cart that crashed, or lost
        # Redis mid-checkout, frees its key by itself soon after.
        self.pending_ttl_s = int(catalog_timeout_s + payment_timeout_s + 5)
        self.wait_for_other_s = payment_timeout_s + 5
        # How long an order, and the key that made it, are kept (Redis is memory: a shop running the load
        # generator all day must not fill it).
        self.retention_s = env_int("ORDER_RETENTION_S", 24 * 3600, 60, 365 * 24 * 3600)

    def count(self, result: str) -> None:
        metrics.CHECKOUTS.labels(self.service, self.version, result).inc()

    def run(self, user_id: str, idempotency_key: str) -> CheckoutResult:
        claim_key = self.store.claim_key(user_id, idempotency_key)
        token = f"pending:{uuid.uuid4().hex}"
        deadline = time.monotonic() + self.wait_for_other_s
        while True:
            holder = self.store.claim(claim_key, token, self.pending_ttl_s)
            if holder is None:
                break
            if holder.startswith("order:"):
                return self.replay(holder.removeprefix("order:"), idempotency_key)
            if time.monotonic() > deadline:
                self.count("conflict")
                raise Conflict("a checkout with this Idempotency-Key is still running; retry in a moment",
                               idempotency_key=idempotency_key)
            time.sleep(0.05)  # another request holds the key: wait for its outcome
        lock_key = self.store.lock_key(user_id)
        try:
            if self.store.claim(lock_key, token, self.pending_ttl_s) is not None:
                self.count("conflict")
                raise Conflict("another checkout of this cart is in progress (with a different Idempotency-Key); "
                               "wait for it to finish and look at the cart again", idempotency_key=idempotency_key)
            try:
                result = self.charge(user_id, idempotency_key, claim_key)
            finally:
                self.store.release(lock_key, token)
        except BaseException:
            self.store.release(claim_key, token)  # nothing was stored: the same key may try again
            raise
        if result.status != 201:
            self.store.release(claim_key, token)
        return result

    def replay(self, order_id: str, idempotency_key: str) -> CheckoutResult:
        order = self.store.order(order_id)
        if order is None:
            raise ApiError("the order for this Idempotency-Key is missing from storage", 500)
        self.count("replayed")
        return CheckoutResult(200, {**order, "replayed": True}, {
            "Idempotent-Replayed": "true", "Idempotency-Key": idempotency_key,
            "X-Payment-Version": order["payment"]["version"]})

    def price(self, lines: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Decimal]:
        answer = self.catalog.call("GET", "/products")
        if not answer.ok:
            raise UpstreamBadResponse("catalog", f"catalog failed while pricing the cart (HTTP {answer.status}: "
                                      f"{answer.body.get('error', '')}); nothing was charged, retry",
                                      upstream_status=answer.status, injected=answer.body.get("injected", False))
        products = answer.body.get("products")
        if not isinstance(products, list):
            raise UpstreamBadResponse("catalog", "catalog answered without a product list; nothing was charged")
        prices = {p.get("id"): p for p in products if isinstance(p, dict)}
        items, total = [], Decimal("0.00")
        for line in lines:
            product = prices.get(line["product_id"])
            if product is None:
                raise Conflict(f"product {line['product_id']!r} is no longer sold; remove it from the cart",
                               product_id=line["product_id"])
            product = checked_product(product, line["product_id"])
            unit = Decimal(product["price"])
            line_total = unit * line["quantity"]
            items.append({"product_id": line["product_id"], "name": product["name"], "unit_price": str(unit),
                          "quantity": line["quantity"], "line_total": str(line_total)})
            total += line_total
        return items, total.quantize(Decimal("0.01"))

    def charge(self, user_id: str, idempotency_key: str, claim_key: str) -> CheckoutResult:
        lines = self.store.lines(user_id)
        if not lines:
            self.count("empty")
            raise Conflict("the cart is empty; add products before checking out", user_id=user_id)
        items, total = self.price(lines)
        order_id = order_id_for(user_id, idempotency_key)
        key_headers = {"Idempotency-Key": idempotency_key}
        try:
            answer = self.payment.call("POST", "/payments", headers={"Idempotency-Key": order_id},
                                       json_body={"order_id": order_id, "user_id": user_id, "amount": str(total),
                                                  "currency": self.currency})
        except UpstreamTimeout as exc:
            self.count("payment_timeout")
            raise UpstreamTimeout("payment", f"{exc.message}; the cart is unchanged, retry with the same "
                                  "Idempotency-Key", idempotency_key=idempotency_key) from None
        except UpstreamUnavailable as exc:
            self.count("payment_unavailable")
            raise UpstreamUnavailable("payment", f"{exc.message}; the cart is unchanged, retry with the same "
                                      "Idempotency-Key", idempotency_key=idempotency_key) from None
        except UpstreamError:
            self.count("payment_unavailable")
            raise
        payment_version = str(answer.body.get("version", "unknown"))
        headers = {**key_headers, "X-Payment-Version": payment_version}
        if answer.status == 402:
            self.count("declined")
            return CheckoutResult(402, {
                "error": answer.body.get("error", "payment declined"), "reason": answer.body.get("reason", ""),
                "injected": answer.body.get("injected", False), "fault": answer.body.get("fault"),
                "payment_version": payment_version, "idempotency_key": idempotency_key,
                "cart_unchanged": True}, headers)
        if 400 <= answer.status < 500 and answer.status != 409:
            # payment refused what the cart sent: a bug between the two services, not something to retry
            self.count("payment_rejected")
            return CheckoutResult(502, {
                "error": f"payment rejected the request (HTTP {answer.status}): {answer.body.get('error', '')}",
                "payment_version": payment_version, "idempotency_key": idempotency_key}, headers)
        if not answer.ok:
            self.count("payment_unavailable")
            status = 504 if answer.status == 504 else 409 if answer.status == 409 else 503
            return CheckoutResult(status, {
                "error": f"payment failed (HTTP {answer.status}): {answer.body.get('error', '')}; the cart is "
                         "unchanged, retry with the same Idempotency-Key",
                "injected": answer.body.get("injected", False), "fault": answer.body.get("fault"),
                "payment_version": payment_version, "idempotency_key": idempotency_key}, headers)

        order = {
            "order_id": order_id, "user_id": user_id, "status": "paid", "items": items, "total": str(total),
            "currency": self.currency, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "idempotency_key": idempotency_key,
            "payment": {k: v for k, v in answer.body.items() if k not in ("order_id", "replayed")},
        }
        try:
            self.store.complete(user_id, claim_key, order, self.retention_s)
        except redis.RedisError as exc:
            self.count("storage_failed")
            raise ApiError(f"payment {answer.body.get('payment_id')} was approved, but the order could not be "
                           f"stored (Redis: {type(exc).__name__}); retry with the same Idempotency-Key in "
                           f"{self.pending_ttl_s} s: payment answers the repeat from its ledger instead of charging "
                           "again", 503,
                           idempotency_key=idempotency_key, payment_version=payment_version) from None
        self.count("approved")
        self.notify(user_id, order)
        return CheckoutResult(201, order, headers)

    def notify(self, user_id: str, order: dict[str, Any]) -> None:
        try:
            self.notification.call("POST", "/notifications", json_body={
                "user_id": user_id, "type": "order_placed", "order_id": order["order_id"],
                "message": f"Order {order['order_id']} is paid: {order['currency']} {order['total']} "
                           f"(payment {order['payment']['version']})"})
        except UpstreamError:
            pass  # the order stands; the failed call is counted in upstream_requests_total
