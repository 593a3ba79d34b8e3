"""The networked delivery outbox: Redis, shared by every replica of every node.

Per request a hash ``{p}r:<id>`` (the stored request, state, attempts, owner, reason, times);
one sorted set ``{p}q`` of the open requests scored by when they are next due (a pending
request: its due time; a leased one: its lease's end); per customer a set ``{p}c:<customer>``
of their open requests and a hash ``{p}s:<customer>`` of the cancelling events noted (type →
latest time); ``{p}dead`` the dead letters by time; ``{p}n`` the count per state. Every change
is one Lua script, atomic in Redis, so two replicas never lease the same request and a lost
lease cannot overwrite its successor's outcome. Keys of several requests are touched by one
script: this store needs one Redis (or a primary with replicas), not a Redis Cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from serving.delivery.errors import OutboxError
from serving.delivery.outbox import STATES, DeadLetter, Leased, decode, encode
from serving.delivery.ports import DeliveryRequest

_SEP = "\x1f"
#: finished requests (delivered, cancelled) and noted events are kept this long
KEEP_SECONDS = 7 * 86_400

# KEYS: r, q, c, n; ARGV: id, request, cancel_on, triggered_at, now, customer, owner|'',
# lease_until (enqueued leased to owner when owner is given)
_ENQUEUE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local leased = ARGV[7] ~= ''
redis.call('HSET', KEYS[1], 'req', ARGV[2], 'cancel_on', ARGV[3], 'triggered_at', ARGV[4],
           'enqueued_at', ARGV[5], 'state', leased and 'leased' or 'pending',
           'attempts', leased and 1 or 0, 'customer', ARGV[6], 'owner', ARGV[7])
redis.call('ZADD', KEYS[2], leased and ARGV[8] or ARGV[5], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[4], leased and 'leased' or 'pending', 1)
return 1
"""

# KEYS: q, n; ARGV: now, limit, lease_until, owner, prefix → {req, attempts, enqueued_at}...
_LEASE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  local r = ARGV[5] .. 'r:' .. id
  local state = redis.call('HGET', r, 'state')
  if state == 'pending' then
    redis.call('HINCRBY', KEYS[2], 'pending', -1)
    redis.call('HINCRBY', KEYS[2], 'leased', 1)
  end
  local attempts = redis.call('HINCRBY', r, 'attempts', 1)
  redis.call('HSET', r, 'state', 'leased', 'owner', ARGV[4])
  redis.call('ZADD', KEYS[1], ARGV[3], id)
  local fields = redis.call('HMGET', r, 'req', 'enqueued_at')
  table.insert(out, fields[1]); table.insert(out, attempts); table.insert(out, fields[2])
end
return out
"""

# KEYS: r, q, n, dead; ARGV: id, owner, attempt, state, reason, due, now, prefix, keep
_FINISH = """
local cur = redis.call('HMGET', KEYS[1], 'state', 'owner', 'attempts', 'customer')
if cur[1] ~= 'leased' or cur[2] ~= ARGV[2] or cur[3] ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[4], 'reason', ARGV[5], 'updated', ARGV[7])
redis.call('HINCRBY', KEYS[3], 'leased', -1)
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
if ARGV[4] == 'pending' then
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
  return 1
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', ARGV[8] .. 'c:' .. cur[4], ARGV[1])
if ARGV[4] == 'dead' then
  redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1])
else
  redis.call('EXPIRE', KEYS[1], ARGV[9])
end
return 1
"""

# KEYS: c, s, q, n; ARGV: type, at, now, prefix, keep → number cancelled
_NOTE = """
if redis.call('SCARD', KEYS[1]) == 0 then return 0 end
local seen = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '-1')
if tonumber(ARGV[2]) > seen then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) end
redis.call('EXPIRE', KEYS[2], ARGV[5])
local needle = '\\31' .. ARGV[1] .. '\\31'
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local r = ARGV[4] .. 'r:' .. id
  local f = redis.call('HMGET', r, 'state', 'cancel_on', 'triggered_at')
  if f[1] == 'pending' and tonumber(f[3]) < tonumber(ARGV[2])
     and string.find(f[2], needle, 1, true) then
    redis.call('HSET', r, 'state', 'cancelled', 'reason', 'event:' .. ARGV[1],
               'updated', ARGV[3])
    redis.call('EXPIRE', r, ARGV[5])
    redis.call('ZREM', KEYS[3], id)
    redis.call('SREM', KEYS[1], id)
    redis.call('HINCRBY', KEYS[4], 'pending', -1)
    redis.call('HINCRBY', KEYS[4], 'cancelled', 1)
    n = n + 1
  end
end
return n
"""

# KEYS: dead, q, n; ARGV: now, prefix, ids... → number re-queued
_REQUEUE = """
local n = 0
for i = 3, #ARGV do
  local id = ARGV[i]
  local r = ARGV[2] .. 'r:' .. id
  if redis.call('HGET', r, 'state') == 'dead' then
    redis.call('HSET', r, 'state', 'pending', 'attempts', 0, 'owner', '', 'reason', '')
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZADD', KEYS[2], ARGV[1], id)
    redis.call('SADD', ARGV[2] .. 'c:' .. redis.call('HGET', r, 'customer'), id)
    redis.call('HINCRBY', KEYS[3], 'dead', -1)
    redis.call('HINCRBY', KEYS[3], 'pending', 1)
    n = n + 1
  end
