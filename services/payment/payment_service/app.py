"""payment: POST /payments charges an order once per Idempotency-Key; POST /payments/<key>/cancel settles a key.

The ledger (ledger.py, in the payment-ledger Redis) is looked up before any fault: a repeat of an approved key is
answered at once and unchanged, even when this instance is sick, slow or failing on purpose; only a new charge meets
the faults. Both routes are therefore exempt from the app factory's fault injection and call it themselves.
"""
from __future__ import annotations

import time
import uuid
from decimal import Decimal

import redis
from flask import jsonify, request

from shopkit import metrics
from shopkit.app import create_service_app
from shopkit.config import Settings, env_int
from shopkit.errors import ApiError, BadRequest, Conflict
from shopkit.faults import COMMON_FIELDS, PAYMENT_FIELDS
from shopkit.storage import redis_client, redis_readiness
from shopkit.validation import (MAX_ORDER_TOTAL, allow_only, check_id, check_idempotency_key, json_object,
                                parse_money, required_str)

from .ledger import Ledger
from .processor import approval

# The seed's processor declines 10% and hangs on 5% for longer than any caller or mesh waits.
FAULT_SEED = {"decline_rate": 0.10, "timeout_rate": 0.05, "timeout_seconds": 10.0}
CURRENCIES = ("USD",)
# A second request with a key that another is charging waits this long for its outcome, then answers 409.
WAIT_FOR_OTHER_S = 5.0
REPLAYED = {"Idempotent-Replayed": "true"}


def parse_amount(raw: object) -> Decimal:
    return parse_money(raw, "field 'amount'", maximum=MAX_ORDER_TOTAL, minimum="0.01")


def create_app():
    settings = Settings.from_env("payment", 5003, {
        "notification": ("NOTIFICATION_URL", "http://localhost:5004"),
    })
    client = redis_client("PAYMENT_LEDGER_URL", "redis://localhost:6380/0", "PAYMENT_LEDGER_PASSWORD")
    # Kept longer than cart keeps an unsettled checkout (ORDER_RETENTION_S, 1 day): cart's cancel must find it.
    ledger = Ledger(client, env_int("PAYMENT_LEDGER_RETENTION_S", 2 * 24 * 3600, 60, 365 * 24 * 3600))
    app = create_service_app(__name__, settings, fault_fields=COMMON_FIELDS | PAYMENT_FIELDS, fault_seed=FAULT_SEED,
                             readiness=redis_readiness(client, "ledger"), fault_exempt=("/payments", "/payments/"))
    service = app.extensions["shop"]
    faults, notification = service.faults, service.upstreams["notification"]
    version = settings.version

    def count(result: str) -> None:
        metrics.PAYMENTS.labels(settings.service, version, result).inc()

    @app.errorhandler(redis.RedisError)
    def ledger_down(exc: redis.RedisError):
        return jsonify({"error": f"payment ledger (Redis) is unavailable: {type(exc).__name__}; nothing was charged",
                        "charged": False, "version": version}), 503

    def not_charged(message: str, status: int = 409):
        return ApiError(message, status, charged=False, version=version)

    @app.post("/payments")
    def create_payment():
        key = request.headers.get("Idempotency-Key", "")
        try:
            check_idempotency_key(key)
        except BadRequest as exc:
            raise BadRequest(f"{exc.message} (required)", version=version) from None
        body = json_object(request)
        allow_only(body, {"order_id", "user_id", "amount", "currency"})
        order_id = check_id(required_str(body, "order_id", 64), "order_id")
        user_id = check_id(required_str(body, "user_id", 64), "user_id")
        amount = parse_amount(body.get("amount"))
        currency = required_str(body, "currency", 3)
        if currency not in CURRENCIES:
            raise BadRequest(f"field 'currency' must be one of: {', '.join(CURRENCIES)}", field="currency")
        fingerprint = f"{order_id}|{user_id}|{amount}|{currency}"

        token = uuid.uuid4().hex
        deadline = time.monotonic() + WAIT_FOR_OTHER_S
        while True:
            entry = ledger.begin(key, token, fingerprint)
            if entry.state == "started":
                break
            if entry.state == "approved":  # a repeat: answered before any fault can get in the way
                if entry.fingerprint != fingerprint:
                    raise Conflict("this Idempotency-Key was already used for a different payment",
                                   version=version, payment_id=entry.charge["payment_id"])
                count("replayed")
                return jsonify(entry.charge), 200, REPLAYED
            if entry.state == "cancelled":
                raise not_charged("this Idempotency-Key was cancelled by its caller; nothing was charged under it")
            if time.monotonic() > deadline:
                raise not_charged("a payment with this Idempotency-Key is still being processed; retry in a moment")
            time.sleep(0.05)  # another request holds the key: wait for its outcome

        try:
            answer = charge(key, token, order_id, user_id, amount, currency)
        except BaseException:
            release(key, token)
            raise
        if answer[1] != 201:
            release(key, token)
        return answer

    def release(key: str, token: str) -> None:
        """This attempt charged nothing: free its key (if Redis is gone, the entry expires by itself)."""
        try:
            ledger.release(key, token)
        except redis.RedisError:
            pass

    def charge(key: str, token: str, order_id: str, user_id: str, amount: Decimal, currency: str):
        """(body, status): 201 once the ledger holds the approval; anything else charged nothing."""
        injected = faults.before_business_request()  # sick, delay, error: only a new charge meets them
        if injected:
            status, fault_body = injected
            return jsonify({**fault_body, "charged": False}), status
        if faults.roll("timeout_rate", "timeout"):
            # The processor hangs and finally gives up without charging: callers time out long before.
            time.sleep(faults.settings()["timeout_seconds"])
            count("timeout")
            return jsonify({"error": "payment processor timed out (injected fault); nothing was charged",
                            "injected": True, "fault": "timeout", "charged": False, "version": version}), 504
        if faults.roll("decline_rate", "decline"):
            count("declined")
            reason = "card declined: insufficient funds (injected fault)"
            notification.call_later("POST", "/notifications", json_body={
                "user_id": user_id, "type": "payment_declined", "order_id": order_id,
                "message": f"Payment for {order_id} was declined: {reason}"})
            return jsonify({"error": f"payment declined: {reason}", "status": "declined", "reason": reason,
                            "injected": True, "fault": "decline", "charged": False, "version": version,
                            "order_id": order_id}), 402
        approved = approval(version, order_id, user_id, amount, currency)
        try:
            outcome = ledger.approve(key, token, approved)
        except redis.RedisError as exc:  # the script may have run before the answer was lost: the caller must ask
            raise ApiError(f"payment ledger (Redis) did not confirm the approval ({type(exc).__name__}); whether it "
                           "charged is not known: ask with POST /payments/<key>/cancel", 503, version=version) from None
        if outcome == "cancelled":
            raise not_charged("this Idempotency-Key was cancelled while the payment was running; nothing was charged")
        if outcome != "approved":
            raise not_charged(f"the payment took longer than its ledger entry lives ({outcome}); nothing was charged",
                              503)
        count("approved")
        return jsonify(approved), 201

    @app.post("/payments/<key>/cancel")
    def cancel_payment(key: str):
        """Settles a key: its approval if it was charged, else a promise that it never will be."""
        check_idempotency_key(key)
        entry = ledger.cancel(key)
        if entry.state == "approved":
            count("replayed")
            return jsonify(entry.charge), 200, REPLAYED
        count("cancelled")
        return jsonify({"status": "cancelled", "idempotency_key": key, "charged": False, "version": version})

    return app
