"""Checkout: price the cart, charge once per Idempotency-Key, store the order, notify after answering.

Safety rules, in the order the code keeps them:
1. One claim per (user, key), opened in Redis with the priced items, the total and a new order id before payment is
   called. The order id is new for every claim and is payment's Idempotency-Key: a key reused after ORDER_RETENTION_S
   is a new charge, never an old approval. The claim opens only while the cart still holds what was priced (another
   checkout may have bought it while this one read the catalog).
2. One checkout per cart at a time: the cart's lock names the key of the checkout in flight until that checkout is
   settled; another key gets 409 naming it (in_flight_idempotency_key).
3. A claim is charged once, by the request that opened it. Whenever that request does not get a clear answer
   (timeout, unreachable, a 5xx, a proxy's page), it cancels the charge at payment (POST /payments/<id>/cancel):
   payment answers the approval if there was one (the order is stored), else guarantees that none can follow.
   Only when even the cancel gets no answer is the outcome unknown: the claim stays open and the cart locked, and the
   next request for either key settles it the same way before anything else happens.
4. The amount comes from the catalog's current prices, never from the client.
5. Only an approved payment changes the cart, in one Lua script together with the order; declines, timeouts and
   cancelled attempts leave the cart exactly as it was.
6. The notification is sent in the background after the answer: a slow notification never delays a checkout.
"""
from __future__ import annotations

import json
import secrets
import time
import uuid
from decimal import Decimal
from typing import Any

import redis

from shopkit import metrics
from shopkit.errors import ApiError, Conflict, UpstreamBadResponse, UpstreamError
from shopkit.http_client import Upstream
from shopkit.validation import MAX_ORDER_TOTAL

from .products import checked_product
from .store import CartStore, CheckoutKeys

REDIS_STALL_S = 2.0  # the cart's Redis socket timeout (app.redis_client): one stalled command ends a request


class CheckoutResult:
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


