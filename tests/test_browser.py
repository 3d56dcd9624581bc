"""The operator's day in a real browser: `dagster dev` over a copy of the demo's instance, driven by Debian's Chromium.

Every wait is on page state (a locator, a status text), bounded by a timeout; screenshots of each
step are kept under `.test-artifacts/browser/` (or $FEEDBACK_TEST_ARTIFACTS).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest

from feedback_assets.alerts.ledger import POSTED, DispatchLedger
from feedback_assets.alerts.raised import dispatch_runs_url
from resources.table_store import LocalParquetTableStore
from tests.conftest import DEMO_END, REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
SERVER_START_TIMEOUT_S = 240
PAGE_TIMEOUT_MS = 90_000
RUN_TIMEOUT_MS = 480_000
ARTIFACTS = Path(os.environ.get("FEEDBACK_TEST_ARTIFACTS") or REPO / ".test-artifacts") / "browser"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("FEEDBACK_REQUIRE_BROWSER") != "1",
    reason="Debian chromium is not installed (CI installs it and sets FEEDBACK_REQUIRE_BROWSER=1)",
)

TIMINGS: dict[str, float] = {}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _location_loaded(base: str) -> bool:
    try:
        answer = _graphql(base, "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                                "locationOrLoadError { __typename } } } } }")
    except OSError:
        return False
    entries = answer.get("data", {}).get("workspaceOrError", {}).get("locationEntries") or []
    loaded = [e for e in entries if e["name"] == "feedback-to-fix" and e["loadStatus"] == "LOADED"]
    if loaded and loaded[0]["locationOrLoadError"]["__typename"] != "RepositoryLocation":
        raise AssertionError(f"the code location failed to load: {loaded[0]}")
    return bool(loaded)


@pytest.fixture(scope="module")
def ui(demo_home, tmp_path_factory):
    """`dagster dev -w workspace.yaml` on loopback over a copy of the demo's homes; yields the base URL and homes."""
    home = tmp_path_factory.mktemp("ui")
    shutil.copytree(demo_home, home / "feedback_home")
    shutil.copytree(demo_home.parent / "dagster_home", home / "dagster_home")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FEEDBACK_HOME": str(home / "feedback_home"), "DAGSTER_HOME": str(home / "dagster_home"),
           "DAGSTER_UI_URL": base}
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY",
                 "JIRA_URL", "SLACK_BOT_TOKEN", "FEEDBACK_PARTITIONS_START"):
        env.pop(name, None)
    log = (home / "dagster_dev.log").open("w")
    dagster = Path(sys.executable).parent / "dagster"
    started = time.monotonic()
    server = subprocess.Popen([str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while not _location_loaded(base):
            assert server.poll() is None, (home / "dagster_dev.log").read_text()[-3000:]
            assert time.monotonic() - started < SERVER_START_TIMEOUT_S, "dagster dev did not load the location in time"
            time.sleep(1)
        TIMINGS["dagster dev up, location loaded"] = time.monotonic() - started
        yield {"base": base, "feedback_home": home / "feedback_home"}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(home / "dagster_dev.log", ARTIFACTS / "dagster_dev.log")
        (ARTIFACTS / "timings.json").write_text(json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}, indent=2))


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser, ui, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    # The community sign-up dialog a fresh local instance shows would cover the page.
    context.add_init_script("window.localStorage.setItem('communityNux', 'true')")
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    started = time.monotonic()
    yield page
    TIMINGS[request.node.name] = time.monotonic() - started
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def _open(page, ui, path: str):
    page.goto(ui["base"] + path)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _dispatched(ui) -> list:
    ledger = DispatchLedger(LocalParquetTableStore(root=str(ui["feedback_home"] / "warehouse")))
    return sorted((e for e in ledger.entries() if e.status == POSTED), key=lambda e: e.breach_key)


def test_the_location_loads_and_the_graph_shows_every_group(page, ui):
    _open(page, ui, "/locations")
    page.get_by_role("link", name=re.compile("^feedback-to-fix")).wait_for()
    page.get_by_text("Loaded", exact=True).wait_for()
    _open(page, ui, "/asset-groups")
    for group in ("bronze", "silver", "enrichment", "gold"):
        page.get_by_text(group, exact=True).first.wait_for()
    assert page.get_by_text("Error loading").count() == 0


