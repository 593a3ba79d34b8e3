"""The ``destinations:`` of ``$MAESTRO_HOME/triggers.yaml``: where triggered decisions go.

::

    destinations:
      crm_hook: {webhook: "http://127.0.0.1:9000/hook", secret_env: MAESTRO_WEBHOOK_SECRET}
      engine_stream: {redis_stream: "maestro:deliveries"}       # MAESTRO_DELIVERY_REDIS_URL
      other_stream: {redis_stream: "deliveries", redis_url: "redis://10.0.0.5:6379/0"}

A webhook destination signs each body with HMAC-SHA256 under the secret held in the
environment variable ``secret_env`` names (the secret itself never appears in a file, a log
or a ``repr``). A Redis Stream destination appends with ``XADD`` to ``redis_stream`` on
``redis_url``, else on the ``MAESTRO_DELIVERY_REDIS_URL`` setting. Everything is checked at
load: a bad entry, or a secret variable that is not set, stops start-up with one line
``file:line: problem`` (exit 2); nothing is half-loaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.delivery.errors import DeliveryConfigError

_NAME = re.compile(r"^[A-Za-z_][\w-]*$")
_WEBHOOK_KEYS = frozenset({"webhook", "secret_env"})
_STREAM_KEYS = frozenset({"redis_stream", "redis_url"})


@dataclass(frozen=True)
class WebhookDestination:
    """An HTTP(S) endpoint receiving signed POSTs; ``secret`` is the HMAC key (hidden)."""

    name: str
    url: str
    secret_env: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class StreamDestination:
    """A Redis Stream (``key`` on ``redis_url``) a journey engine consumes."""

    name: str
    key: str
    redis_url: str


Destination = WebhookDestination | StreamDestination


def load_destinations(
    path: str | Path,
    env: Mapping[str, str] | None = None,
    redis_url: str | None = None,
) -> dict[str, Destination]:
    """The destinations of the triggers file at ``path`` (none when it or the section is
    missing). ``env`` is where secrets are read (default: the process environment);
    ``redis_url`` is the default Redis of stream destinations.

    Raises :class:`DeliveryConfigError` (``file:line: problem``) on the first bad entry.
    """
    import yaml  # imported here: keep start-up light for commands that never deliver

    path = Path(path)
    if not path.exists():
        return {}
    env = os.environ if env is None else env
    try:
        root = yaml.compose(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise DeliveryConfigError(
            f"{path}{line}: invalid YAML ({getattr(exc, 'problem', exc)})"
        ) from exc
    section = _section(root, "destinations")
    if section is None:
        return {}
    if not isinstance(section, yaml.MappingNode):
        raise _fail(path, section, "destinations must be a mapping of name to destination")
    destinations: dict[str, Destination] = {}
    for key_node, value_node in section.value:
        name = key_node.value
        if not isinstance(key_node, yaml.ScalarNode) or not _NAME.match(str(name)):
            raise _fail(path, key_node, f"destination name {name!r} must be an identifier")
        if name in destinations:
            raise _fail(path, key_node, f"destination {name!r} is declared twice")
        destinations[name] = _destination(path, name, value_node, env, redis_url)
    return destinations


def _section(root: Any, name: str) -> Any:
    import yaml

    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name:
            return None if value.tag.endswith(":null") else value
    return None


def _fail(path: Path, node: Any, problem: str) -> DeliveryConfigError:
    return DeliveryConfigError(f"{path}:{node.start_mark.line + 1}: {problem}")


def _destination(
    path: Path, name: str, node: Any, env: Mapping[str, str], redis_url: str | None
) -> Destination:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise _fail(path, node, f"destination {name!r}: expected a mapping such as "
                                "{webhook: URL, secret_env: VAR} or {redis_stream: KEY}")
    entry: dict[str, Any] = {}
    for k, v in node.value:
        if not isinstance(v, yaml.ScalarNode) or v.tag.endswith(":null"):
            raise _fail(path, v, f"destination {name!r}: {k.value} must be a string")
        entry[str(k.value)] = (v.value, v)
    keys = set(entry)
    if "webhook" in keys and "redis_stream" not in keys:
        if keys - _WEBHOOK_KEYS:
            raise _fail(path, node, f"destination {name!r}: unknown keys "
                                    f"{sorted(keys - _WEBHOOK_KEYS)} (webhook, secret_env)")
        return _webhook(path, name, node, entry, env)
    if "redis_stream" in keys and "webhook" not in keys:
        if keys - _STREAM_KEYS:
            raise _fail(path, node, f"destination {name!r}: unknown keys "
                                    f"{sorted(keys - _STREAM_KEYS)} (redis_stream, redis_url)")
        return _stream(path, name, node, entry, redis_url)
    raise _fail(path, node, f"destination {name!r}: give exactly one of webhook or redis_stream")


def _webhook(
    path: Path, name: str, node: Any, entry: dict[str, Any], env: Mapping[str, str]
) -> WebhookDestination:
    url, url_node = entry["webhook"]
    if not str(url).startswith(("http://", "https://")):
        raise _fail(path, url_node, f"destination {name!r}: webhook must be an http:// or "
                                    f"https:// URL, got {url!r}")
    if "secret_env" not in entry:
        raise _fail(path, node, f"destination {name!r}: a webhook needs secret_env (the "
                                "environment variable holding its signing secret)")
    var, var_node = entry["secret_env"]
    secret = env.get(str(var), "")
    if not secret:
        raise _fail(path, var_node, f"destination {name!r}: environment variable {var} "
                                    "(its signing secret) is not set")
    return WebhookDestination(name, str(url), str(var), secret.encode())


def _stream(
    path: Path, name: str, node: Any, entry: dict[str, Any], default_url: str | None
) -> StreamDestination:
    key, key_node = entry["redis_stream"]
    if not str(key):
        raise _fail(path, key_node, f"destination {name!r}: redis_stream must name a key")
    url, url_node = entry.get("redis_url", (default_url, node))
    if not url:
        raise _fail(path, node, f"destination {name!r}: a redis_stream needs redis_url or "
                                "the MAESTRO_DELIVERY_REDIS_URL setting")
    if not str(url).startswith(("redis://", "rediss://", "unix://")):
        raise _fail(path, url_node, f"destination {name!r}: redis_url must be a "
                                    "redis://host:port/db URL")
    return StreamDestination(name, str(key), str(url))
