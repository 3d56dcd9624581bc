"""The executive dashboard in a real browser: opened from a file with the network cut off, it asks for nothing,
logs no error, draws every chart, runs none of the hostile text it shows, and leaves a screenshot for review."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from feedback_assets.roi.dashboard import CHART_IDS, render_dashboard
from tests.conftest import REPO
from tests.test_dashboard import realistic_data

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PAGE_TIMEOUT_MS = 60_000
ARTIFACTS = Path(os.environ.get("FEEDBACK_TEST_ARTIFACTS") or REPO / ".test-artifacts")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and os.environ.get("FEEDBACK_REQUIRE_BROWSER") != "1",
    reason="Debian chromium is not installed (CI installs it and sets FEEDBACK_REQUIRE_BROWSER=1)",
)


@pytest.fixture(scope="module")
def opened(tmp_path_factory):
    """The realistic dashboard loaded in Chromium from a file:// URL; yields the page and what it tried to do."""
    from playwright.sync_api import sync_playwright

    path = tmp_path_factory.mktemp("dashboard") / "dashboard.html"
    path.write_text(render_dashboard(realistic_data()), encoding="utf-8")
    seen = {"aborted": [], "requested": [], "errors": [], "dialogs": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(PAGE_TIMEOUT_MS)

        def only_files(route) -> None:
            if route.request.url.startswith("file:"):
                route.continue_()
            else:
                seen["aborted"].append(route.request.url)
                route.abort()

        page.route("**/*", only_files)
        page.on("request", lambda request: seen["requested"].append(request.url))
        page.on("console", lambda message: message.type == "error" and seen["errors"].append(message.text))
        page.on("pageerror", lambda error: seen["errors"].append(str(error)))
        page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
        page.goto(path.as_uri(), wait_until="load")
        yield page, seen, path
        browser.close()


def test_the_page_loads_from_a_file_and_requests_nothing_else(opened):
    page, seen, path = opened
    assert seen["aborted"] == []
    assert [url for url in seen["requested"] if not url.startswith("file:")] == []
    assert page.title().startswith("Feedback-to-Fix executive dashboard")


def test_the_page_logs_no_errors_and_runs_none_of_the_hostile_text(opened):
    page, seen, _ = opened
    assert seen["errors"] == []
    assert seen["dialogs"] == []
    assert page.locator("img, script, iframe").count() == 0
    assert page.get_by_text("<img src=x onerror=alert(1)>").first.is_visible()


def test_every_chart_is_drawn_with_a_size_and_paths(opened):
    page, _, _ = opened
    charts = page.locator("section.chart svg")
    assert charts.count() == len(CHART_IDS)
    for chart_id in CHART_IDS:
        svg = page.locator(f"section.chart#{chart_id} svg")
        box = svg.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50, (chart_id, box)
        assert svg.locator("path").count() > 0, chart_id
        # Text is drawn as glyphs referenced by id: a reference to another chart or to nothing draws no text.
        assert svg.evaluate("s => [...s.querySelectorAll('use')].every("
                            "u => s.contains(document.getElementById(u.href.baseVal.slice(1))))"), chart_id
        assert svg.locator("use").count() > 0, chart_id


def test_the_tables_say_where_the_numbers_come_from(opened):
    page, _, _ = opened
    assert page.locator("#roi_table tbody tr").count() == len(realistic_data().roi)
    assert page.locator("#assumptions tbody tr").count() == len(realistic_data().assumptions)
    assert page.locator("#assumptions").get_by_text("finance rate card").is_visible()


def test_a_full_page_screenshot_is_kept_for_review(opened):
    page, _, path = opened
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    (ARTIFACTS / "dashboard.html").write_bytes(path.read_bytes())
    assert shot.stat().st_size > 10_000
