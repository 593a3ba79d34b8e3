"""Reads of Feast's Redis online store for :class:`~features.feast.source.FeastFeatureSource`.

Feast keeps all views of an entity in one hash (fields ``murmur3("<view>:<feature>")``
and ``_ts:<view>``, values Feast's ``ValueProto``), so one ``HMGET`` reads a customer.
Redis's socket timeouts are ``timeout`` seconds, without retries; past them, or when
Redis refuses connections, :class:`~features.errors.FeatureStoreUnavailable` is raised.
"""

from __future__ import annotations

from typing import Any

from features.errors import FeatureStoreUnavailable
from features.feast.row_format import Rows, proto_decoder
from features.feast.views import ViewSpec
from features.source import FeatureValue


def redis_client(connection_string: str, timeout: float) -> Any:
    """A ``redis.Redis`` client for Feast's Redis ``connection_string``
    (``host:port[,password=…][,username=…][,db=N]``), failing fast (no retries)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    host, _, rest = connection_string.partition(":")
    port, *options = rest.split(",") if rest else ("6379",)
    kwargs: dict[str, Any] = {}
    for opt in options:
        k, _, v = opt.partition("=")
        if k in {"password", "username"}:
            kwargs[k] = v
        elif k == "db":
            kwargs["db"] = int(v)
    return redis.Redis(
        host=host or "127.0.0.1",
        port=int(port),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        **kwargs,
    )


class RedisBackend:
    """Reads Feast's Redis hash of one customer with a single ``HMGET``."""

    def __init__(
        self, connection_string: str, project: str, views: list[ViewSpec], timeout: float
    ) -> None:
        from feast.infra.online_stores.helpers import _mmh3

        self.client = redis_client(connection_string, timeout)
        self.project = project.encode()
        # (fields, slots) of all views (key None) and of each view; a slot is
        # (view, feature), feature None for the view's ``_ts`` field
        self._fields: dict[str | None, tuple[list[bytes], list[tuple[str, str | None]]]] = {}
        every: tuple[list[bytes], list[tuple[str, str | None]]] = ([], [])
        for v in views:
            fields = [_mmh3(f"{v.name}:{f}") for f in v.features] + [f"_ts:{v.name}".encode()]
            slots: list[tuple[str, str | None]] = [(v.name, f) for f in v.features]
            slots.append((v.name, None))
            self._fields[v.name] = (fields, slots)
            every[0].extend(fields)
            every[1].extend(slots)
        self._fields[None] = every
        self._proto = proto_decoder({f: t for v in views for f, t in v.types.items()})

    def redis_key(self, key: bytes) -> bytes:
        return key + self.project

    def read(self, key: bytes, view: str | None = None) -> Rows:
        """Every view's row (or one view's)."""
        import redis
        from google.protobuf.timestamp_pb2 import Timestamp

        fields, slots = self._fields[view]
        try:
            values = self.client.hmget(self.redis_key(key), fields)
        except redis.RedisError as exc:
            raise FeatureStoreUnavailable(f"redis online store unreachable: {exc}") from exc
        features: dict[str, dict[str, FeatureValue]] = {}
        out: Rows = {}
        for (name, feature), raw in zip(slots, values, strict=True):
            if raw is None:
                continue
            if feature is None:
                ts = Timestamp()
                ts.ParseFromString(raw)
                out[name] = (ts.seconds + ts.nanos / 1e9, features.setdefault(name, {}))
            elif (decoded := self._proto(feature, raw)) is not None:
                features.setdefault(name, {})[feature] = decoded
        return out

    def ping(self) -> bool:
        import redis

        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        self.client.close()