end
return n
"""


class RedisOutbox:
    """:class:`serving.delivery.outbox.Outbox` on Redis (see the module docstring).

    Parameters
    ----------
    url: str
        ``redis://host:port/db``.
    clock: callable
        Epoch seconds now (tests pass a fake clock).
    prefix: str
        Key prefix (tests give each outbox its own).
    """

    def __init__(
        self, url: str, clock: Callable[[], float] = time.time, prefix: str = "md:"
    ) -> None:
        import redis

        self._errors = (redis.RedisError, OSError)
        self.clock = clock
        self.prefix = prefix
        self._r = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._enqueue = self._r.register_script(_ENQUEUE)
        self._lease = self._r.register_script(_LEASE)
        self._finish_script = self._r.register_script(_FINISH)
        self._note = self._r.register_script(_NOTE)
        self._requeue = self._r.register_script(_REQUEUE)

    def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except self._errors as exc:
            raise OutboxError(f"delivery outbox (redis): {exc}") from exc

    def _do(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except self._errors as exc:
            raise OutboxError(f"delivery outbox (redis): {exc}") from exc

    # ------------------------------------------------------------------ the queue
    def enqueue(self, request: DeliveryRequest) -> None:
        self._insert(request, "", 0.0)

    def enqueue_leased(
        self, request: DeliveryRequest, lease_seconds: float, owner: str
    ) -> Leased | None:
        now = self._insert(request, owner, lease_seconds)
        return None if now is None else Leased(request, 1, owner, now)

    def _insert(self, request: DeliveryRequest, owner: str, lease_seconds: float) -> float | None:
        """Store ``request`` (leased to ``owner`` when given); its enqueue time, or None
        when its delivery id was there already."""
        p, cid, now = self.prefix, request.customer_id, self.clock()
        new = self._call(self._enqueue,
                         [f"{p}r:{request.delivery_id}", f"{p}q", f"{p}c:{cid}", f"{p}n"],
                         [request.delivery_id, encode(request),
                          _SEP + _SEP.join(request.cancel_on) + _SEP,
                          repr(request.triggered_at), repr(now), cid, owner,
                          repr(now + lease_seconds)])
        return now if new else None

    def note_event(self, customer_id: str, event_type: str, at: float) -> int:
        p = self.prefix
        return int(self._call(
            self._note, [f"{p}c:{customer_id}", f"{p}s:{customer_id}", f"{p}q", f"{p}n"],
            [event_type, repr(at), repr(self.clock()), p, KEEP_SECONDS]))

    # ------------------------------------------------------------------ the worker's side
    def lease(self, limit: int, lease_seconds: float, owner: str) -> list[Leased]:
        now = self.clock()
        rows = self._call(self._lease, [f"{self.prefix}q", f"{self.prefix}n"],
                          [repr(now), limit, repr(now + lease_seconds), owner, self.prefix])
        return [Leased(decode(rows[i]), int(rows[i + 1]), owner, float(rows[i + 2]))
                for i in range(0, len(rows), 3)]

    def _finish(self, item: Leased, state: str, reason: str, due: float) -> bool:
        p, rid = self.prefix, item.request.delivery_id
        return bool(self._call(
            self._finish_script, [f"{p}r:{rid}", f"{p}q", f"{p}n", f"{p}dead"],
            [rid, item.owner, item.attempt, state, reason, repr(due), repr(self.clock()), p,
             KEEP_SECONDS]))

    def delivered(self, item: Leased) -> bool:
        return self._finish(item, "delivered", "", self.clock())

    def retry(self, item: Leased, due: float, error: str) -> bool:
        return self._finish(item, "pending", error, due)

    def dead(self, item: Leased, reason: str) -> bool:
        return self._finish(item, "dead", reason, self.clock())

    def cancel(self, item: Leased, reason: str) -> bool:
        return self._finish(item, "cancelled", reason, self.clock())

    def cancelling_event(self, request: DeliveryRequest) -> str | None:
        if not request.cancel_on:
            return None
        seen = self._do(self._r.hmget, f"{self.prefix}s:{request.customer_id}",
                        list(request.cancel_on))
        for kind, at in zip(request.cancel_on, seen, strict=True):
            if at is not None and float(at) > request.triggered_at:
                return kind
        return None

    # ------------------------------------------------------------------ dead letters
    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        p = self.prefix
        ids = self._do(self._r.zrange, f"{p}dead", 0, limit - 1, False, True)
        out = []
        for raw_id, at in ids:
            fields = self._do(self._r.hmget, f"{p}r:{raw_id.decode()}", "req", "attempts",
                              "reason")
            if fields[0] is None:
                continue
            r = decode(fields[0])
            out.append(DeadLetter(r.delivery_id, r.trigger, r.destination, r.customer_id,
                                  int(fields[1]), fields[2].decode(), float(at)))
        return out

    def requeue(self, delivery_ids: Sequence[str]) -> int:
        p = self.prefix
        return int(self._call(self._requeue, [f"{p}dead", f"{p}q", f"{p}n"],
                              [repr(self.clock()), p, *delivery_ids]))

    def counts(self, states: Sequence[str] = STATES) -> dict[str, int]:
        raw = self._do(self._r.hgetall, f"{self.prefix}n")
        found = {k.decode(): int(v) for k, v in raw.items()}
        return {s: max(0, found.get(s, 0)) for s in states}

    def close(self) -> None:
        self._r.close()
