"""What a charge looks like in each version (the ledger that keeps charges is ledger.py).

v1 answers with a one-line text receipt. v2, the canary, adds a fraud check and an itemised receipt object, so a
learner can tell the versions apart in any response body, not only in a header.
"""
from __future__ import annotations

import hashlib
import time
import uuid
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

