"""Payment's idempotency ledger, in a Redis of its own (payment-ledger) shared by every payment worker and instance.

One entry per Idempotency-Key, a Redis hash whose `state` moves only forward, each step one Lua script:

    (none) --begin--> processing --approve--> approved          (the charge, replayed for every repeat)
                          |  \\--release--> (none)               (declined, timed out, failed: nothing charged)
    (none) or processing --cancel--> cancelled                  (no charge can ever be made under this key)

So a repeat of an approved key is answered from the ledger whichever worker or version (v1, v2) it reaches; two
requests with one key never both charge (the second waits for the first); and once a caller has cancelled a key,
an attempt still running under it cannot approve. The caller (cart) cancels every attempt whose answer it did not
get, which turns "did it charge?" into a definite yes (the approval) or no.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

PREFIX = "ledger:payment:"
# A processing entry outlives the slowest attempt (delay_ms and timeout_seconds at their maxima, 60 s + 120 s): a
# payment worker that died mid-attempt frees its key by itself.
PROCESSING_TTL_S = 300

_BEGIN = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'processing', 'token', ARGV[1], 'fingerprint', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
  return {'started', '', ''}
end
return {state, redis.call('HGET', KEYS[1], 'fingerprint') or '', redis.call('HGET', KEYS[1], 'charge') or ''}
"""
_APPROVE = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'processing' or redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return state or 'gone' end
redis.call('HSET', KEYS[1], 'state', 'approved', 'charge', ARGV[2])
redis.call('HDEL', KEYS[1], 'token')
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 'approved'
"""
_RELEASE = """
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] and redis.call('HGET', KEYS[1], 'state') == 'processing' then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'approved' then return {'approved', redis.call('HGET', KEYS[1], 'charge')} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', 'cancelled')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {'cancelled', ''}
"""


@dataclass
class Entry:
    """What the ledger holds for a key: state `started` (this caller now holds it), processing, approved, cancelled."""

    state: str
    fingerprint: str = ""
    charge: dict[str, Any] | None = None


class Ledger:
    def __init__(self, client: redis.Redis, retention_s: int):
        self.retention_s = retention_s
        self._begin = client.register_script(_BEGIN)
        self._approve = client.register_script(_APPROVE)
        self._release = client.register_script(_RELEASE)
        self._cancel = client.register_script(_CANCEL)

    def begin(self, key: str, token: str, fingerprint: str) -> Entry:
        """Takes the key for this attempt (state `started`), or tells what the ledger already holds for it."""
        state, fingerprint_seen, charge = self._begin(keys=[PREFIX + key], args=[token, fingerprint, PROCESSING_TTL_S])
        return Entry(state, fingerprint_seen, json.loads(charge) if charge else None)

    def approve(self, key: str, token: str, charge: dict[str, Any]) -> str:
        """Records the charge if this attempt still holds the key: `approved`, else the state that stopped it."""
        return self._approve(keys=[PREFIX + key], args=[token, json.dumps(charge), self.retention_s])

    def release(self, key: str, token: str) -> None:
        """This attempt charged nothing: the key is free again."""
        self._release(keys=[PREFIX + key], args=[token])

    def cancel(self, key: str) -> Entry:
        """The approval if there is one; otherwise no charge will ever be made under this key."""
        state, charge = self._cancel(keys=[PREFIX + key], args=[self.retention_s])
        return Entry(state, charge=json.loads(charge) if charge else None)
