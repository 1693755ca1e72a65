"""api-gateway: relays the public API to catalog and cart, serves the storefront.

It relays bodies as they come and answers as the services answer (status, JSON, checkout headers), so a 4xx from
cart reaches the client unchanged. It adds what only an edge can: request ids and traces for requests that arrive
without them, an Idempotency-Key for a checkout that comes without one (on every answer, errors too), and JSON
502/503/504 answers when a neighbour is down, slow or answers something that is not JSON. Nothing of the services'
/admin surface is reachable through it, and its own /admin is on its admin port only.
"""
from __future__ import annotations

import os
import uuid

from flask import Response, g, jsonify, request

from shopkit.app import create_service_app
from shopkit.config import Settings, env_float
from shopkit.errors import ApiError
from shopkit.validation import check_id, check_idempotency_key, check_order_id, read_body

STATIC_DIR = os.path.join(os.path.dirname(__file__), "static")
# Headers of cart's checkout answers a client needs: which payment version served it, and how to repeat it safely.
RELAYED_HEADERS = ("X-Payment-Version", "Idempotent-Replayed", "Idempotency-Key", "Retry-After")


def create_app():
    settings = Settings.from_env("api-gateway", 5000, {
        "catalog": ("CATALOG_URL", "http://localhost:5001"),
        "cart": ("CART_URL", "http://localhost:5002"),
    })
    # Each caller waits longer than its callee waits for its own neighbours, so a timeout names the service that
    # was slow: cart waits 5 s for catalog (UPSTREAM_TIMEOUT_S), the gateway 6 s for cart. A checkout's budget is
    # docs/architecture.md's "Timeouts" table: cart's worst case is 19 s, the gateway waits 25 s.
    cart_timeout_s = env_float("CART_TIMEOUT_S", 6.0, 0.1, 300)
    checkout_timeout_s = env_float("CHECKOUT_TIMEOUT_S", 25.0, 0.1, 300)
    app = create_service_app(__name__, settings, edge=True, fault_exempt=("/", "/api", "/static/"),
                             static_folder=STATIC_DIR, upstream_read_timeouts={"cart": cart_timeout_s})
    app.config["CHECKOUT_TIMEOUT_S"] = checkout_timeout_s
    up = app.extensions["shop"].upstreams

    def relay(upstream: str, path: str, read_timeout_s: float | None = None, headers: dict | None = None) -> Response:
        has_body = request.method in ("POST", "PUT", "PATCH")
        # HEAD goes upstream as GET: the services answer HEAD without the JSON body the gateway relays, and Flask
        # leaves the body out of the gateway's own answer to HEAD.
        method = "GET" if request.method == "HEAD" else request.method
        answer = up[upstream].call(
            method, path, raw_body=read_body(request) if has_body else None,
            content_type=request.content_type or "application/json", headers=headers, read_timeout_s=read_timeout_s)
        response = Response(answer.raw, status=answer.status, content_type="application/json")
        for name in RELAYED_HEADERS:  # answer.headers is case-insensitive: behind Envoy every name is lowercase
            if name in answer.headers:
                response.headers[name] = answer.headers[name]
        return response

    @app.get("/")
    def storefront():
        if os.path.exists(os.path.join(STATIC_DIR, "index.html")):
            return app.send_static_file("index.html")
        return jsonify({"service": "api-gateway", "api": "/api"})

    @app.get("/api")
    def api_index():
        routes = sorted(
            {(rule.rule, ",".join(sorted(rule.methods - {"HEAD", "OPTIONS"}))) for rule in app.url_map.iter_rules()
             if rule.rule.startswith("/api/")})
        return jsonify({"service": "api-gateway", "docs": "README.md, section API",
                        "routes": [{"path": path, "methods": methods} for path, methods in routes]})

    @app.get("/api/products")
    def products():
        return relay("catalog", "/products")

    @app.get("/api/products/<product_id>")
    def product(product_id: str):
        return relay("catalog", f"/products/{check_id(product_id, 'product_id')}")

    @app.route("/api/cart/<user_id>", methods=["GET", "DELETE"])
    def cart(user_id: str):
        return relay("cart", f"/cart/{check_id(user_id, 'user_id')}")

    @app.post("/api/cart/<user_id>/add")
    def add_to_cart(user_id: str):
        return relay("cart", f"/cart/{check_id(user_id, 'user_id')}/add")

    @app.route("/api/cart/<user_id>/items/<product_id>", methods=["PUT", "DELETE"])
    def cart_item(user_id: str, product_id: str):
        return relay("cart", f"/cart/{check_id(user_id, 'user_id')}/items/{check_id(product_id, 'product_id')}")

    @app.post("/api/cart/<user_id>/checkout")
    def checkout(user_id: str):
        # The edge names every checkout attempt, so each hop after it sees one stable key. Every answer carries it,
        # errors too (shopkit.app adds the header, the body gets it here), so a client that sent none can repeat
        # the attempt safely.
        key = request.headers.get("Idempotency-Key")
        g.idempotency_key = str(uuid.uuid4()) if key is None else check_idempotency_key(key)
        check_id(user_id, "user_id")
        try:
            return relay("cart", f"/cart/{user_id}/checkout", read_timeout_s=checkout_timeout_s,
                         headers={"Idempotency-Key": g.idempotency_key})
        except ApiError as exc:
            exc.details.setdefault("idempotency_key", g.idempotency_key)
            raise

    @app.get("/api/orders/<order_id>")
    def order(order_id: str):
        return relay("cart", f"/orders/{check_order_id(order_id)}")

    @app.get("/api/users/<user_id>/orders")
    def orders(user_id: str):
        return relay("cart", f"/users/{check_id(user_id, 'user_id')}/orders")

    @app.get("/api/users/<user_id>/notifications")
    def notifications(user_id: str):
        return relay("cart", f"/users/{check_id(user_id, 'user_id')}/notifications")

    return app
