"""payment: POST /payments charges an order once per Idempotency-Key."""
from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation

from flask import jsonify, request

from shopkit import metrics
from shopkit.app import create_service_app
from shopkit.config import ConfigError, Settings, env_int
from shopkit.errors import BadRequest, Conflict, UpstreamError
from shopkit.faults import COMMON_FIELDS, PAYMENT_FIELDS
from shopkit.validation import IDEMPOTENCY_KEY_PATTERN, allow_only, check_id, json_object, required_str

from .processor import Ledger, approval

# The seed's processor declines 10% and hangs on 5% for longer than any caller or mesh waits.
FAULT_SEED = {"decline_rate": 0.10, "timeout_rate": 0.05, "timeout_seconds": 10.0}
MAX_AMOUNT = Decimal("100000.00")
CURRENCIES = ("USD",)


def parse_amount(raw: object) -> Decimal:
    if not isinstance(raw, str):
        raise BadRequest("field 'amount' must be a decimal string such as \"12.34\"", field="amount")
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise BadRequest("field 'amount' must be a decimal string such as \"12.34\"", field="amount") from None
    if not amount.is_finite() or amount <= 0 or amount > MAX_AMOUNT or amount.as_tuple().exponent < -2:
        raise BadRequest(f"field 'amount' must be more than 0 and at most {MAX_AMOUNT}, with at most 2 decimals",
                         field="amount")
    return amount.quantize(Decimal("0.01"))


def create_app():
    if env_int("WEB_CONCURRENCY", 1, 1, 64) > 1:
        # The ledger lives in this process: a second worker would not see the first one's charges.
        raise ConfigError("payment keeps its idempotency ledger in process memory: run it with WEB_CONCURRENCY=1 "
                          "and GUNICORN_THREADS for concurrency; scale with replicas")
    settings = Settings.from_env("payment", 5003, {
        "notification": ("NOTIFICATION_URL", "http://localhost:5004"),
    })
    app = create_service_app(__name__, settings, fault_fields=COMMON_FIELDS | PAYMENT_FIELDS, fault_seed=FAULT_SEED)
    service = app.extensions["shop"]
    faults, notification = service.faults, service.upstreams["notification"]
    ledger = Ledger()
    version = settings.version

    def count(result: str) -> None:
        metrics.PAYMENTS.labels(settings.service, version, result).inc()

    def notify_decline(user_id: str, order_id: str, reason: str) -> None:
        try:
            notification.call("POST", "/notifications", json_body={
                "user_id": user_id, "type": "payment_declined", "order_id": order_id,
                "message": f"Payment for {order_id} was declined: {reason}",
            })
        except UpstreamError:
            pass  # counted in upstream_requests_total; a lost notice must not change the payment's answer

    def replay(earlier: dict, order_id: str, amount: Decimal):
        if earlier["order_id"] != order_id or earlier["amount"] != str(amount):
            raise Conflict("this Idempotency-Key was already used for a different payment",
                           version=version, payment_id=earlier["payment_id"])
        count("replayed")
        return jsonify({**earlier, "replayed": True}), 200

    @app.post("/payments")
    def create_payment():
        key = request.headers.get("Idempotency-Key", "")
        if not IDEMPOTENCY_KEY_PATTERN.match(key):
            raise BadRequest("header 'Idempotency-Key' is required: 1-128 characters of letters, digits, '_', "
                             "'-', '.' or ':'", version=version)
        body = json_object(request)
        allow_only(body, {"order_id", "user_id", "amount", "currency"})
        order_id = check_id(required_str(body, "order_id", 64), "order_id")
        user_id = check_id(required_str(body, "user_id", 64), "user_id")
        amount = parse_amount(body.get("amount"))
        currency = required_str(body, "currency", 3)
        if currency not in CURRENCIES:
            raise BadRequest(f"field 'currency' must be one of: {', '.join(CURRENCIES)}", field="currency")

        with ledger.lock:
            earlier = ledger.find(key)
        if earlier is not None:  # a repeat of a charge already made: answered before any fault can get in the way
            return replay(earlier, order_id, amount)

        if faults.roll("timeout_rate", "timeout"):
            # The processor hangs and finally gives up without charging: callers time out long before.
            time.sleep(faults.settings()["timeout_seconds"])
            count("timeout")
            return jsonify({"error": "payment processor timed out (injected fault); nothing was charged",
                            "injected": True, "fault": "timeout", "version": version}), 504

        with ledger.lock:
            earlier = ledger.find(key)  # again: a concurrent request with this key may have charged meanwhile
            if earlier is not None:
                return replay(earlier, order_id, amount)
            declined = faults.roll("decline_rate", "decline")
            if not declined:
                charge = approval(version, order_id, user_id, amount, currency)
                ledger.record(key, charge)
        if declined:
            count("declined")
            reason = "card declined: insufficient funds (injected fault)"
            notify_decline(user_id, order_id, reason)
            return jsonify({"error": f"payment declined: {reason}", "status": "declined", "reason": reason,
                            "injected": True, "fault": "decline", "version": version, "order_id": order_id}), 402
        count("approved")
        return jsonify(charge), 201

    return app
