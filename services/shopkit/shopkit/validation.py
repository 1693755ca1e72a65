"""Checks of what clients send. Each failure is a BadRequest naming the field and what was expected."""
from __future__ import annotations

import json
import re
from typing import Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge

from .errors import BadRequest

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
IDEMPOTENCY_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
ORDER_ID_PATTERN = re.compile(r"^ord_[a-f0-9]{20}$")
MAX_BODY_BYTES = 16 * 1024


def check_id(value: str, what: str) -> str:
    if not ID_PATTERN.match(value):
        raise BadRequest(f"{what} must be 1-64 characters of letters, digits, '_' or '-'", field=what)
    return value


def check_order_id(value: str) -> str:
    if not ORDER_ID_PATTERN.match(value):
        raise BadRequest("order_id must be 'ord_' followed by 20 hex digits", field="order_id")
    return value


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


def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a BadRequest that says why it is not one."""
    raw = read_body(request)
    if not raw.strip():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
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
