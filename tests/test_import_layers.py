"""The package layers of ``pyproject.toml`` (``[tool.importlinter]``) hold, and a wrong
arrow between packages fails ``lint-imports``: shown on a copy of the packages with one
forbidden import added."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "policies", "features", "training", "simulator", "serving", "cli")
LINT_IMPORTS = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the packages under ``root``, with its contracts."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )


def copy_packages(dest: Path) -> Path:
    """The seven packages (their Python sources) and ``pyproject.toml`` under ``dest``."""
    for name in PACKAGES:
        shutil.copytree(
            ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.so")
        )
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_the_contracts_are_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "arrow", "edge"),
    [
        ("features/events.py", "import serving", "features.events -> serving"),
        ("policies/rules.py", "import features.schema", "policies.rules -> features.schema"),
        ("training/ope/__init__.py", "import simulator", "training.ope -> simulator"),
        ("serving/settings.py", "import cli", "serving.settings -> cli"),
    ],
    ids=["features->serving", "policies->features", "training->simulator", "serving->cli"],
)
def test_a_wrong_arrow_fails_and_names_the_edge(
    tmp_path: Path, module: str, arrow: str, edge: str
) -> None:
    root = copy_packages(tmp_path)
    assert lint_imports(root).returncode == 0  # the copy itself is clean
    path = root / module
    path.write_text(path.read_text() + f"\n{arrow}  # a wrong arrow, on purpose\n")
    result = lint_imports(root)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert edge in result.stdout, result.stdout
