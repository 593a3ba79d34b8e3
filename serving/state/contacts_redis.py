"""The networked contact store: Redis, shared by every replica of every node.

Per customer, a sorted set of contact keys scored by time (``mc:{cid}:h``), a hash of their
fields (``mc:{cid}:d``) and a version counter (``mc:{cid}:v``); per event id, the customer it
contacted (``mc:e:<id>``), a pending activation (``mc:p:<id>``) and the activation mark
(``mc:a:<id>``); per budget bucket, a sorted set of event ids scored by when their unit is
released (``+inf``: firm). A decision's read, its commit, an activation, a recorded or removed
contact are each one Lua script: one round trip each, atomic in Redis. Budget keys and a
customer's keys live in different hash slots, so this store needs one Redis (or a primary
with replicas), not a Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from policies.contact_rules import Contact
from serving.errors import ContactStoreError
from serving.state.contacts import Activation, Commit, Snapshot

_SEP = "\x1f"

# KEYS: h, d, v, buckets...; ARGV: since, now → {version, {key, ts, fields}..., used...}
_READ = """
local v = tonumber(redis.call('GET', KEYS[3]) or '0')
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES')
local out = {v, {}, {}}
for i = 1, #rows, 2 do
  table.insert(out[2], rows[i + 1])
  table.insert(out[2], redis.call('HGET', KEYS[2], rows[i]) or '')
end
for i = 4, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[2])
  table.insert(out[3], redis.call('ZCARD', KEYS[i]))
end
return out
"""

# KEYS: h, d; ARGV: since → {key, ts, fields}... oldest first
_TOUCHES = """
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES')
local out = {}
for i = 1, #rows, 2 do
  table.insert(out, rows[i])
  table.insert(out, rows[i + 1])
  table.insert(out, redis.call('HGET', KEYS[2], rows[i]) or '')
end
return out
"""

# insert one contact (shared by commit, record, activate); returns 1 when new
_INSERT = """
local function insert(h, d, v, e, key, ts, fields, cid, horizon, ttl)
  if redis.call('HEXISTS', d, key) == 1 then return 0 end
  redis.call('ZADD', h, ts, key)
  redis.call('HSET', d, key, fields)
  redis.call('INCR', v)
  redis.call('SET', e, cid, 'EX', ttl)
  local old = redis.call('ZRANGEBYSCORE', h, '-inf', '(' .. horizon)
  if #old > 0 then
    redis.call('ZREM', h, unpack(old))
    redis.call('HDEL', d, unpack(old))
  end
  return 1
end
"""

# KEYS: h, d, v, e, bucket, p; ARGV: version|'', event_id, ts, fields|'', max|'',
# expires|'', now, cid, horizon, ttl, pending_expires|''
_COMMIT = _INSERT + """
if ARGV[1] ~= '' and tonumber(redis.call('GET', KEYS[3]) or '0') ~= tonumber(ARGV[1]) then
  return 'conflict'
end
if ARGV[5] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', ARGV[7])
  if redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[5]) then return 'exhausted' end
  local score = ARGV[6] == '' and '+inf' or ARGV[6]
  redis.call('ZADD', KEYS[5], score, ARGV[2])
  redis.call('SET', KEYS[6] .. ':b', KEYS[5], 'EX', ARGV[10])
end
if ARGV[4] ~= '' then
  insert(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[2], ARGV[3], ARGV[4], ARGV[8], ARGV[9],
         ARGV[10])
end
if ARGV[11] ~= '' then
  local ttl = math.max(1, math.ceil(tonumber(ARGV[11]) - tonumber(ARGV[7])))
  redis.call('SET', KEYS[6], ARGV[8] .. '\\31' .. ARGV[3] .. '\\31' .. ARGV[12], 'EX', ttl)
end
return 'committed'
"""

# KEYS: h, d, v, e; ARGV: key, ts, fields, cid, horizon, ttl
_RECORD = _INSERT + """
return insert(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
              ARGV[6])
"""

# KEYS: a, p, e; ARGV: event_id, ttl, retention, prefix → {duplicate, counted}; the pending
# contact joins its customer's history in the same script
_ACTIVATE = _INSERT + """
if redis.call('EXISTS', KEYS[1]) == 1 then return {1, 0} end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
local b = redis.call('GET', KEYS[2] .. ':b')
if b then redis.call('ZADD', b, '+inf', ARGV[1]) end
local p = redis.call('GET', KEYS[2])
if not p then return {0, 0} end
redis.call('DEL', KEYS[2])
local i = string.find(p, '\\31', 1, true)
local rest = string.sub(p, i + 1)
local j = string.find(rest, '\\31', 1, true)
local cid, ts = string.sub(p, 1, i - 1), string.sub(rest, 1, j - 1)
local pre = ARGV[4] .. '{' .. cid .. '}:'
return {0, insert(pre .. 'h', pre .. 'd', pre .. 'v', KEYS[3], ARGV[1], ts,
                  string.sub(rest, j + 1), cid, tonumber(ts) - tonumber(ARGV[3]), ARGV[2])}
"""

# KEYS: e, p; ARGV: event_id, prefix → number removed
_REMOVE = """
local n = 0
local b = redis.call('GET', KEYS[2] .. ':b')
if b then n = n + redis.call('ZREM', b, ARGV[1]) end
n = n + redis.call('DEL', KEYS[2], KEYS[2] .. ':b')
local cid = redis.call('GET', KEYS[1])
if cid then
  local pre = ARGV[2] .. '{' .. cid .. '}:'
  if redis.call('ZREM', pre .. 'h', ARGV[1]) == 1 then
    redis.call('HDEL', pre .. 'd', ARGV[1])
    redis.call('INCR', pre .. 'v')
    n = n + 1
  end
