"""What one shopper does in one visit, with the mix of a real shop: everyone browses, many look at products and
fill a cart, a good share checks out (more than in a real shop, so the payment canary gets traffic to judge).

Every request waits for its turn from the shared Pacer, so LOADGEN_RPS holds whatever the journeys look like.
"""
from __future__ import annotations

import random
import secrets
import threading
from collections.abc import Callable
from typing import Any

from .client import Answer, GatewayClient
from .pacer import Pacer
from .stats import Stats

MAX_PER_ITEM = 99  # the cart's limit per product (docs/architecture.md); above it the cart answers 409

# (kind, weight): 25% look around and leave, 15% fill a cart and leave, 60% buy. With these journeys that is about
# one checkout in every ten requests.
JOURNEYS: tuple[tuple[str, int], ...] = (("browser", 25), ("abandoner", 15), ("buyer", 60))


class Stopping(Exception):
    """The generator is stopping: end the visit between two requests."""


def checkout_result(answer: Answer) -> str:
    """The cart's own words for a checkout outcome (checkouts_total's result label), from what the client sees."""
    if answer.code is None:
        return answer.status  # timeout / connection_error: no answer at all
    if answer.code == 201:
        return "approved"
    if answer.code == 200:
        return "replayed"
    if answer.code == 402:
        return "declined"
    if answer.code == 409:
        return "empty" if "empty" in str(answer.body.get("error", "")) else "conflict"
    if answer.code == 503:
        return "payment_unavailable"
    if answer.code == 504:
        return "payment_timeout"
    return "error"


def payment_version(answer: Answer) -> str:
    """Which payment version served the checkout: the header, else the body, else 'none' (payment did not answer)."""
    version = answer.headers.get("X-Payment-Version") if answer.headers else None
    if not version:
        payment = answer.body.get("payment")
        version = payment.get("version") if isinstance(payment, dict) else answer.body.get("payment_version")
    return str(version) if version in ("v1", "v2") else ("unknown" if version else "none")


