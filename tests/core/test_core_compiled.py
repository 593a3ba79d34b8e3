"""One import pattern for compiled hot loops (``core.compiled``), and an install without a
compiler: ``setup.py`` builds every ``_*.pyx`` as an optional extension, so a failed
compile warns and the build goes on, and every module then runs on its Python twin."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.compiled import compiled_module, compiled_or

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "policies", "features", "serving", "training", "simulator")


def _pyx() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("_*.pyx"))


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_compiled_or_falls_back_only_for_a_missing_extension(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "twinpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "_built.py").write_text("def f():\n    return 'compiled'\n")
    (pkg / "_broken.py").write_text("import twinpkg_no_such_library\n")
    (pkg / "_needs_other.py").write_text("from twinpkg._not_built import g\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def twin() -> str:
        return "twin"

    assert compiled_or("twinpkg._built", "f", twin)() == "compiled"
    assert compiled_or("twinpkg._not_built", "f", twin) is twin
    assert compiled_module("twinpkg._not_built") is None
    # another compiled module it needs is not built either: the twin
    assert compiled_or("twinpkg._needs_other", "f", twin) is twin
    # built, but something it needs is missing: a broken install fails loudly
    with pytest.raises(ModuleNotFoundError, match="twinpkg_no_such_library"):
        compiled_or("twinpkg._broken", "f", twin)


def test_every_compiled_module_is_imported_through_core_compiled() -> None:
    """Each ``_*.pyx`` (sub-packages included) is picked by ``compiled_or`` or
    ``compiled_module`` somewhere, and no module imports one behind ``except ImportError``."""
    sources = "\n".join(
        p.read_text() for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
    )
    picked = set(re.findall(r'compiled_(?:or|module)\(\s*"([\w.]+)"', sources))
    modules = {_dotted(p) for p in _pyx()}
    assert "policies.vw._shared" in modules
    assert modules <= picked, modules - picked
    assert not re.search(r"from [\w.]+\._\w+ import .*\n\s*except ImportError", sources)


def _copy_sources(dest: Path) -> None:
    """The project's build inputs (no compiled modules), with the generated C files when
    a previous build left them, so only the C compiler's step is left to fail."""
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("*.so", "*.pyd", "__pycache__", "*.html")
    for pkg in (*PACKAGES, "cli"):
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=ignore)
    for pyx in _pyx():  # keep a generated C file newer than its source: no re-cythonize
        c = pyx.with_suffix(".c")
        if c.exists() and c.stat().st_mtime >= pyx.stat().st_mtime:
            os.utime(dest / c.relative_to(ROOT))


#: one seeded vw-cb decision, printed (run on the twins and on the compiled modules)
_DECIDE = """
from policies.registry import make_policy
from policies.types import Action, Context
policy = make_policy("vw-cb", seed=1)
decision = policy.decide(
    Context("c-1", {"tier": "gold", "spend": 3.5, "seen_ts": 1.6e9}, {"page": "cart"},
            "default", 1.7e9),
    [Action("a", "email"), Action("b", "sms"), Action("c", "push")],
    seed=12345,
    event_id="e-1",
)
print(repr(decision))
"""

_TWINS = """
import sys
# the project's own editable install would find the source tree's built extensions
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in f.__module__]
from policies import draw, routing
from policies.vw import shared
from simulator import customers, draws, economics
from training import columns, data
from training.logs import reader
assert draw.__file__.startswith(sys.argv[1]), draw.__file__
assert draw.finish is draw.finish_py
assert routing.case_reason is routing.case_reason_py
assert routing.sent_agents is routing.sent_agents_py
assert shared.fill is shared.fill_py and shared.aged_values is shared.aged_values_py
assert customers._refresh is customers.refresh_py
assert draws.Draws is draws.NumpyDraws
assert economics.truth_loop is economics.truth_loop_py
assert columns._compiled is None and data.join_rows is reader.join_rows_py
"""


def test_a_build_without_a_compiler_warns_and_the_twins_run(tmp_path: Path) -> None:
    """``setup.py build_ext`` with a C compiler that always fails exits 0, builds no
    extension, and the package then imports and decides on the pure-Python twins."""
    _copy_sources(tmp_path)
    env = {**os.environ, "CC": "/bin/false", "CXX": "/bin/false", "PYTHONPATH": str(tmp_path)}
    build = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    out = build.stdout + build.stderr
    for pyx in _pyx():
        assert f'building extension "{_dotted(pyx)}" failed' in out, _dotted(pyx)
    assert not list(tmp_path.rglob("*.so")) and not list(tmp_path.rglob("*.pyd"))
    run = subprocess.run(
        [sys.executable, "-c", _TWINS + _DECIDE, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    compiled = subprocess.run(
        [sys.executable, "-c", _DECIDE], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert compiled.returncode == 0, compiled.stderr[-2000:]
    assert run.stdout == compiled.stdout  # the same decision, ranking and probabilities


def test_the_extension_list_is_every_pyx() -> None:
    """``core.compiled.EXTENSIONS`` (what ``maestro doctor`` checks) names every ``_*.pyx``."""
    from core.compiled import EXTENSIONS

    assert sorted(EXTENSIONS) == sorted(_dotted(p) for p in _pyx())
