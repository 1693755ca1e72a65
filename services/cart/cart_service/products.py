"""What the cart needs of a catalog product, checked once for every place that reads one."""
from __future__ import annotations

from shopkit.errors import BadRequest, UpstreamBadResponse
from shopkit.validation import parse_money

# The dearest product the cart accepts; with 99 per line an order stays far inside what Decimal computes exactly,
# and the order total is checked against MAX_ORDER_TOTAL before payment is called.
MAX_UNIT_PRICE = "10000.00"


def checked_product(product: dict, product_id: str) -> dict:
    """The catalog's product as the cart relies on it, or a 502 naming what is off (never a KeyError and a 500)."""
    name, price = product.get("name"), product.get("price")
    try:
        parse_money(price, "price", maximum=MAX_UNIT_PRICE)
        valid_price = True
    except BadRequest:
        valid_price = False
    if product.get("id") != product_id or not isinstance(name, str) or not valid_price:
        raise UpstreamBadResponse("catalog", f"catalog answered an unexpected product for {product_id!r}: it needs "
                                  f"id, name and a price from 0.00 to {MAX_UNIT_PRICE} with at most 2 decimals")
    return product
