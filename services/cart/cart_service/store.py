"""Carts, orders and checkout claims in Redis.

Every change that reads and then writes runs as one Lua script, so concurrent requests cannot interleave inside it:
a hundred parallel adds of one product lose nothing, and a checkout removes exactly what it charged for (items
added while payment was running stay in the cart).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
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
# A checkout is three keys (CheckoutKeys): the claim (a hash: the priced attempt, then state `paid`), the lease (the
# request working on the claim right now, with a short TTL) and the cart's lock (the client key of the checkout in
# flight). KEYS: claim, lock, lease, the cart's quantities. ARGV: client key, token, lease (s), retention (s), the
# priced quantities (JSON), then the claim's fields. The cart must still hold what was priced: another checkout may
# have bought it (and freed the lock) while this one was reading the catalog.
_OPEN_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {'claim', ''} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[1] then return {'lock', holder} end
for product_id, quantity in pairs(cjson.decode(ARGV[5])) do
  if tonumber(redis.call('HGET', KEYS[4], product_id) or '0') < quantity then return {'changed', ''} end
end
redis.call('HSET', KEYS[1], 'state', 'pending', unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[4])
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
return {'opened', ''}
"""
# KEYS: claim, lease. ARGV: token, lease (s). A pending claim nobody holds: this request takes it over.
_TAKE_OVER = """
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return 0 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ARGV[2]) then return 1 end
return 0
"""
# KEYS: lease. ARGV: token. The outcome is not known: the claim stays pending (and the cart locked) for a retry.
_GIVE_UP = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: claim, lock, lease. ARGV: token, client key. Known not charged: the key and the cart are free again.
_RELEASE = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[3])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""
# KEYS: lock, the claim of the key it names. ARGV: the client key it must still name. A lock whose claim is gone
# (expired or settled) or paid is stale; checked here, not by the caller, as that key may open a new claim meanwhile.
_CLEAR_STALE_LOCK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local state = redis.call('HGET', KEYS[2], 'state')
if state and state ~= 'paid' then return 0 end
return redis.call('DEL', KEYS[1])
"""
# KEYS: quantities, infos, order, user's order list, claim, lock, lease
# ARGV: order json, order id, retention (s) of the order and its claim, client key, then product id / quantity pairs.
# 0 when the claim is paid already (two requests saw the same approval): the cart is changed once.
_COMPLETE_CHECKOUT = """
if redis.call('HGET', KEYS[5], 'state') == 'paid' then return 0 end
for i = 5, #ARGV, 2 do
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
redis.call('HSET', KEYS[5], 'state', 'paid', 'order_id', ARGV[2])
redis.call('EXPIRE', KEYS[5], ARGV[3])
redis.call('DEL', KEYS[7])
if redis.call('GET', KEYS[6]) == ARGV[4] then redis.call('DEL', KEYS[6]) end
return 1
"""


@dataclass(frozen=True)
class CheckoutKeys:
    """The Redis keys of one checkout attempt: (user, client Idempotency-Key)."""

    user_id: str
    key: str

    @property
    def claim(self) -> str:
        return f"{PREFIX}:checkout:{self.user_id}:{self.key}"

    @property
    def lease(self) -> str:
        return f"{PREFIX}:checkout-lease:{self.user_id}:{self.key}"

    @property
    def lock(self) -> str:
        return f"{PREFIX}:checkout-lock:{self.user_id}"


def _product_sort_key(product_id: str) -> tuple[int, str]:
    return (int(product_id), "") if product_id.isdigit() else (1 << 62, product_id)


class CartStore:
    def __init__(self, client: redis.Redis):
        self.redis = client
        self._add = client.register_script(_ADD)
        self._set_quantity = client.register_script(_SET_QUANTITY)
        self._remove = client.register_script(_REMOVE)
        self._open = client.register_script(_OPEN_CLAIM)
        self._take_over = client.register_script(_TAKE_OVER)
        self._give_up = client.register_script(_GIVE_UP)
        self._release = client.register_script(_RELEASE)
        self._clear_stale_lock = client.register_script(_CLEAR_STALE_LOCK)
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

    # --- checkout claims and orders ---------------------------------------------------------------------------
    def read_claim(self, keys: CheckoutKeys) -> tuple[dict[str, str] | None, str | None]:
        """(the claim's fields or None, the lease holder's token or None)."""
        with self.redis.pipeline(transaction=True) as pipe:
            claim, lease = pipe.hgetall(keys.claim).get(keys.lease).execute()
        return claim or None, lease

    def open_claim(self, keys: CheckoutKeys, token: str, lease_s: int, retention_s: int,
                   fields: dict[str, str]) -> tuple[str, str]:
        """('opened', ''), ('claim', '') when the key was claimed meanwhile, ('lock', key of the checkout in
        flight) when another checkout of this cart holds it, or ('changed', '') when the cart no longer holds the
        claim's items."""
        flat = [part for item in fields.items() for part in item]
        priced = {item["product_id"]: item["quantity"] for item in json.loads(fields["items"])}
        outcome, holder = self._open(keys=[keys.claim, keys.lock, keys.lease, self._keys(keys.user_id)[0]],
                                     args=[keys.key, token, lease_s, retention_s, json.dumps(priced), *flat])
        return outcome, holder

    def take_over(self, keys: CheckoutKeys, token: str, lease_s: int) -> bool:
        return bool(self._take_over(keys=[keys.claim, keys.lease], args=[token, lease_s]))

    def give_up(self, keys: CheckoutKeys, token: str) -> None:
        self._give_up(keys=[keys.lease], args=[token])

    def release(self, keys: CheckoutKeys, token: str) -> None:
        self._release(keys=[keys.claim, keys.lock, keys.lease], args=[token, keys.key])

    def clear_stale_lock(self, user_id: str, holder: str) -> None:
        holding = CheckoutKeys(user_id, holder)
        self._clear_stale_lock(keys=[holding.lock, holding.claim], args=[holder])

    def complete(self, keys: CheckoutKeys, order: dict[str, Any], retention_s: int) -> bool:
        """Stores the order and removes what it bought from the cart; False when the claim was paid already."""
        pairs: list[Any] = []
        for item in order["items"]:
            pairs += [item["product_id"], item["quantity"]]
        qty_key, info_key = self._keys(keys.user_id)
        return bool(self._complete(
            keys=[qty_key, info_key, f"{PREFIX}:order:{order['order_id']}", f"{PREFIX}:user:{keys.user_id}:orders",
                  keys.claim, keys.lock, keys.lease],
            args=[json.dumps(order), order["order_id"], retention_s, keys.key, *pairs],
        ))

    def order(self, order_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(f"{PREFIX}:order:{order_id}")
        return json.loads(raw) if raw else None

    def orders_of(self, user_id: str, limit: int = 20) -> list[dict[str, Any]]:
        ids = self.redis.lrange(f"{PREFIX}:user:{user_id}:orders", 0, limit - 1)
        if not ids:
            return []
        raws = self.redis.mget([f"{PREFIX}:order:{oid}" for oid in ids])
        return [json.loads(raw) for raw in raws if raw]
