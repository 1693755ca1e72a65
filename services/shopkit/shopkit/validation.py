"""Checks of what clients send. Each failure is a BadRequest naming the field and what was expected.

Patterns are matched with fullmatch: `^...$` with re.match would let a trailing newline through ("abc\n" is a
different cart than "abc"). JSON is parsed strictly: NaN, Infinity and numbers past a float's range are not JSON
(RFC 8259), whatever Python's json module accepts by default.
"""
from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import BadRequest

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
ORDER_ID_PATTERN = re.compile(r"ord_[a-f0-9]{20}")
ASCII_DIGITS = re.compile(r"[0-9]{1,9}")
MONEY_PATTERN = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")
MAX_BODY_BYTES = 16 * 1024
# The most one order may cost: payment refuses more, so the cart refuses it first, with a clear answer.
MAX_ORDER_TOTAL = Decimal("100000.00")
IDEMPOTENCY_KEY_RULE = "1-128 characters of letters, digits, '_', '-', '.' or ':'"


def check_id(value: str, what: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise BadRequest(f"{what} must be 1-64 characters of letters, digits, '_' or '-'", field=what)
    return value


def check_order_id(value: str) -> str:
    if not ORDER_ID_PATTERN.fullmatch(value):
        raise BadRequest("order_id must be 'ord_' followed by 20 hex digits", field="order_id")
    return value


def check_idempotency_key(value: str) -> str:
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(value):
        raise BadRequest(f"header 'Idempotency-Key' must be {IDEMPOTENCY_KEY_RULE}", field="Idempotency-Key")
    return value


def query_int(request: Request, name: str, minimum: int, maximum: int, default: int) -> int:
    """A query parameter of ASCII digits within [minimum, maximum] ('²' and '٣' are digits to str.isdigit)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not ASCII_DIGITS.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise BadRequest(f"query parameter '{name}' must be a whole number from {minimum} to {maximum}", field=name)
    return int(raw)


def parse_money(raw: object, what: str, maximum: Decimal | str, minimum: Decimal | str = "0.00") -> Decimal:
    """A decimal string with at most 2 decimals within [minimum, maximum], as Decimal with 2 places."""
    if not isinstance(raw, str) or not MONEY_PATTERN.fullmatch(raw):
        raise BadRequest(f"{what} must be a decimal string such as \"12.34\" (at most 2 decimals)", field=what)
    value = Decimal(raw)
    if not Decimal(minimum) <= value <= Decimal(maximum):
        raise BadRequest(f"{what} must be between {minimum} and {maximum}", field=what)
    return value.quantize(Decimal("0.01"))


def read_body(request: Request) -> bytes:
    """The whole body, at most MAX_BODY_BYTES, else 413 (also for chunked bodies, which carry no length)."""
    if "shop.body" in request.environ:
        return request.environ["shop.body"]
    if request.content_length is not None:
        raw = request.get_data(cache=True)  # Werkzeug answers 413 past MAX_CONTENT_LENGTH
    else:
        # Werkzeug cuts a chunked body at MAX_CONTENT_LENGTH without a word: read one byte more to notice.
        raw = request.environ["wsgi.input"].read(MAX_BODY_BYTES + 1) if request.environ.get("wsgi.input") else b""
        if len(raw) > MAX_BODY_BYTES:
            raise RequestEntityTooLarge()
    request.environ["shop.body"] = raw
    return raw


def _not_json(constant: str):
    raise ValueError(f"{constant} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a BadRequest that says why it is not one."""
    raw = read_body(request)
    if not raw.strip():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        value = json.loads(raw, parse_constant=_not_json, parse_float=_finite_float)
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # also ints of more than 4300 digits
        raise BadRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(value).__name__}")
    return value


def allow_only(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def required_str(body: dict[str, Any], name: str, max_length: int = 500) -> str:
    if name not in body:
        raise BadRequest(f"field '{name}' is required", field=name)
    value = body[name]
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"field '{name}' must be a non-empty string", field=name)
    if len(value) > max_length:
        raise BadRequest(f"field '{name}' must be at most {max_length} characters", field=name)
    return value


def required_int(body: dict[str, Any], name: str, minimum: int, maximum: int) -> int:
    if name not in body:
        raise BadRequest(f"field '{name}' is required", field=name)
    value = body[name]
    # bool is an int in Python; true is not a quantity.
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"field '{name}' must be a whole number", field=name)
    if not minimum <= value <= maximum:
        raise BadRequest(f"field '{name}' must be between {minimum} and {maximum}", field=name)
    return value

