"""The dashboard in a real browser: Debian's headless Chromium (selenium + chromedriver)
against the live server fed by the simulator. The charts must render with data, the page
must refresh itself, and a screenshot is saved (``docs/dashboard.png`` is refreshed from
it when ``MAESTRO_UPDATE_DOCS=1``)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,2150",
)
DOCS_PNG = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:  # a failure, not a skip: `make test-deps` installs them
        pytest.fail(f"{', '.join(missing)} missing: run `make test-deps` "
                    "(apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _until(check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


_STATE_JS = """
const q = s => Array.from(document.querySelectorAll(s));
const text = id => document.getElementById(id).textContent;
return {
  rate: Number(text("kpi-rate")) || 0,
  total: Number(text("kpi-total")) || 0,
  p50: text("kpi-p50"), p99: text("kpi-p99"), degraded: text("kpi-degraded"),
  rate_path: (q("#rate-chart path.series")[0] || {getAttribute: () => ""}).getAttribute("d"),
  mix_bars: q("#mix-chart rect.bar").length,
  mix_channels: q("#mix-chart rect.bar").map(e => e.getAttribute("data-channel")),
  variants: q("#reward-chart rect.bar").map(e => e.getAttribute("data-variant")),
  means: q("#reward-chart rect.bar").map(e => Number(e.getAttribute("data-mean"))),
  ci_lines: q("#reward-chart line.ci").length,
  lift_rows: q("#lift-table tbody tr").length,
  latency_paths: q("#latency-chart path.series").length,
  degraded_paths: q("#degraded-chart path.series").length,
  champions: q("#champions tbody tr").map(r => r.cells[0].textContent),
  champion_versions: Object.fromEntries(q("#champions tbody tr").map(
    r => [r.cells[0].textContent, r.cells[2].textContent + "/" + r.cells[3].textContent])),
  history: q("#champion-history tbody tr").map(
    r => r.cells[1].textContent + "@" + r.cells[3].textContent),
};
"""


def _state(browser: Any) -> dict[str, Any]:
    """Everything the test checks, read in one script (the page re-renders every 2 s)."""
    return dict(browser.execute_script(_STATE_JS))


def test_dashboard_renders_live_data_in_chromium(
    live_server: Any, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    from client import MaestroClient
    from simulator.environment import EnvConfig, JourneyEnvironment
    from simulator.http_client import run_target

    live_server.wait_rolled()
    # keep traffic flowing while the page is open (the live series cover the last 2 min)
    stop = threading.Event()

    def feed() -> None:
        env = JourneyEnvironment(EnvConfig(customers=1000, customer_seed=7))
        with MaestroClient(live_server.base_url, api_key="exp-key-1234") as client:
            seed = 100
            while not stop.is_set():
                run_target(client, env, 40, seed=seed)
                seed += 1

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        # without the key the page is refused, like every endpoint but /healthz, /metrics
        browser.get(live_server.base_url + "/dashboard")
        assert "missing or invalid API key" in browser.find_element(By.TAG_NAME, "body").text
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd(
            "Network.setExtraHTTPHeaders",
            {"headers": {"Authorization": "Bearer exp-key-1234"}},
        )
        browser.get(live_server.base_url + "/dashboard")
        assert browser.title.startswith("Maestro")

        def refreshes() -> int:
            return int(browser.execute_script("return Number(document.body.dataset.refreshes||0)"))

        _until(lambda: refreshes() >= 1, what="the first refresh")
        status = browser.find_element(By.ID, "status").text
        assert status.startswith("updated"), status

        state = _until(lambda: _state(browser) if _state(browser)["rate"] > 0 else None,
                       what="a non-zero decision rate")
        # decisions per second: a line with one point per second of the window
        assert state["rate_path"].count("L") >= 100
        # channel mix: stacked bars of several channels
        assert state["mix_bars"] > 0
        assert len(set(state["mix_channels"])) >= 2, state["mix_channels"]
        # reward rate per variant with intervals, cart_abandoned's four variants included
        assert {"champion", "rules", "challenger", "holdout"} <= set(state["variants"])
        assert state["ci_lines"] >= 3 * len(state["means"]) - 3
        assert any(m != 0 for m in state["means"])
        assert state["lift_rows"] == len(state["means"])
        # latency percentiles and degraded rate are numbers
        assert 0 < float(state["p50"]) <= float(state["p99"])
        assert state["degraded"].endswith("%")
        assert state["latency_paths"] == 3 and state["degraded_paths"] == 1
        # the champion of every decision point
        assert set(state["champions"]) == set(live_server.service.catalog.names())
        # a promotion shows up: the registry's champion alias moves, the service swaps
        from training.tracking import set_champion

        version = live_server.challenger_version
        set_champion("cart_abandoned", version, live_server.tracking_uri)
        state = _until(
            lambda: (s := _state(browser))["champion_versions"]["cart_abandoned"]
            == f"{version}/champion" and s,
            what="the promoted champion on the page",
        )
        assert f"cart_abandoned@{version}" in state["history"]
        # the page refreshes itself and the totals move with the traffic
        before = refreshes()
        total = state["total"]
        _until(lambda: refreshes() >= before + 2, what="two more refreshes")
        _until(lambda: _state(browser)["total"] > total, what="a growing decision count")
        shot = tmp_path / "dashboard.png"
        assert browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000
        if os.environ.get("MAESTRO_UPDATE_DOCS") == "1":
            DOCS_PNG.parent.mkdir(exist_ok=True)
            shutil.copyfile(shot, DOCS_PNG)
        # no JavaScript errors on the way
        assert "error" not in browser.find_element(By.ID, "status").get_attribute("class")
    finally:
        stop.set()
        feeder.join(timeout=30)