class Checkout:
    def __init__(self, store: CartStore, catalog: Upstream, payment: Upstream, notification: Upstream,
                 service: str, version: str, currency: str, *, connect_timeout_s: float, catalog_timeout_s: float,
                 payment_timeout_s: float, cancel_timeout_s: float, retention_s: int):
        self.store, self.catalog, self.payment, self.notification = store, catalog, payment, notification
        self.service, self.version, self.currency = service, version, currency
        self.cancel_timeout_s = cancel_timeout_s
        charge_s = connect_timeout_s + payment_timeout_s
        cancel_s = connect_timeout_s + cancel_timeout_s
        pricing_s = connect_timeout_s + catalog_timeout_s
        # The request that opened a claim holds it (its lease) for as long as it can take to learn the outcome:
        # the charge and the cancel. A concurrent repeat of the key waits that long for it, no longer.
        self.lease_s = int(charge_s + cancel_s + 2 * REDIS_STALL_S) + 1
        self.wait_for_other_s = float(self.lease_s)
        # The longest one checkout request can take (docs/architecture.md, "Timeouts"): settling an earlier attempt,
        # then pricing, charging and cancelling a new one; or waiting for a concurrent repeat, then settling it.
        attempt_s = pricing_s + charge_s + cancel_s + REDIS_STALL_S
        self.worst_case_s = max(cancel_s + attempt_s, self.wait_for_other_s + cancel_s + REDIS_STALL_S)
        self.retention_s = retention_s

    def count(self, result: str) -> None:
        metrics.CHECKOUTS.labels(self.service, self.version, result).inc()

    # --- the request --------------------------------------------------------------------------------------------
    def run(self, user_id: str, idempotency_key: str) -> CheckoutResult:
        keys = CheckoutKeys(user_id, idempotency_key)
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.wait_for_other_s
        waited = False
        while True:
            claim, lease = self.store.read_claim(keys)
            if claim is None:
                if waited:  # the attempt this request waited for ended charging nothing (declined, cancelled)
                    raise self.charged_nothing_meanwhile(idempotency_key)
                result = self.attempt(keys, token)
                if result is not None:
                    return result
                continue  # a concurrent request opened this key's claim first: follow it
            if claim["state"] == "paid":
                return self.replay(claim["order_id"], idempotency_key)
            if lease is not None:  # another request is working on this very attempt
                if time.monotonic() > deadline:
                    self.count("conflict")
                    raise Conflict("a checkout with this Idempotency-Key is still running; retry in a moment",
                                   idempotency_key=idempotency_key)
                waited = True
                time.sleep(0.05)
                continue
            # Pending and nobody holds it: an earlier request did not learn whether payment charged. Settle it.
            if not self.store.take_over(keys, token, self.lease_s):
                continue
            verdict, settled = self.settle(keys, token, claim)
            if verdict == "paid":
                return settled
            if verdict == "unknown":
                self.count("payment_unavailable")
                raise ApiError(f"an earlier attempt with this Idempotency-Key did not learn whether payment charged, "
                               f"and payment still cannot be asked ({settled}); the cart is unchanged: retry in a "
                               "moment", 503, upstream="payment", idempotency_key=idempotency_key)
            if waited:
                raise self.charged_nothing_meanwhile(idempotency_key)

    def charged_nothing_meanwhile(self, idempotency_key: str) -> Conflict:
        """A request that waited for this key's attempt in flight does not start one of its own when that attempt
        charged nothing: waiting and then a whole attempt would not fit in worst_case_s. The shopper retries."""
        self.count("conflict")
        return Conflict("the attempt with this Idempotency-Key that was running charged nothing; retry to check out "
                        "the cart as it is now", idempotency_key=idempotency_key)

    def attempt(self, keys: CheckoutKeys, token: str) -> CheckoutResult | None:
        """A new attempt: price the cart, open the claim, charge. None when the key was claimed meanwhile."""
        lines = self.store.lines(keys.user_id)
        if not lines:
            self.count("empty")
            raise Conflict("the cart is empty; add products before checking out", user_id=keys.user_id)
        items, total = self.price(lines)
        if total > MAX_ORDER_TOTAL:
            self.count("over_limit")
            raise Conflict(f"the order total {total} is over the limit of {MAX_ORDER_TOTAL} per order; remove some "
                           "items and check out again", total=str(total))
        order_id = f"ord_{secrets.token_hex(10)}"
        fields = {"order_id": order_id, "items": json.dumps(items), "total": str(total), "currency": self.currency,
                  "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        while True:
            outcome, holder = self.store.open_claim(keys, token, self.lease_s, self.retention_s, fields)
            if outcome == "opened":
                return self.charge(keys, token, {**fields, "items": items})
            if outcome == "claim":
                return None
            if outcome == "changed":
                self.count("conflict")
                raise Conflict("the cart changed while this checkout was pricing it (another checkout bought it, or "
                               "it was edited); nothing was charged: look at the cart and check out again",
                               idempotency_key=keys.key)
            # Another checkout of this cart holds the lock: refused, unless it turns out to be over. Then the cart is
            # free, and the prices just taken still stand (no second pricing: the request's budget has room for one).
            self.other_checkout_in_flight(keys, token, holder)

    def other_checkout_in_flight(self, keys: CheckoutKeys, token: str, holder: str) -> None:
        """The cart's lock names another key: a 409 while that checkout runs or cannot be settled; returns when it
        turns out to be over (a lock left behind, or an attempt that charged nothing), and the lock is gone."""
        other = CheckoutKeys(keys.user_id, holder)
        claim, lease = self.store.read_claim(other)
        if claim is None or claim["state"] == "paid":  # a lock left behind: its checkout is over
            self.store.clear_stale_lock(keys.user_id, holder)
            return
        if lease is None and self.store.take_over(other, token, self.lease_s):
            verdict, _ = self.settle(other, token, claim)
            if verdict == "free":
                return  # the other attempt charged nothing
            if verdict == "paid":
                self.count("conflict")
                raise Conflict(f"an earlier checkout of this cart (Idempotency-Key {holder!r}) was paid after all: "
                               f"order {claim['order_id']}; look at your orders and the cart before buying again",
                               settled_idempotency_key=holder, order_id=claim["order_id"])
        self.count("conflict")
        raise Conflict(f"another checkout of this cart is in progress (Idempotency-Key {holder!r}); retry that one "
                       "with its key, or wait for it to finish and look at the cart again",
                       idempotency_key=keys.key, in_flight_idempotency_key=holder)

    # --- pricing ------------------------------------------------------------------------------------------------
    def price(self, lines: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Decimal]:
        answer = self.catalog.call("GET", "/products")
        if not answer.ok:
            raise UpstreamBadResponse("catalog", f"catalog failed while pricing the cart (HTTP {answer.status}: "
                                      f"{answer.body.get('error', '')}); nothing was charged, retry",
                                      upstream_status=answer.status, injected=answer.body.get("injected", False))
        products = answer.body.get("products")
        if not isinstance(products, list):
            raise UpstreamBadResponse("catalog", "catalog answered without a product list; nothing was charged")
        prices = {p["id"]: p for p in products if isinstance(p, dict) and isinstance(p.get("id"), str)}
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
        return items, total

    # --- payment ------------------------------------------------------------------------------------------------
    def charge(self, keys: CheckoutKeys, token: str, claim: dict[str, Any]) -> CheckoutResult:
        try:
            answer = self.payment.call("POST", "/payments", headers={"Idempotency-Key": claim["order_id"]},
                                       json_body={"order_id": claim["order_id"], "user_id": keys.user_id,
                                                  "amount": claim["total"], "currency": self.currency})
        except UpstreamError as exc:  # timed out, unreachable, or a proxy's page: did it charge?
            return self.unclear(keys, token, claim, exc.status, exc.message)
        version = str(answer.body.get("version", "unknown"))
        headers = {"X-Payment-Version": version}
        if answer.status in (200, 201) and answer.body.get("status") == "approved":
            return self.complete(keys, token, claim, answer.body)  # anything else 2xx is no approval: ask, below
        if answer.status == 402:
            self.store.release(keys, token)
            self.count("declined")
            return CheckoutResult(402, {
                "error": answer.body.get("error", "payment declined"), "reason": answer.body.get("reason", ""),
                "injected": answer.body.get("injected", False), "fault": answer.body.get("fault"),
                "payment_version": version, "idempotency_key": keys.key, "cart_unchanged": True}, headers)
        if 400 <= answer.status < 500 and answer.status != 409:
            # payment refused what the cart sent before charging: a bug between the two services, not to retry
            self.store.release(keys, token)
            self.count("payment_rejected")
            return CheckoutResult(502, {
                "error": f"payment rejected the request (HTTP {answer.status}): {answer.body.get('error', '')}",
                "payment_version": version, "idempotency_key": keys.key}, headers)
        status = 504 if answer.status == 504 else 409 if answer.status == 409 else 503
        return self.unclear(keys, token, claim, status,
                            f"payment failed (HTTP {answer.status}): {answer.body.get('error', '')}",
                            version, injected=answer.body.get("injected", False), fault=answer.body.get("fault"))

    def cancel(self, order_id: str) -> tuple[str, dict[str, Any]]:
        """('approved', the charge), ('cancelled', {}) or ('unknown', {"error": why}): payment's word on a charge."""
        try:
            answer = self.payment.call("POST", f"/payments/{order_id}/cancel", read_timeout_s=self.cancel_timeout_s)
        except UpstreamError as exc:
            return "unknown", {"error": exc.message}
        if answer.ok and answer.body.get("status") == "approved":
            return "approved", answer.body
        if answer.ok and answer.body.get("status") == "cancelled":
            return "cancelled", {}
        return "unknown", {"error": f"payment answered the cancel with HTTP {answer.status}: "
                                    f"{answer.body.get('error', '')}"}

    def unclear(self, keys: CheckoutKeys, token: str, claim: dict[str, Any], status: int, problem: str,
                version: str | None = None, **details: Any) -> CheckoutResult:
        """The charge got no clear answer: ask payment to cancel it, and answer what that settles."""
        verdict, charge = self.cancel(claim["order_id"])
        if verdict == "approved":
            return self.complete(keys, token, claim, charge)
        headers = {"X-Payment-Version": version} if version else {}
        body = {"upstream": "payment", "idempotency_key": keys.key, "payment_version": version, **details}
        self.count("payment_timeout" if status == 504 else "payment_unavailable")
        if verdict == "cancelled":
            self.store.release(keys, token)
            return CheckoutResult(status, {"error": f"{problem}; the attempt was cancelled, so nothing was charged "
                                                    "and the cart is unchanged: retry (the same Idempotency-Key is "
                                                    "fine)", "charged": False, **body}, headers)
        self.store.give_up(keys, token)
        return CheckoutResult(status, {
            "error": f"{problem}; payment could not be asked whether it charged ({charge['error']}), so that is not "
                     "known yet: retry with the same Idempotency-Key to settle it (the cart is unchanged, and other "
                     "checkouts of this cart wait until then)", **body}, headers)

    def settle(self, keys: CheckoutKeys, token: str, claim: dict[str, str]) -> tuple[str, Any]:
        """An attempt that ended without an outcome, taken over: ('paid', its 201 answer), ('free', None) when it
        charged nothing and the claim is released, or ('unknown', why) when payment still cannot be asked."""
        verdict, charge = self.cancel(claim["order_id"])
        if verdict == "approved":
            pending = {"order_id": claim["order_id"], "items": json.loads(claim["items"]), "total": claim["total"],
                       "currency": claim.get("currency", self.currency)}
            return "paid", self.complete(keys, token, pending, charge)
        if verdict == "cancelled":
            self.store.release(keys, token)
            return "free", None
        self.store.give_up(keys, token)
        return "unknown", charge["error"]

    # --- the order ----------------------------------------------------------------------------------------------
    def complete(self, keys: CheckoutKeys, token: str, claim: dict[str, Any], charge: dict[str, Any]) -> CheckoutResult:
        version = str(charge.get("version", "unknown"))
        order = {
            "order_id": claim["order_id"], "user_id": keys.user_id, "status": "paid", "items": claim["items"],
            "total": claim["total"], "currency": claim["currency"],
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "idempotency_key": keys.key,
            "payment": {k: v for k, v in charge.items() if k != "order_id"},
        }
        try:
            stored = self.store.complete(keys, order, self.retention_s)
        except redis.RedisError as exc:
            self.count("storage_failed")
            raise ApiError(f"payment {charge.get('payment_id')} was approved, but the order could not be stored "
                           f"(Redis: {type(exc).__name__}); retry with the same Idempotency-Key in {self.lease_s} s: "
                           "the retry asks payment and stores this order instead of charging again", 503,
                           idempotency_key=keys.key, payment_version=version) from None
        if not stored:  # a concurrent request stored this approval first
            return self.replay(claim["order_id"], keys.key)
        self.count("approved")
        self.notification.call_later("POST", "/notifications", json_body={
            "user_id": keys.user_id, "type": "order_placed", "order_id": order["order_id"],
            "message": f"Order {order['order_id']} is paid: {order['currency']} {order['total']} (payment {version})"})
        return CheckoutResult(201, order, {"X-Payment-Version": version})

    def replay(self, order_id: str, idempotency_key: str) -> CheckoutResult:
        """The stored answer of the attempt that made this order, unchanged; only the header marks the repeat."""
        order = self.store.order(order_id)
        if order is None:
            raise ApiError(f"the order {order_id} of this Idempotency-Key is no longer stored (it outlived "
                           "ORDER_RETENTION_S or Redis evicted it)", 503, idempotency_key=idempotency_key)
        self.count("replayed")
        return CheckoutResult(200, order, {"Idempotent-Replayed": "true",
                                           "X-Payment-Version": order["payment"]["version"]})

