"""HTTP with urllib (proxies from the environment are ignored: every target is local or port-forwarded), and
the shop's public API as a user drives it."""
from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any

from .settings import GET_ATTEMPTS, REQUEST_TIMEOUT_S

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Reply:
    status: int | None  # None: no HTTP answer at all (refused, timed out, reset)
    headers: dict[str, str]
    body: Any
    error: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        if self.status is None:
            return self.error
        detail = self.body.get("error") if isinstance(self.body, dict) else None
        return f"HTTP {self.status}" + (f" ({detail})" if detail else "")


def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = REQUEST_TIMEOUT_S) -> Reply:
    data = None
    all_headers = {"Accept": "application/json", "User-Agent": "quick-test"}
    if body is not None:
        data = json.dumps(body).encode()
        all_headers["Content-Type"] = "application/json"
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    started = time.monotonic()
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status, raw, resp_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as err:
        status, raw, resp_headers = err.code, err.read(), err.headers
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        if isinstance(reason, ConnectionRefusedError):
            text = f"connection refused at {_netloc(url)}"
        elif isinstance(reason, TimeoutError) or "timed out" in str(reason):
            text = f"no answer from {_netloc(url)} within {timeout:g} s"
        else:
            text = f"{_netloc(url)}: {reason}"
        return Reply(None, {}, None, text, time.monotonic() - started)
    seconds = time.monotonic() - started
    try:
        parsed: Any = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")[:200]
    return Reply(status, {k.lower(): v for k, v in resp_headers.items()}, parsed, "", seconds)


def _netloc(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def ms(seconds: float) -> int:
    return round(seconds * 1000)


class Shop:
    """The gateway's public API as a user drives it: retries GETs on 5xx, counts every retry by purpose."""

    def __init__(self, base_url: str):
        self.base = base_url.rstrip("/")
        self.retries: Counter[str] = Counter()
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return self.base + path

    def call(self, purpose: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
             attempts: int = 1, timeout: float = REQUEST_TIMEOUT_S) -> Reply:
        """One request, repeated up to `attempts` times while the answer is a 5xx or no answer at all."""
        reply = http(method, self.url(path), body, headers, timeout)
        for attempt in range(1, attempts):
            if reply.status is not None and reply.status < 500:
                break
            self.count_retry(purpose)
            time.sleep(0.05 * 2**attempt)
            reply = http(method, self.url(path), body, headers, timeout)
        return reply

    def get(self, purpose: str, path: str) -> Reply:
        return self.call(purpose, "GET", path, attempts=GET_ATTEMPTS)

    def count_retry(self, purpose: str) -> None:
        with self._lock:
            self.retries[purpose] += 1

    def add_to_cart(self, user: str, product_id: str, quantity: int) -> Reply:
        """Add once. Adding is not idempotent, so after a 5xx look at the cart before trying again (as a user would)."""
        path = f"/api/cart/{user}/add"
        reply = Reply(None, {}, None, "not tried", 0.0)
        for _ in range(GET_ATTEMPTS):
            reply = self.call("cart", "POST", path, {"product_id": product_id, "quantity": quantity})
            if reply.status is not None and reply.status < 500:
                return reply
            cart = self.get("cart", f"/api/cart/{user}")
            if cart.ok and quantity_in(cart.body, product_id) == quantity:
                return cart
            self.count_retry("cart")
        return reply


def quantity_in(cart: Any, product_id: str) -> int:
    if not isinstance(cart, dict):
        return 0
    return sum(int(item.get("quantity", 0)) for item in cart.get("items", [])
               if str(item.get("product_id")) == product_id)


def payment_version(reply: Reply) -> str | None:
    """Which payment version answered: the X-Payment-Version header, else the body's payment.version."""
    version = reply.headers.get("x-payment-version")
    if not version and isinstance(reply.body, dict) and isinstance(reply.body.get("payment"), dict):
        version = reply.body["payment"].get("version")
    return version or None


def new_user(tag: str) -> str:
    return f"qt-{tag}-{secrets.token_hex(4)}"

