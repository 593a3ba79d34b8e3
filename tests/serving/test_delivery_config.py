"""``destinations:`` of triggers.yaml: the fixed shape loads; every bad entry is one line
naming the file and the line (exit 2), and the secret never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import EXIT_USAGE
from serving.delivery.config import StreamDestination, WebhookDestination, load_destinations
from serving.delivery.errors import DeliveryConfigError

GOOD = """\
segments:
  vip: "customer.lifetime_value > 2000"
destinations:
  crm_hook: {webhook: "http://127.0.0.1:9000/hook", secret_env: HOOK_SECRET}
  engine_stream: {redis_stream: "maestro:deliveries"}
  other: {redis_stream: "d", redis_url: "redis://10.0.0.5:6379/1"}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "triggers.yaml"
    path.write_text(text)
    return path


def test_the_issue_shape_loads(tmp_path: Path) -> None:
    found = load_destinations(write(tmp_path, GOOD), {"HOOK_SECRET": "s3cret-value"},
                              "redis://127.0.0.1:6379/0")
    hook = found["crm_hook"]
    assert isinstance(hook, WebhookDestination)
    assert hook.url == "http://127.0.0.1:9000/hook" and hook.secret == b"s3cret-value"
    assert "s3cret-value" not in repr(hook)
    assert found["engine_stream"] == StreamDestination(
        "engine_stream", "maestro:deliveries", "redis://127.0.0.1:6379/0")
    assert found["other"].redis_url == "redis://10.0.0.5:6379/1"  # type: ignore[union-attr]


def test_no_file_or_no_section_is_no_destination(tmp_path: Path) -> None:
    assert load_destinations(tmp_path / "missing.yaml", {}) == {}
    assert load_destinations(write(tmp_path, "segments: {}\n"), {}) == {}


BAD = [
    ("destinations:\n  h: {webhook: 'http://x/h', secret_env: NOT_SET}\n", 2,
     "environment variable NOT_SET"),
    ("destinations:\n  h: {webhook: 'ftp://x/h', secret_env: S}\n", 2, "http:// or https://"),
    ("destinations:\n  h: {webhook: 'http://x/h'}\n", 2, "needs secret_env"),
    ("destinations:\n  h: {webhook: 'http://x', secret_env: S, retries: 3}\n", 2,
     "unknown keys \\['retries'\\]"),
    ("destinations:\n  ok: {redis_stream: k, redis_url: 'redis://r'}\n"
     "  s: {redis_stream: k, webhook: 'http://x'}\n",
     3, "exactly one of webhook or redis_stream"),
    ("destinations:\n  s: {redis_stream: k}\n", 2, "needs redis_url or"),
    ("destinations:\n  s: {redis_stream: k, redis_url: 'http://r'}\n", 2, "redis://"),
    ("destinations:\n  s: just-a-string\n", 2, "expected a mapping"),
    ("destinations: [a, b]\n", 1, "must be a mapping"),
    ("destinations:\n  'bad name': {redis_stream: k, redis_url: 'redis://r'}\n", 2,
     "must be an identifier"),
    ("destinations:\n  h: {webhook: [1], secret_env: S}\n", 2, "webhook must be a string"),
    ("destinations:\n  h: {webhook: 'http://x'\n", 3, "invalid YAML"),
]


@pytest.mark.parametrize(("text", "line", "problem"), BAD, ids=[b[2][:30] for b in BAD])
def test_bad_destinations_fail_with_file_and_line(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DeliveryConfigError, match=problem) as caught:
        load_destinations(path, {"S": "secret"})
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: ") and "\n" not in message
    assert caught.value.exit_code == EXIT_USAGE
    assert "secret" not in message.replace("secret_env", "").replace("signing secret", "")


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"delivery_store": "redis"}, "needs MAESTRO_DELIVERY_REDIS_URL"),
    ({"delivery_redis_url": "http://r"}, "redis://"),
    ({"delivery_lease_seconds": 5.0, "delivery_timeout_seconds": 5.0}, "must exceed"),
    ({"delivery_backoff_seconds": 10.0, "delivery_backoff_max_seconds": 1.0}, "at least"),
    ({"delivery_max_attempts": 0}, "greater than or equal to 1"),
], ids=["redis-url", "url-scheme", "lease", "backoff", "attempts"])
def test_delivery_settings_are_checked_once(tmp_path: Path, overrides: dict, problem: str) -> None:
    from pydantic import ValidationError

    from serving.settings import Settings

    with pytest.raises(ValidationError, match=problem):
        Settings(home=tmp_path, **overrides)
    ok = Settings(home=tmp_path, delivery_store="redis", delivery_redis_url="redis://r:6379/0")
    assert ok.deliveries_db == tmp_path.absolute() / "deliveries.db"