def test_a_velocity_day_that_alerted_shows_its_counts_charts_and_links(page, ui):
    alert = _dispatched(ui)[0]
    _open(page, ui, f"/assets/complaint_velocity?view=partitions&partition={alert.alert_day.isoformat()}")
    page.get_by_text("alerts_on_day").first.wait_for()
    page.get_by_text("[Show Markdown]").last.click()
    dialog = page.get_by_role("dialog").filter(has_text="alerts_raised")
    chart = dialog.locator('img[src^="data:image/png"]').first
    chart.wait_for()
    assert chart.evaluate("img => img.complete && img.naturalWidth") > 300
    links = dialog.get_by_role("link", name="Dispatch runs")
    links.first.wait_for()
    # The links were written when the demo ran, to DAGSTER_UI_URL (the default address): the query is what matters.
    # A day can raise several alerts; one of its links leads to this alert's dispatch runs.
    hrefs = [link.get_attribute("href") for link in links.all()]
    assert any(href.endswith(dispatch_runs_url("", alert.breach_key)) for href in hrefs), hrefs
    _shot(page, "velocity_day_chart")


def test_each_dispatch_run_is_on_the_instance_with_its_breach_and_series(page, ui):
    alert = _dispatched(ui)[0]
    _open(page, ui, dispatch_runs_url(ui["base"], alert.breach_key).removeprefix(ui["base"]))
    page.get_by_text("Success", exact=True).wait_for()
    assert page.get_by_role("link", name="dispatch_alerts", exact=True).count() == 1, "one run per breach"
    page.get_by_text(f"series_key: {alert.series_key}", exact=True).wait_for()
    page.get_by_text(f"breach_key: {alert.breach_key}", exact=True).wait_for()
    page.get_by_role("link", name="View", exact=True).click()
    page.get_by_text("ticket_action", exact=True).first.wait_for()
    _shot(page, "dispatch_run")


def test_the_automation_page_lists_the_daily_chain_and_both_sensors(page, ui):
    _open(page, ui, "/automation")
    for name in ("daily_chain", "velocity_alerts", "landing_sensor"):
        page.get_by_text(name, exact=True).wait_for()
    _open(page, ui, "/assets/complaint_velocity")
    page.get_by_text("when_inputs_change").first.wait_for()


def _feed_rows(page):
    """The rows of the Runs page (runs and backfills); they are no table rows, so they are found by their component."""
    return page.locator("[class*='RunsFeedRow_row']")


def _launch(page, ui, partitions: str, button: str) -> None:
    _open(page, ui, "/assets/complaint_velocity")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize")
    selection = dialog.get_by_placeholder("No matching partitions")
    selection.fill(partitions)
    selection.press("Enter")
    dialog.get_by_text("2 partitions" if "..." in partitions else "1 partition", exact=True).wait_for()
    dialog.get_by_role("button", name=button).click()


def test_one_partition_and_a_two_partition_backfill_launched_from_the_ui_succeed(page, ui):
    end = date.fromisoformat(DEMO_END)
    single, first, last = (end - timedelta(days=2)).isoformat(), (end - timedelta(days=1)).isoformat(), end.isoformat()

    started = time.monotonic()
    _launch(page, ui, single, "Launch 1 run")
    page.get_by_role("dialog").filter(has_text="Launch runs to materialize").wait_for(state="hidden")
    _open(page, ui, f"/runs?q%5B0%5D=tag%3Adagster%2Fpartition%3D{single}")
    # The daily chain may react to the new partition with runs of its own: this run is the one launched by hand.
    ours = _feed_rows(page).filter(has_text=f"partition: {single}").filter(has_text="Manually launched")
    ours.first.get_by_text("Success", exact=True).wait_for(timeout=RUN_TIMEOUT_MS)
    TIMINGS["one partition: launch to success"] = time.monotonic() - started
    _shot(page, "single_partition_run")

    started = time.monotonic()
    _launch(page, ui, f"[{first}...{last}]", "Launch backfill")
    page.get_by_role("dialog").filter(has_text="Launch runs to materialize").wait_for(state="hidden")
    _open(page, ui, "/runs?view=backfills")
    # The daily chain's own backfills (the roi group following the new velocity days) may be listed beside it.
    ours = _feed_rows(page).filter(has_text="complaint_velocity").filter(has_text="2 partitions")
    ours.first.get_by_text("Success", exact=True).wait_for(timeout=RUN_TIMEOUT_MS)
    TIMINGS["two-partition backfill: launch to completed"] = time.monotonic() - started
    _shot(page, "two_partition_backfill")
