"""Carts, orders and checkout claims in Redis.

Every change that reads and then writes runs as one Lua script, so concurrent requests cannot interleave inside it:
a hundred parallel adds of one product lose nothing, and a checkout removes exactly what it charged for (items
added while payment was running stay in the cart).
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import redis

MAX_QUANTITY = 99
PREFIX = "shop"
CART_IDLE_TTL_S = 7 * 24 * 3600  # a cart nobody touched for a week expires (Redis must not grow without bound)

_ADD = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local wanted = current + tonumber(ARGV[2])
if wanted > tonumber(ARGV[3]) then return {0, current} end
redis.call('HSET', KEYS[1], ARGV[1], wanted)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return {1, wanted}
"""
_SET_QUANTITY = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""
_REMOVE = """
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return removed
"""
_RELEASE_CLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: quantities, infos, order, user's order list, checkout claim
# ARGV: order json, order id, retention (s) of the order and its claim, then product id / quantity pairs
_COMPLETE_CHECKOUT = """
for i = 4, #ARGV, 2 do
  local left = redis.call('HINCRBY', KEYS[1], ARGV[i], -tonumber(ARGV[i + 1]))
  if left <= 0 then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[3])
redis.call('LPUSH', KEYS[4], ARGV[2])
redis.call('LTRIM', KEYS[4], 0, 99)
redis.call('EXPIRE', KEYS[4], ARGV[3])
redis.call('SET', KEYS[5], 'order:' .. ARGV[2], 'EX', ARGV[3])
return 1
"""


def _product_sort_key(product_id: str) -> tuple[int, str]:
    return (int(product_id), "") if product_id.isdigit() else (1 << 62, product_id)


class CartStore:
    def __init__(self, client: redis.Redis):
        self.redis = client
        self._add = client.register_script(_ADD)
        self._set_quantity = client.register_script(_SET_QUANTITY)
        self._remove = client.register_script(_REMOVE)
        self._release = client.register_script(_RELEASE_CLAIM)
        self._complete = client.register_script(_COMPLETE_CHECKOUT)

    @staticmethod
    def _keys(user_id: str) -> tuple[str, str]:
        return f"{PREFIX}:cart:{user_id}:qty", f"{PREFIX}:cart:{user_id}:info"

    # --- cart -------------------------------------------------------------------------------------------------
    def add(self, user_id: str, product: dict[str, Any], quantity: int) -> tuple[bool, int]:
        """Adds atomically; (False, current) when the line would pass MAX_QUANTITY."""
        info = json.dumps({"name": product["name"], "unit_price": product["price"]})
        ok, value = self._add(keys=self._keys(user_id),
                              args=[product["id"], quantity, MAX_QUANTITY, info, CART_IDLE_TTL_S])
        return bool(ok), int(value)

    def set_quantity(self, user_id: str, product_id: str, quantity: int) -> bool:
        return bool(self._set_quantity(keys=self._keys(user_id), args=[product_id, quantity, CART_IDLE_TTL_S]))

    def remove(self, user_id: str, product_id: str) -> bool:
        return bool(self._remove(keys=self._keys(user_id), args=[product_id]))

    def clear(self, user_id: str) -> None:
        self.redis.delete(*self._keys(user_id))

    def lines(self, user_id: str) -> list[dict[str, Any]]:
        """The cart's lines as stored: quantity plus the name and price seen when the product was added."""
        qty_key, info_key = self._keys(user_id)
        with self.redis.pipeline(transaction=True) as pipe:
            quantities, infos = pipe.hgetall(qty_key).hgetall(info_key).execute()
        lines = []
        for product_id in sorted(quantities, key=_product_sort_key):
            info = json.loads(infos.get(product_id, "{}"))
            lines.append({"product_id": product_id, "name": info.get("name", ""),
                          "unit_price": info.get("unit_price", "0.00"), "quantity": int(quantities[product_id])})
        return lines

    def view(self, user_id: str, currency: str) -> dict[str, Any]:
        lines = self.lines(user_id)
        total = Decimal("0.00")
        for line in lines:
            line_total = Decimal(line["unit_price"]) * line["quantity"]
            line["line_total"] = str(line_total)
            total += line_total
        return {"user_id": user_id, "items": lines, "item_count": sum(line["quantity"] for line in lines),
                "total": str(total.quantize(Decimal("0.01"))), "currency": currency}

    # --- orders and checkout claims ---------------------------------------------------------------------------
    @staticmethod
    def claim_key(user_id: str, idempotency_key: str) -> str:
        return f"{PREFIX}:checkout:{user_id}:{idempotency_key}"

    @staticmethod
    def lock_key(user_id: str) -> str:
        return f"{PREFIX}:checkout-lock:{user_id}"

    def claim(self, claim_key: str, token: str, ttl_s: int) -> str | None:
        """Takes the key (a claim, or the cart's checkout lock); None when taken, else the current holder's value."""
        if self.redis.set(claim_key, token, nx=True, ex=ttl_s):
            return None
        return self.redis.get(claim_key) or ""

    def release(self, claim_key: str, token: str) -> None:
        try:
            self._release(keys=[claim_key], args=[token])
        except redis.RedisError:
            pass  # Redis is down: the claim expires by itself, and the caller's own error is the one to report

    def complete(self, user_id: str, claim_key: str, order: dict[str, Any], retention_s: int) -> None:
        pairs: list[Any] = []
        for item in order["items"]:
            pairs += [item["product_id"], item["quantity"]]
        qty_key, info_key = self._keys(user_id)
        self._complete(
            keys=[qty_key, info_key, f"{PREFIX}:order:{order['order_id']}", f"{PREFIX}:user:{user_id}:orders", claim_key],
            args=[json.dumps(order), order["order_id"], retention_s, *pairs],
        )

    def order(self, order_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(f"{PREFIX}:order:{order_id}")
        return json.loads(raw) if raw else None

    def orders_of(self, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
        ids = self.redis.lrange(f"{PREFIX}:user:{user_id}:orders", 0, limit - 1)
        if not ids:
            return []
        raws = self.redis.mget([f"{PREFIX}:order:{oid}" for oid in ids])
        return [json.loads(raw) for raw in raws if raw]
