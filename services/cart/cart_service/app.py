"""cart: the cart API, checkout, and a user's orders and notifications."""
from __future__ import annotations

import uuid

import redis
from flask import g, jsonify, request

from shopkit import metrics
from shopkit.app import create_service_app
from shopkit.config import Settings, env_float, env_int
from shopkit.errors import Conflict, NotFound, UpstreamBadResponse
from shopkit.storage import redis_client, redis_readiness
from shopkit.validation import (allow_only, check_id, check_idempotency_key, check_order_id, json_object,
                                required_int, required_str)

from .checkout import Checkout
from .products import checked_product
from .store import MAX_QUANTITY, CartStore

CURRENCY = "USD"


def create_app():
    settings = Settings.from_env("cart", 5002, {
        "catalog": ("CATALOG_URL", "http://localhost:5001"),
        "payment": ("PAYMENT_URL", "http://localhost:5003"),
        "notification": ("NOTIFICATION_URL", "http://localhost:5004"),
    })
    payment_timeout_s = env_float("PAYMENT_TIMEOUT_S", 4.0, 0.1, 120)
    client = redis_client("REDIS_URL", "redis://localhost:6379/0", "REDIS_PASSWORD")
    app = create_service_app(__name__, settings, readiness=redis_readiness(client, "redis"),
                             upstream_read_timeouts={"payment": payment_timeout_s})
    up = app.extensions["shop"].upstreams
    store = CartStore(client)
    checkout = Checkout(
        store, up["catalog"], up["payment"], up["notification"], settings.service, settings.version, CURRENCY,
        connect_timeout_s=settings.connect_timeout_s, catalog_timeout_s=settings.read_timeout_s,
        payment_timeout_s=payment_timeout_s,
        cancel_timeout_s=env_float("PAYMENT_CANCEL_TIMEOUT_S", 2.0, 0.1, 60),
        # How long an order, and the key that made it, are kept (Redis is memory: a shop running the load generator
        # all day must not fill it).
        retention_s=env_int("ORDER_RETENTION_S", 24 * 3600, 60, 365 * 24 * 3600))
    app.extensions["checkout"] = checkout

    @app.errorhandler(redis.RedisError)
    def storage_down(exc: redis.RedisError):
        return jsonify({"error": f"cart storage (Redis) is unavailable: {type(exc).__name__}; nothing was changed"}), 503

    def cart_json(user_id: str, status: int = 200):
        return jsonify(store.view(user_id, CURRENCY)), status

    @app.get("/cart/<user_id>")
    def get_cart(user_id: str):
        return cart_json(check_id(user_id, "user_id"))

    @app.delete("/cart/<user_id>")
    def clear_cart(user_id: str):
        store.clear(check_id(user_id, "user_id"))
        return cart_json(user_id)

    @app.post("/cart/<user_id>/add")
    def add_item(user_id: str):
        check_id(user_id, "user_id")
        body = json_object(request)
        allow_only(body, {"product_id", "quantity"})
        product_id = check_id(required_str(body, "product_id", 64), "product_id")
        quantity = required_int(body, "quantity", 1, MAX_QUANTITY)
        answer = up["catalog"].call("GET", f"/products/{product_id}")
        if answer.status == 404:
            raise NotFound(f"product {product_id!r} does not exist", product_id=product_id)
        if not answer.ok:
            raise UpstreamBadResponse("catalog", f"catalog failed (HTTP {answer.status}: "
                                      f"{answer.body.get('error', '')}); the cart is unchanged, retry",
                                      upstream_status=answer.status, injected=answer.body.get("injected", False))
        added, current = store.add(user_id, checked_product(answer.body, product_id), quantity)
        if not added:
            raise Conflict(f"the cart already holds {current} of product {product_id!r}; at most {MAX_QUANTITY} "
                           "per product", product_id=product_id, quantity_in_cart=current)
        metrics.CART_ITEMS_ADDED.labels(settings.service, settings.version).inc(quantity)
        return cart_json(user_id)

    @app.put("/cart/<user_id>/items/<product_id>")
    def set_quantity(user_id: str, product_id: str):
        check_id(user_id, "user_id")
        check_id(product_id, "product_id")
        body = json_object(request)
        allow_only(body, {"quantity"})
        quantity = required_int(body, "quantity", 1, MAX_QUANTITY)
        if not store.set_quantity(user_id, product_id, quantity):
            raise NotFound(f"product {product_id!r} is not in the cart; add it with POST /cart/{user_id}/add",
                           product_id=product_id)
        return cart_json(user_id)

    @app.delete("/cart/<user_id>/items/<product_id>")
    def remove_item(user_id: str, product_id: str):
        check_id(user_id, "user_id")
        check_id(product_id, "product_id")
        if not store.remove(user_id, product_id):
            raise NotFound(f"product {product_id!r} is not in the cart", product_id=product_id)
        return cart_json(user_id)

    @app.post("/cart/<user_id>/checkout")
    def do_checkout(user_id: str):
        key = request.headers.get("Idempotency-Key")
        # No key: this request cannot be safely repeated, but it still works (and its answers name the key made).
        g.idempotency_key = str(uuid.uuid4()) if key is None else check_idempotency_key(key)
        check_id(user_id, "user_id")
        result = checkout.run(user_id, g.idempotency_key)
        return jsonify(result.body), result.status, result.headers

    @app.get("/orders/<order_id>")
    def get_order(order_id: str):
        order = store.order(check_order_id(order_id))
        if order is None:
            raise NotFound(f"order {order_id!r} does not exist", order_id=order_id)
        return jsonify(order)

    @app.get("/users/<user_id>/orders")
    def list_orders(user_id: str):
        orders = store.orders_of(check_id(user_id, "user_id"))
        return jsonify({"user_id": user_id, "orders": orders, "count": len(orders)})

    @app.get("/users/<user_id>/notifications")
    def list_notifications(user_id: str):
        # The gateway may only call catalog and cart (see the access matrix), so cart relays this read.
        answer = up["notification"].call("GET", f"/notifications/{check_id(user_id, 'user_id')}")
        return jsonify(answer.body), answer.status

    return app
