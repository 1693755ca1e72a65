"""catalog: product listing and detail."""
from __future__ import annotations

from flask import jsonify

from shopkit.app import create_service_app
from shopkit.config import Settings
from shopkit.errors import NotFound
from shopkit.validation import check_id

from .products import CURRENCY, PRODUCTS

# The seed's catalog answers 5% of requests with HTTP 500: what the meshes' retries are there to hide.
FAULT_SEED = {"error_rate": 0.05}


def create_app():
    settings = Settings.from_env("catalog", 5001)
    app = create_service_app(__name__, settings, fault_seed=FAULT_SEED)
    listing = {"products": list(PRODUCTS.values()), "count": len(PRODUCTS), "currency": CURRENCY}

    @app.get("/products")
    def list_products():
        return jsonify(listing)

    @app.get("/products/<product_id>")
    def get_product(product_id: str):
        check_id(product_id, "product_id")
        product = PRODUCTS.get(product_id)
        if product is None:
            raise NotFound(f"product {product_id!r} does not exist", product_id=product_id)
        return jsonify(product)

    return app