class Shopper:
    def __init__(self, client: GatewayClient, stats: Stats, pacer: Pacer, users: list[str],
                 rng: random.Random | None = None, checkout_timeout_s: float = 30.0):
        self.client, self.stats, self.pacer, self.users = client, stats, pacer, users
        self.rng = rng or random.Random()
        self.checkout_timeout_s = checkout_timeout_s
        self.product_ids: list[str] = []

    # ---- one visit ----

    def visit(self) -> None:
        kind = self.rng.choices([k for k, _ in JOURNEYS], weights=[w for _, w in JOURNEYS])[0]
        user = self.rng.choice(self.users)
        try:
            getattr(self, f"_{kind}")(user)
        except Stopping:
            return
        self.stats.journey(kind)

    def _landing(self, user: str) -> dict[str, int]:
        """What the storefront loads first: the catalog and the shopper's cart. Returns {product_id: quantity}."""
        self.browse(user)
        return self.view_cart(user)

    def _browser(self, user: str) -> None:
        self._landing(user)
        for _ in range(self.rng.randint(1, 3)):
            if self.rng.random() < 0.65 and self.product_ids:
                self.view_product(user, self.rng.choice(self.product_ids))
            else:
                self.browse(user)

    def _fill_cart(self, user: str, cart: dict[str, int]) -> dict[str, int]:
        if not self.product_ids:
            return cart
        for product_id in self.rng.sample(self.product_ids, k=min(len(self.product_ids), self.rng.randint(1, 2))):
            self.view_product(user, product_id)
            cart = self.add_to_cart(user, product_id, self.rng.randint(1, 2), cart)
        if cart and self.rng.random() < 0.25:
            cart = self.change_quantity(user, self.rng.choice(sorted(cart)), self.rng.randint(1, 4), cart)
        return cart

    def _abandoner(self, user: str) -> None:
        cart = self._fill_cart(user, self._landing(user))
        if cart and self.rng.random() < 0.2:
            self.remove_item(user, self.rng.choice(sorted(cart)), cart)

    def _buyer(self, user: str) -> None:
        cart = self._fill_cart(user, self._landing(user))
        if not cart:
            return  # nothing made it into the cart (a failed add): a real shopper would not press "Check out"
        self.checkout(user)
        if self.rng.random() < 0.3:
            self.call("view_orders", "GET", f"/api/users/{user}/orders", user)
        if self.rng.random() < 0.2:
            self.call("view_notifications", "GET", f"/api/users/{user}/notifications", user)

    # ---- single requests ----

    def call(self, action: str, method: str, path: str, user: str, **kwargs: Any) -> Answer:
        if not self.pacer.wait_turn():
            raise Stopping()
        return self.client.call(action, method, path, user=user, **kwargs)

    def browse(self, user: str) -> None:
        answer = self.call("browse", "GET", "/api/products", user)
        products = answer.body.get("products") if answer.ok else None
        if isinstance(products, list):
            self.product_ids = [str(p["id"]) for p in products if isinstance(p, dict) and "id" in p]

    def view_product(self, user: str, product_id: str) -> None:
        self.call("view_product", "GET", f"/api/products/{product_id}", user)

    def view_cart(self, user: str) -> dict[str, int]:
        return self._cart_from(self.call("view_cart", "GET", f"/api/cart/{user}", user), {})

    def add_to_cart(self, user: str, product_id: str, quantity: int, cart: dict[str, int]) -> dict[str, int]:
        if cart.get(product_id, 0) + quantity > MAX_PER_ITEM:
            return self.change_quantity(user, product_id, quantity, cart)  # a returning shopper tidies up instead
        answer = self.call("add_to_cart", "POST", f"/api/cart/{user}/add", user,
                           json_body={"product_id": product_id, "quantity": quantity})
        return self._cart_from(answer, cart)

    def change_quantity(self, user: str, product_id: str, quantity: int, cart: dict[str, int]) -> dict[str, int]:
        answer = self.call("change_quantity", "PUT", f"/api/cart/{user}/items/{product_id}", user,
                           json_body={"quantity": quantity})
        return self._cart_from(answer, cart)

    def remove_item(self, user: str, product_id: str, cart: dict[str, int]) -> dict[str, int]:
        return self._cart_from(self.call("remove_item", "DELETE", f"/api/cart/{user}/items/{product_id}", user),
                               cart)

    def checkout(self, user: str) -> str:
        """Check out with a fresh Idempotency-Key; after a 5xx or no answer, repeat once with the SAME key, as a
        careful client does: if the first attempt did charge, the repeat returns that order instead of a second one."""
        key = f"lg-{secrets.token_hex(16)}"
        result = self._checkout_once(user, key)
        if result in ("payment_unavailable", "payment_timeout", "error", "timeout", "connection_error"):
            self.stats.checkout_retry()
            result = self._checkout_once(user, key)
        return result

    def _checkout_once(self, user: str, key: str) -> str:
        answer = self.call("checkout", "POST", f"/api/cart/{user}/checkout", user,
                           headers={"Idempotency-Key": key}, read_timeout_s=self.checkout_timeout_s)
        result = checkout_result(answer)
        if result == "error" and answer.code is not None and answer.code < 500:
            result = "rejected"  # a 4xx other than 402/409: the request itself was wrong; repeating cannot help
        self.stats.checkout(payment_version(answer), result)
        return result

    @staticmethod
    def _cart_from(answer: Answer, previous: dict[str, int]) -> dict[str, int]:
        items = answer.body.get("items") if answer.ok else None
        if not isinstance(items, list):
            return previous
        return {str(i.get("product_id")): int(i.get("quantity", 0)) for i in items if isinstance(i, dict)}


def shopper_loop(shopper: Shopper, stop: threading.Event, on_exit: Callable[[], None]) -> None:
    """One shopper thread: visit after visit until the generator stops."""
    try:
        while not stop.is_set():
            shopper.visit()
    finally:
        on_exit()
