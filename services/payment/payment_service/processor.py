"""What a charge looks like in each version, and the per-instance idempotency ledger.

v1 answers with a one-line text receipt. v2, the canary, adds a fraud check and an itemised receipt object, so a
learner can tell the versions apart in any response body, not only in a header.
"""
from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from decimal import Decimal
from typing import Any


def fraud_check(user_id: str, amount: Decimal) -> dict[str, Any]:
    """v2's fraud score: a deterministic function of who pays how much, so repeats score the same."""
    digest = hashlib.sha256(f"{user_id}:{amount}".encode()).digest()
    score = round(digest[0] / 255 * 0.99, 2)
    level = "low" if score < 0.3 else "medium" if score < 0.7 else "high"
    return {"score": score, "level": level, "model": "fraud-v2.3"}


def approval(version: str, order_id: str, user_id: str, amount: Decimal, currency: str) -> dict[str, Any]:
    payment_id = f"pay_{uuid.uuid4().hex[:16]}"
    authorization = uuid.uuid4().hex[:6].upper()
    result: dict[str, Any] = {
        "payment_id": payment_id,
        "status": "approved",
        "order_id": order_id,
        "amount": str(amount),
        "currency": currency,
        "version": version,
    }
    if version == "v2":
        result["fraud_check"] = fraud_check(user_id, amount)
        result["receipt"] = {
            "format": "itemised-v2",
            "merchant": "Mesh Lab Outdoor Shop",
            "lines": [{"description": f"Order {order_id}", "amount": str(amount)}],
            "total": str(amount),
            "currency": currency,
            "authorization_code": authorization,
            "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    else:
        result["receipt"] = f"APPROVED {currency} {amount} for {order_id} (auth {authorization}, ref {payment_id})"
    return result


class Ledger:
    """Approved charges by Idempotency-Key, kept by this instance (the last 10,000).

    Only approvals are remembered: a decline or a timeout charged nothing, so repeating the same key tries again.
    """

    def __init__(self, capacity: int = 10_000):
        self.capacity = capacity
        self._charges: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.lock = threading.Lock()  # held by the caller across look-up, decision and record

    def find(self, key: str) -> dict[str, Any] | None:
        return self._charges.get(key)

    def record(self, key: str, charge: dict[str, Any]) -> None:
        self._charges[key] = charge
        while len(self._charges) > self.capacity:
            self._charges.popitem(last=False)
