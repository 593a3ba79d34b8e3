"""README's environment-variable table is the one generated from the settings object."""

from __future__ import annotations

import pytest

from serving.errors import SettingsDocError
from serving.settings import Settings
from serving.settings_doc import README, readme_table, settings_table, with_table


def test_readme_table_matches_settings() -> None:
    assert readme_table(README.read_text(encoding="utf-8")) == settings_table(), (
        "README's settings table is stale: run `make docs`"
    )


def test_every_field_has_a_row_with_its_env_name() -> None:
    table = settings_table()
    for name in Settings.model_fields:
        env = "MLFLOW_TRACKING_URI" if name == "mlflow_tracking_uri" else f"MAESTRO_{name.upper()}"
        assert f"| `{env}` |" in table


def test_a_stale_block_is_detected_and_rewritten() -> None:
    text = "intro\n<!-- settings:begin -->\n| old |\n<!-- settings:end -->\nrest\n"
    assert readme_table(text) != settings_table()
    rewritten = with_table(text, settings_table())
    assert readme_table(rewritten) == settings_table()
    assert rewritten.startswith("intro\n") and rewritten.endswith("rest\n")


def test_missing_markers_fail_loudly() -> None:
    with pytest.raises(SettingsDocError, match="settings:begin"):
        readme_table("no markers here")
