"""``maestro deliveries list|requeue`` on a workspace's outbox, and bad ``destinations:``
stopping ``maestro doctor`` with one line, exit 2 — each run as an operator runs it."""

from __future__ import annotations

import time
from pathlib import Path

from cli_run import maestro, workspace_env

from serving.delivery.ports import DeliveryRequest
from serving.state.outbox_sqlite import SQLiteOutbox


def dead_letters(home: Path, n: int) -> None:
    box = SQLiteOutbox(home / "deliveries.db")
    for i in range(n):
        box.enqueue(DeliveryRequest(f"d{i}", "cart", "crm_hook", f"c{i}", "default",
                                    {"event_id": f"d{i}"}, time.time()))
    for item in box.lease(n, 30.0, "w"):
        box.dead(item, "http_410")
    box.close()


def test_list_and_requeue_dead_letters(tmp_path: Path) -> None:
    env = workspace_env(tmp_path)
    dead_letters(tmp_path, 3)
    listed = maestro(["deliveries", "list"], env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 4 and all("crm_hook" in x and "http_410" in x for x in lines[:3])
    assert lines[3] == "outbox: pending 0, leased 0, delivered 0, cancelled 0, dead 3"
    one = maestro(["deliveries", "requeue", "d1"], env)
    assert one.returncode == 0 and one.stdout.strip() == "re-queued 1 dead letter(s)"
    rest = maestro(["deliveries", "requeue", "--all"], env)
    assert rest.stdout.strip() == "re-queued 2 dead letter(s)"
    after = maestro(["deliveries", "list"], env).stdout.strip().splitlines()
    assert after == ["outbox: pending 3, leased 0, delivered 0, cancelled 0, dead 0"]


def test_requeue_mistakes_are_one_line_exit_2(tmp_path: Path) -> None:
    env = workspace_env(tmp_path)
    dead_letters(tmp_path, 1)
    for args, problem in [
        ([], "name the dead letters"),
        (["nope"], "re-queued 0 of 1: the others are not dead letters"),
        (["d0", "--all"], "not both"),
    ]:
        done = maestro(["deliveries", "requeue", *args], env)
        assert done.returncode == 2
        assert done.stderr.startswith("maestro: error: ") and done.stderr.count("\n") == 1
        assert problem in done.stderr


def test_doctor_stops_on_a_bad_destination(tmp_path: Path) -> None:
    (tmp_path / "triggers.yaml").write_text(
        "destinations:\n  hook: {webhook: 'http://127.0.0.1:9/h', secret_env: UNSET_HOOK_VAR}\n")
    env = workspace_env(tmp_path)
    env.pop("UNSET_HOOK_VAR", None)
    done = maestro(["doctor"], env, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"maestro: error: {tmp_path / 'triggers.yaml'}:2: destination 'hook': environment "
        "variable UNSET_HOOK_VAR (its signing secret) is not set")
