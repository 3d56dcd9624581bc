"""The loop closed on the demo: commerce on every ticket, the planted fixes resolved and measured honestly, the ROI
and the executive dashboard.

The demo plants two fixed incidents (the Android checkout bug, the jacket's size guide), one that
ends by itself (the carrier's backlog; its ticket is closed as mitigated all the same) and one that
is deferred (the earbuds). Credit must go to the first two only.
"""

from __future__ import annotations

import json
import os

import pytest

from feedback_assets import tables
from feedback_assets.roi.dashboard import CHART_IDS
from feedback_assets.sample_data.incidents import planned_resolutions
from resources.table_store import LocalParquetTableStore
from resources.tickets import LocalTicketStore
from tests.test_dashboard_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, PAGE_TIMEOUT_MS


def store(demo_home) -> LocalParquetTableStore:
    return LocalParquetTableStore(root=str(demo_home / "warehouse"))


def latest(demo_home, table) -> list[dict]:
    warehouse = store(demo_home)
    day = warehouse.partition_days(table)[-1]
    return warehouse.read_days(table, [day]).to_pylist()


def incident_of(demo_home) -> dict[str, str]:
    manifest = json.loads((demo_home / "sample" / "manifest.json").read_text())
    return {plan.ticket_key: plan.incident for plan in planned_resolutions(manifest, LocalTicketStore(demo_home / "tickets").tickets())}


def impacts_of(demo_home, incident: str) -> list[dict]:
    tickets = {key for key, planted in incident_of(demo_home).items() if planted == incident}
    rows = [r for r in latest(demo_home, tables.REMEDIATION_IMPACT) if r["ticket_key"] in tickets]
    assert rows, f"no measurement for {incident}"
    return rows


def test_the_checkout_tickets_carry_orders_revenue_at_risk_and_a_priority_above_the_sizing_ticket(demo_home):
    tickets = LocalTicketStore(demo_home / "tickets")
    incidents = incident_of(demo_home)
    rows = tickets.tickets()
    checkout = [row for row in rows if incidents.get(row["key"]) == "checkout_bug_android"]
    sizing = [row for row in rows if row["series_key"].endswith("sku=JKT-1042")]
    assert checkout and sizing
    for row in checkout:
        evidence = tickets.path_of(row["key"]).read_text().split("## Evidence")[1].split("\n## ")[0]
        assert "Orders through it, last 7 days" in evidence and "unknown" not in evidence, row["key"]
    order = ["Low", "Medium", "High", "Highest"]
    top = max(order.index(row["priority"]) for row in checkout)
    assert top >= order.index("High")
    assert all(top >= order.index(row["priority"]) for row in sizing)


def test_every_resolved_ticket_is_measured_per_window_and_complete_windows_say_how(demo_home):
    rows = latest(demo_home, tables.REMEDIATION_IMPACT)
    resolved = [r for day in store(demo_home).partition_days(tables.TICKET_RESOLUTIONS)
                for r in store(demo_home).read_days(tables.TICKET_RESOLUTIONS, [day]).to_pylist()]
    assert {r["ticket_key"] for r in rows} == {r["ticket_key"] for r in resolved}
    assert len(rows) == 3 * len(resolved)
    for row in rows:
        assert row["status"] in ("complete", "pending", "no_baseline")
        if row["status"] == "complete":
            assert row["ci_low"] is None or row["ci_low"] <= row["rate_ratio"] <= row["ci_high"]
        else:
            assert row["reason"], row


def test_the_fixes_that_worked_are_credited(demo_home):
    for incident in ("jacket_runs_small", "checkout_bug_android"):
        complete = [r for r in impacts_of(demo_home, incident) if r["status"] == "complete" and r["window_days"] == 28]
        assert any(r["verdict"] == "improved" and r["ci_high"] < 1 for r in complete), (incident, complete)


def test_a_problem_that_ended_by_itself_earns_no_credit_though_its_ticket_says_mitigated(demo_home):
    rows = [r for r in impacts_of(demo_home, "carrier_delay") if r["status"] == "complete"]
    assert rows and all(r["code"] == "mitigated" for r in rows)
    assert all(r["verdict"] != "improved" for r in rows), "regression to the mean is no fix"
    # What a naive before/after against the alert's peak would have claimed.
    assert any(r["naive_ratio"] is not None and r["naive_ratio"] < 0.6 for r in rows)


def test_the_deferred_problem_is_measured_as_the_reference_and_shows_it_goes_on(demo_home):
    rows = [r for r in impacts_of(demo_home, "earbuds_defect") if r["status"] == "complete"]
    assert rows and all(r["code"] == "deferred" and r["verdict"] == "worse" for r in rows)


def test_roi_credits_only_measured_fixes_and_keeps_ranges(demo_home):
    figures = {r["metric"]: r for r in latest(demo_home, tables.ROI_METRICS)}
    assert figures["fixes_credited"]["value"] >= 2 and figures["deferred_or_invalid_measured"]["value"] >= 1
    avoided = figures["complaints_avoided"]
    assert 0 < avoided["low"] <= avoided["value"] <= avoided["high"]
    assert figures["time_to_alert_days_median"]["value"] <= 1
    assert figures["net_benefit"]["assumptions"], "money figures name their assumptions"


def test_only_customers_of_resolved_fixes_get_a_follow_up_once_each(demo_home):
    outbox = [json.loads(line) for line in (demo_home / "followup_outbox.jsonl").read_text().splitlines()]
    incidents = incident_of(demo_home)
    assert outbox and {incidents.get(m["ticket_key"]) for m in outbox} <= {"jacket_runs_small", "checkout_bug_android"}
    assert len({(m["ticket_key"], m["customer_key"]) for m in outbox}) == len(outbox)
    assert all(len(m["customer_key"]) == 32 for m in outbox), "pseudonymized keys only"


def test_the_demo_tells_the_story_per_ticket_and_the_roi(demo_home):
    printed = (demo_home / "demo_output.txt").read_text()
    for expected in ("resolves the planted incidents' tickets", "28-day window: rate ratio", "no credit claimed",
                     "complaints_avoided", "net_benefit", "dashboard.html"):
        assert expected in printed, expected


@pytest.mark.skipif(not CHROMIUM.exists() and os.environ.get("FEEDBACK_REQUIRE_BROWSER") != "1",
                    reason="Debian chromium is not installed (CI installs it and sets FEEDBACK_REQUIRE_BROWSER=1)")
def test_the_demo_dashboard_renders_offline_in_chromium(demo_home):
    from playwright.sync_api import sync_playwright

    path = demo_home / "dashboard" / "dashboard.html"
    errors, foreign = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                   else (foreign.append(route.request.url), route.abort()))
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(path.as_uri(), wait_until="load")
        for chart_id in CHART_IDS:
            svg = page.locator(f"section.chart#{chart_id} svg")
            box = svg.bounding_box()
            assert box is not None and box["width"] > 100 and box["height"] > 50, chart_id
            assert svg.locator("path").count() > 0, chart_id
        assert page.locator("section.chart#fix_impact").get_by_text("nothing to show yet").count() == 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo_dashboard.png"), full_page=True)
        browser.close()
    assert errors == [] and foreign == []
    assert (ARTIFACTS / "demo_dashboard.png").stat().st_size > 10_000
