"""The networked timer store: Redis, shared by every replica of every node.

A sorted set of timer ids scored by when each is ready (``mt:ready``: its due time, or the
end of its claim's lease), a hash per timer (``mt:t:<id>``), a set per customer's run of
one trigger (``mt:r:<trigger>:<customer>``) and a set of the triggers with a run per
customer (``mt:c:<customer>``). Schedule, cancel, claim and done are each one Lua script:
one round trip, atomic in Redis. Keys are built inside the scripts, so this store needs one
Redis (or a primary with replicas), not a Redis Cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from serving.errors import TimerStoreError
from serving.state.timers import Timer

_SEP = "\x1f"

_LIB = """
local P = ARGV[1]
local function run_key(trigger, cid) return P .. 'r:' .. trigger .. '\\31' .. cid end
local function drop(id)
  redis.call('ZREM', P .. 'ready', id)
  redis.call('DEL', P .. 't:' .. id)
end
local function drop_run(trigger, cid)
  local rk = run_key(trigger, cid)
  local ids = redis.call('SMEMBERS', rk)
  for _, id in ipairs(ids) do drop(id) end
  redis.call('DEL', rk)
  redis.call('SREM', P .. 'c:' .. cid, trigger)
  return #ids
end
"""

# ARGV: prefix, trigger, customer, then (id, step, due, created) per timer
_SCHEDULE = _LIB + """
local trigger, cid = ARGV[2], ARGV[3]
local n = drop_run(trigger, cid)
local rk = run_key(trigger, cid)
for i = 4, #ARGV, 4 do
  local id = ARGV[i]
  redis.call('HSET', P .. 't:' .. id, 'trigger', trigger, 'step', ARGV[i + 1], 'customer', cid,
             'due', ARGV[i + 2], 'created', ARGV[i + 3], 'attempts', 0, 'token', '')
  redis.call('ZADD', P .. 'ready', ARGV[i + 2], id)
  redis.call('SADD', rk, id)
end
redis.call('SADD', P .. 'c:' .. cid, trigger)
return n
"""

# ARGV: prefix, customer, triggers... ('' for every trigger of the customer)
_CANCEL = _LIB + """
local cid = ARGV[2]
local names = {}
if ARGV[3] == '' then names = redis.call('SMEMBERS', P .. 'c:' .. cid)
else for i = 3, #ARGV do table.insert(names, ARGV[i]) end end
local n = 0
for _, trigger in ipairs(names) do n = n + drop_run(trigger, cid) end
return n
"""

# ARGV: prefix, now, lease_until, limit, token
_CLAIM = _LIB + """
local ids = redis.call('ZRANGEBYSCORE', P .. 'ready', '-inf', ARGV[2], 'LIMIT', 0, ARGV[4])
local out = {}
for _, id in ipairs(ids) do
  local h = P .. 't:' .. id
  redis.call('ZADD', P .. 'ready', ARGV[3], id)
  local attempts = redis.call('HINCRBY', h, 'attempts', 1)
  redis.call('HSET', h, 'token', ARGV[5])
  local f = redis.call('HMGET', h, 'trigger', 'step', 'customer', 'due', 'created')
  table.insert(out, {id, f[1], f[2], f[3], f[4], f[5], attempts})
end
return out
"""

# ARGV: prefix, id, token
_DONE = _LIB + """
local h = P .. 't:' .. ARGV[2]
if redis.call('HGET', h, 'token') ~= ARGV[3] then return 0 end
local f = redis.call('HMGET', h, 'trigger', 'customer')
drop(ARGV[2])
local rk = run_key(f[1], f[2])
redis.call('SREM', rk, ARGV[2])
if redis.call('SCARD', rk) == 0 then redis.call('SREM', P .. 'c:' .. f[2], f[1]) end
return 1
"""


class RedisTimerStore:
    """:class:`serving.state.timers.TimerStore` over one Redis (``redis://host:port/db``);
    ``prefix`` keeps several workspaces (or tests) apart in one Redis."""

    def __init__(self, url: str, prefix: str = "mt:") -> None:
        import redis

        self._errors = (redis.RedisError, OSError)
        self.prefix = prefix
        self._r = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._schedule = self._r.register_script(_SCHEDULE)
        self._cancel = self._r.register_script(_CANCEL)
        self._claim = self._r.register_script(_CLAIM)
        self._done = self._r.register_script(_DONE)

    def _call(self, script: Any, *args: Any) -> Any:
        try:
            return script(keys=[], args=[self.prefix, *args])
        except self._errors as exc:
            raise TimerStoreError(f"timer store (redis): {exc}") from exc

    def schedule(self, timers: Sequence[Timer]) -> int:
        if not timers:
            return 0
        args: list[Any] = [timers[0].trigger, timers[0].customer_id]
        for t in timers:
            args += [t.timer_id, t.step, repr(t.due_at), repr(t.created_at)]
        return int(self._call(self._schedule, *args))

    def cancel(self, customer_id: str, triggers: Collection[str]) -> int:
        names = list(triggers)
        if not names:
            return 0
        return int(self._call(self._cancel, customer_id, *names))

    def claim(self, now: float, replica: str, lease_seconds: float, limit: int) -> list[Timer]:
        token = f"{replica}@{uuid.uuid4().hex[:12]}"
        rows = self._call(self._claim, repr(now), repr(now + lease_seconds), limit, token)
        timers = [
            Timer(r[0].decode(), r[1].decode(), int(r[2]), r[3].decode(), float(r[4]),
                  float(r[5]), int(r[6]), token)
            for r in rows
        ]
        return sorted(timers, key=lambda t: t.due_at)

    def done(self, timer: Timer) -> bool:
        return bool(self._call(self._done, timer.timer_id, timer.token))

    def pending(self) -> int:
        try:
            return int(self._r.zcard(self.prefix + "ready"))
        except self._errors as exc:
            raise TimerStoreError(f"timer store (redis): {exc}") from exc

    def erase_customer(self, customer_id: str) -> int:
        return int(self._call(self._cancel, customer_id, ""))

    def close(self) -> None:
        self._r.close()
