"""The networked identity store: Redis, shared by every replica of every node.

Per anonymous id, its customer (``mi:l:<anon>``, set once) and its journal of events (a
list, ``mi:j:<anon>``, capped at :data:`serving.state.identity.JOURNAL_LIMIT`); per customer,
the set of its anonymous ids (``mi:c:<cid>``). Linking, taking a journal and each erasure are
one Lua script each: atomic in Redis, one round trip.
"""

from __future__ import annotations

from typing import Any

from serving.errors import IdentityStoreError
from serving.state.identity import JOURNAL_LIMIT

# KEYS: link, customer set; ARGV: customer → the linked customer
_LINK = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local cid = redis.call('GET', KEYS[1])
if cid == ARGV[1] then redis.call('SADD', KEYS[2], ARGV[2]) end
return cid
"""
# KEYS: journal
_TAKE = """
local rows = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return rows
"""
# KEYS: customer set → {links, events}
_ERASE_CUSTOMER = """
local anon = redis.call('SMEMBERS', KEYS[1])
local events = 0
for _, a in ipairs(anon) do
  events = events + redis.call('LLEN', 'mi:j:' .. a)
  redis.call('DEL', 'mi:j:' .. a, 'mi:l:' .. a)
end
redis.call('DEL', KEYS[1])
return {#anon, events}
"""
# KEYS: link, journal; ARGV: anon → {links, events}
_ERASE_ANONYMOUS = """
local cid = redis.call('GET', KEYS[1])
local events = redis.call('LLEN', KEYS[2])
redis.call('DEL', KEYS[1], KEYS[2])
if cid then redis.call('SREM', 'mi:c:' .. cid, ARGV[1]) return {1, events} end
return {0, events}
"""


class RedisIdentityStore:
    """:class:`serving.state.identity.IdentityStore` on one Redis (not a Cluster: an
    erasure touches keys of several anonymous ids in one script)."""

    def __init__(self, url: str) -> None:
        import redis

        self._errors: tuple[type[BaseException], ...] = (redis.RedisError,)
        self._r = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._link = self._r.register_script(_LINK)
        self._take = self._r.register_script(_TAKE)
        self._erase_customer = self._r.register_script(_ERASE_CUSTOMER)
        self._erase_anonymous = self._r.register_script(_ERASE_ANONYMOUS)

    def _call(self, fn, *args: Any, **kwargs: Any) -> Any:  # type: ignore[no-untyped-def]
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            raise IdentityStoreError(f"identity store: {exc}") from exc

    def link(self, anonymous_id: str, customer_id: str) -> str:
        keys = [f"mi:l:{anonymous_id}", f"mi:c:{customer_id}"]
        return bytes(self._call(self._link, keys=keys, args=[customer_id, anonymous_id])).decode()

    def resolve(self, anonymous_id: str) -> str | None:
        value = self._call(self._r.get, f"mi:l:{anonymous_id}")
        return None if value is None else bytes(value).decode()

    def anonymous_ids(self, customer_id: str) -> list[str]:
        members = self._call(self._r.smembers, f"mi:c:{customer_id}")
        return sorted(bytes(a).decode() for a in members)

    def journal(self, anonymous_id: str, event: bytes) -> None:
        key = f"mi:j:{anonymous_id}"
        pipe = self._r.pipeline(transaction=True)
        pipe.rpush(key, event)
        pipe.ltrim(key, -JOURNAL_LIMIT, -1)
        self._call(pipe.execute)

    def take_journal(self, anonymous_id: str) -> list[bytes]:
        return [bytes(e) for e in self._call(self._take, keys=[f"mi:j:{anonymous_id}"])]

    def erase_customer(self, customer_id: str) -> dict[str, int]:
        links, events = self._call(self._erase_customer, keys=[f"mi:c:{customer_id}"])
        return {"identity_links": int(links), "anonymous_events": int(events)}

    def erase_anonymous(self, anonymous_id: str) -> dict[str, int]:
        keys = [f"mi:l:{anonymous_id}", f"mi:j:{anonymous_id}"]
        links, events = self._call(self._erase_anonymous, keys=keys, args=[anonymous_id])
        return {"identity_links": int(links), "anonymous_events": int(events)}

    def close(self) -> None:
        self._r.close()
