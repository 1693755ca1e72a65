"""catalog: product listing and detail."""
from __future__ import annotations

import json

from flask import Response

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
    # The catalog never changes while the process runs: serialise it once, not on every request.
    listing = json.dumps({"products": list(PRODUCTS.values()), "count": len(PRODUCTS), "currency": CURRENCY})
    details = {pid: json.dumps(product) for pid, product in PRODUCTS.items()}

    @app.get("/products")
    def list_products():
        return Response(listing, content_type="application/json")

    @app.get("/products/<product_id>")
    def get_product(product_id: str):
        check_id(product_id, "product_id")
        if product_id not in details:
            raise NotFound(f"product {product_id!r} does not exist", product_id=product_id)
        return Response(details[product_id], content_type="application/json")

    return app
