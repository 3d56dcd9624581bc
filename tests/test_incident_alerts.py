"""End to end on the seeded sample: each planted incident pages its owner within a day, the background barely.

The whole pipeline runs as `make demo` runs it (seed, land, one ranged run through gold with the
local classifier), then alerting is replayed day by day into the local ticket store and the Slack
outbox. This is the slowest test of the suite (a few minutes): it is the product's promise.
"""

from __future__ import annotations

import json
import shutil

from feedback_assets.alerts.evidence import AlertContext
from feedback_assets.alerts.replay import replay_alerts
from feedback_assets.enrichment.taxonomy import load_taxonomy
from feedback_assets.sample_data.incidents import fired_alerts, score_alerts
from resources.slack import SlackOutbox
from resources.table_store import LocalParquetTableStore
from resources.tickets import LocalTicketStore

# The steady background may page on chance alone, but rarely: below one alert per 1,000 series-weeks.
MAX_FALSE_ALERTS_PER_100_SERIES_WEEKS = 0.1


def test_every_planted_incident_alerts_within_a_day_of_onset_and_the_background_rarely(demo_home):
    manifest = json.loads((demo_home / "sample" / "manifest.json").read_text())
    alerts, series_weeks = fired_alerts(LocalParquetTableStore(root=str(demo_home / "warehouse")))
    domains = {label.id: label.domain for label in load_taxonomy().labels.values()}
    score = score_alerts(manifest, alerts, series_weeks, domains)
    late = {incident: delay for incident, delay in score.detection_delay.items() if delay is None or delay > 1}
    assert not late, f"incidents missed or late: {late}"
    assert score.false_alerts_per_100_series_weeks < MAX_FALSE_ALERTS_PER_100_SERIES_WEEKS, score.false_alerts


def test_the_demo_dispatched_through_runs_on_the_instance(demo_home):
    import dagster as dg

    from feedback_assets.alerts.ledger import POSTED, DispatchLedger

    entries = DispatchLedger(LocalParquetTableStore(root=str(demo_home / "warehouse"))).entries()
    with dg.DagsterInstance.from_config(str(demo_home.parent / "dagster_home")) as instance:
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="dispatch_alerts"))
        assert runs and all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        assert {run.tags["breach_key"] for run in runs} == {e.breach_key for e in entries if e.status == POSTED}
        assert all(run.tags["series_key"] == run.tags["breach_key"].rpartition("@")[0] for run in runs)


def test_the_replay_opens_one_owned_ticket_per_series_and_posts_each_once(demo_home, tmp_path):
    # The demo's own replay filled the ledger: replay afresh on a copy without it.
    shutil.copytree(demo_home / "warehouse", tmp_path / "warehouse", ignore=shutil.ignore_patterns("alerting"))
    store = LocalParquetTableStore(root=str(tmp_path / "warehouse"))
    tickets, slack = LocalTicketStore(tmp_path / "tickets"), SlackOutbox(tmp_path / "outbox.jsonl")
    outcomes = replay_alerts(store, tickets, slack, AlertContext("test-run", "http://dagster.example"))
    again = replay_alerts(store, tickets, slack, AlertContext("test-run-2", "http://dagster.example"))
    assert outcomes and all(o.ticket_action == "skipped" for o in again)
    rows = tickets.tickets()
    assert len({r["series_key"] for r in rows}) == len(rows)
    assert len(slack.messages()) == len(outcomes) and len({m["breach_key"] for m in slack.messages()}) == len(outcomes)
    # The jacket's sizing incident (its support tickets may page customer care on the same SKU too).
    taxonomy = load_taxonomy()
    jacket = next(r for r in rows if r["series_key"].endswith("sku=JKT-1042")
                  and taxonomy.domain_of(r["series_key"].partition(":")[0]) == "product_fit_expectations")
    assert jacket["project"] == taxonomy.labels["fit_cut_issue"].owner.jira_project
    body = tickets.path_of(jacket["key"]).read_text()
    assert "Suggested support reply" in body and "Alpine Shell Jacket" in body and "http://dagster.example" in body
