"""What the cart needs of a catalog product, checked once for every place that reads one."""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

from shopkit.errors import UpstreamBadResponse


def checked_product(product: dict, product_id: str) -> dict:
    """The catalog's product as the cart relies on it, or a 502 naming what is off (never a KeyError and a 500)."""
    name, price = product.get("name"), product.get("price")
    try:
        valid_price = isinstance(price, str) and Decimal(price).is_finite() and Decimal(price) >= 0
    except InvalidOperation:
        valid_price = False
    if product.get("id") != product_id or not isinstance(name, str) or not valid_price:
        raise UpstreamBadResponse("catalog", f"catalog answered an unexpected product for {product_id!r}: "
                                  "it needs id, name and a decimal-string price")
    return product
