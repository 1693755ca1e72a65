"""payment's pure rules: amounts and the fraud score of v2 (its ledger: tests/integration/test_payment_ledger.py)."""
from decimal import Decimal

import pytest

from payment_service.app import parse_amount
from payment_service.processor import approval, fraud_check
from shopkit.errors import BadRequest


@pytest.mark.parametrize("raw,expected", [("12.34", "12.34"), ("5", "5.00"), ("100000.00", "100000.00")])
def test_amounts_are_exact_decimals(raw, expected):
    assert str(parse_amount(raw)) == expected


@pytest.mark.parametrize("raw", ["0", "-1", "100000.01", "1.001", "NaN", "Infinity", "1e3x", "1e2", 12.34, None])
def test_bad_amounts_are_refused(raw):
    with pytest.raises(BadRequest):
        parse_amount(raw)


def test_fraud_score_is_deterministic_and_bounded():
    first = fraud_check("user-1", Decimal("10.00"))
    assert first == fraud_check("user-1", Decimal("10.00"))
    scores = {fraud_check(f"user-{i}", Decimal("10.00"))["score"] for i in range(200)}
    assert min(scores) >= 0 and max(scores) <= 0.99 and len(scores) > 20


def test_versions_differ_in_receipt_and_fraud_check():
    v1 = approval("v1", "ord_1", "u", Decimal("9.99"), "USD")
    v2 = approval("v2", "ord_1", "u", Decimal("9.99"), "USD")
    assert isinstance(v1["receipt"], str) and "fraud_check" not in v1
    assert v2["receipt"]["total"] == "9.99" and v2["fraud_check"]["level"] in ("low", "medium", "high")