end
return n
"""


def _fields(c: Contact) -> str:
    return _SEP.join((c.channel, c.action_id, c.offer, c.category))


class RedisContactStore:
    """:class:`serving.state.contacts.ContactStore` on Redis (see the module docstring).

    Parameters
    ----------
    url: str
        ``redis://host:port/db``.
    retention_seconds: float
        Contacts older than this are dropped as new ones are written.
    prefix: str
        Key prefix (tests give each store its own).
    """

    def __init__(
        self, url: str, retention_seconds: float = 90 * 86_400.0, prefix: str = "mc:"
    ) -> None:
        import redis

        self._errors = (redis.RedisError, OSError)
        self.retention_seconds = retention_seconds
        self.prefix = prefix
        self._r = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._read = self._r.register_script(_READ)
        self._touches = self._r.register_script(_TOUCHES)
        self._commit = self._r.register_script(_COMMIT)
        self._record = self._r.register_script(_RECORD)
        self._activate = self._r.register_script(_ACTIVATE)
        self._remove = self._r.register_script(_REMOVE)
        self._ttl = int(retention_seconds) + 1

    def _keys(self, customer_id: str) -> list[str]:
        pre = f"{self.prefix}{{{customer_id}}}:"  # one hash slot per customer
        return [pre + "h", pre + "d", pre + "v"]

    def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except self._errors as exc:
            raise ContactStoreError(f"contact store (redis): {exc}") from exc

    def read(
        self, customer_id: str, since: float, buckets: Sequence[str], now: float
    ) -> Snapshot:
        keys = self._keys(customer_id) + [f"{self.prefix}b:{b}" for b in buckets]
        version, rows, used = self._call(self._read, keys, [repr(since), repr(now)])
        history = tuple(
            Contact(float(rows[i]), *rows[i + 1].decode().split(_SEP))
            for i in range(0, len(rows), 2)
            if rows[i + 1]
        )
        return Snapshot(history, int(version), dict(zip(buckets, map(int, used), strict=True)))

    def touches(self, customer_id: str, since: float) -> list[tuple[str, Contact]]:
        h, d, _ = self._keys(customer_id)
        rows = self._call(self._touches, [h, d], [repr(since)])
        return [
            (rows[i].decode(), Contact(float(rows[i + 1]), *rows[i + 2].decode().split(_SEP)))
            for i in range(0, len(rows), 3)
            if rows[i + 2]
        ]

    def used(self, buckets: Sequence[str], now: float) -> dict[str, int]:
        try:
            pipe = self._r.pipeline(transaction=True)
            for b in buckets:
                pipe.zremrangebyscore(f"{self.prefix}b:{b}", "-inf", repr(now))
                pipe.zcard(f"{self.prefix}b:{b}")
            counts = pipe.execute()[1::2]
        except self._errors as exc:
            raise ContactStoreError(f"contact store (redis): {exc}") from exc
        return dict(zip(buckets, map(int, counts), strict=True))

    def commit(self, write: Commit, now: float) -> str:
        customer_id, event_id, version, contact, pending, reservation = write
        p = f"{self.prefix}p:{event_id}"
        bucket = f"{self.prefix}b:{reservation.bucket}" if reservation else p + ":nob"
        keys = [*self._keys(customer_id), f"{self.prefix}e:{event_id}", bucket, p]
        c = contact or (pending.contact if pending else None)
        args = [
            "" if version is None else version,
            event_id,
            repr(c.ts) if c else "",
            _fields(contact) if contact else "",
            "" if reservation is None else reservation.max,
            "" if reservation is None or reservation.expires is None else repr(reservation.expires),
            repr(now),
            customer_id,
            repr((c.ts if c else now) - self.retention_seconds),
            self._ttl,
            "" if pending is None else repr(pending.expires),
            "" if pending is None else _fields(pending.contact),
        ]
        return str(self._call(self._commit, keys, args).decode())

    def record(self, customer_id: str, key: str, contact: Contact) -> bool:
        keys = [*self._keys(customer_id), f"{self.prefix}e:{key}"]
        args = [key, repr(contact.ts), _fields(contact), customer_id,
                repr(contact.ts - self.retention_seconds), self._ttl]
        return bool(self._call(self._record, keys, args))

    def activate(self, event_id: str, now: float) -> Activation:
        keys = [f"{self.prefix}a:{event_id}", f"{self.prefix}p:{event_id}",
                f"{self.prefix}e:{event_id}"]
        args = [event_id, self._ttl, self.retention_seconds, self.prefix]
        duplicate, counted = self._call(self._activate, keys, args)
        return Activation(duplicate=bool(duplicate), counted=bool(counted))

    def activated(self, event_ids: Sequence[str]) -> set[str]:
        ids = list(event_ids)
        found: set[str] = set()
        try:
            for i in range(0, len(ids), 1000):
                chunk = ids[i : i + 1000]
                marks = self._r.mget([f"{self.prefix}a:{e}" for e in chunk])
                found.update(e for e, m in zip(chunk, marks, strict=True) if m is not None)
        except self._errors as exc:
            raise ContactStoreError(f"contact store (redis): {exc}") from exc
        return found

    def remove(self, event_id: str) -> bool:
        keys = [f"{self.prefix}e:{event_id}", f"{self.prefix}p:{event_id}"]
        return int(self._call(self._remove, keys, [event_id, self.prefix])) > 0

    def erase_customer(self, customer_id: str) -> dict[str, int]:
        h = self._keys(customer_id)[0]
        try:
            n = int(self._r.zcard(h))
            self._r.delete(*self._keys(customer_id))
        except self._errors as exc:
            raise ContactStoreError(f"contact store (redis): {exc}") from exc
        return {"contacts": n}

    def close(self) -> None:
        self._r.close()
