"""ROI assets: ticket resolutions, the measured impact of each fix, rolling ROI, follow-ups and the executive dashboard."""

import base64
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa

from feedback_assets import tables
from feedback_assets.alerts.evidence import customer_subject, series_items
from feedback_assets.alerts.ledger import DispatchLedger
from feedback_assets.alerts.resolutions import RESOLUTION_CODES
from feedback_assets.asset_defaults import DAILY_RANGED
from feedback_assets.classifications import CLASSIFICATIONS_KEY
from feedback_assets.labels import LABELS_KEY
from feedback_assets.enrichment.taxonomy import load_taxonomy
from feedback_assets.gold import METRICS_KEY, SERIES_COMMERCE_KEY, VELOCITY_KEY
from feedback_assets.roi.assumptions import AssumptionsError, load_assumptions, parse_assumptions
from feedback_assets.roi.dashboard import CHART_IDS, chart_pngs, render_dashboard
from feedback_assets.roi.dashboard_data import dashboard_data
from feedback_assets.roi.followup import FollowupOutbox, customers_of_fix, load_followup_messages
from feedback_assets.roi.impact import ImpactWindows
from feedback_assets.roi.measure import alert_delay, impact_by_day, parse_series_key, read_gold_history, ticket_delays
from feedback_assets.roi.metrics import PipelineCost, roi_figures
from feedback_assets.roi.resolutions import event_systems, resolution_rows, stored_events, write_resolutions
from feedback_assets.roi.schema import AFFECTED_CUSTOMERS, REMEDIATION_IMPACT, ROI_METRICS
from feedback_assets.window import days_in
from resources.settings import settings
from resources.table_store import TableStore

RESOLUTIONS_KEY = dg.AssetKey("ticket_resolutions")
IMPACT_KEY = dg.AssetKey("remediation_impact")
ROI_KEY = dg.AssetKey("roi_metrics")
AFFECTED_KEY = dg.AssetKey("affected_customers")
DASHBOARD_KEY = dg.AssetKey("executive_dashboard")

_ROI = {"group_name": "roi", "owners": ["team:voice-of-customer"], "tags": {"layer": "roi"}, **DAILY_RANGED}
# The measurement reads the pre-spike baseline (up to 56 days ending a week before the alert) and
# the longest window after a fix; this reach holds both for fixes of the last weeks.
MEASURE_REACH_DAYS = 120


def _trailing(days: int) -> dg.TimeWindowPartitionMapping:
    return dg.TimeWindowPartitionMapping(start_offset=-days, end_offset=0, allow_nonexistent_upstream_partitions=True)


def _days(context: dg.AssetExecutionContext) -> list[date]:
    return [date.fromisoformat(key) for key in context.partition_keys]


def _assumptions_path():
    return settings().config_dir / "roi_assumptions.yaml"


def resolutions_until(store: TableStore, day: date) -> list[dict]:
    """Every ticket resolution recorded on `day` or before."""
    days = [d for d in store.partition_days(tables.TICKET_RESOLUTIONS) if d <= day]
    rows = store.read_days(tables.TICKET_RESOLUTIONS, days) if days else None
    return [] if rows is None else rows.to_pylist()


def _write_days(store: TableStore, table: tables.Table, schema: pa.Schema, rows_by_day: dict[date, list[dict]]) -> None:
    for day, rows in rows_by_day.items():
        store.write_part(table, day, "rows", pa.Table.from_pylist(rows, schema=schema))


def _rows_per_day(context: dg.AssetExecutionContext, rows_by_day: dict[date, list]) -> None:
    """Each partition of a ranged run gets its own row count (a single day's is in the run's metadata)."""
    if len(rows_by_day) > 1:
        for day, rows in rows_by_day.items():
            context.add_asset_metadata({"dagster/row_count": len(rows)}, partition_key=day.isoformat())
    elif rows_by_day:
        context.add_output_metadata({"dagster/row_count": len(next(iter(rows_by_day.values())))})


def _png_markdown(title: str, png: bytes) -> str:
    return f"**{title}**\n\n![{title}](data:image/png;base64,{base64.b64encode(png).decode()})"


@dg.asset(key=RESOLUTIONS_KEY, kinds={"python"}, **_ROI)
def ticket_resolutions(context: dg.AssetExecutionContext, table_store: dg.ResourceParam[TableStore]):
    """Alert tickets by the day they were resolved, mitigated, deferred or closed as invalid, tied to the alert that opened them."""
    days = _days(context)
    events = stored_events(table_store)
    rows = resolution_rows(events, table_store, event_systems(table_store), days)
    write_resolutions(table_store, rows)
    everything = [r for day_rows in rows.values() for r in day_rows]
    by_code = {code: sum(r["code"] == code for r in everything) for code in RESOLUTION_CODES}
    unmatched = [r["ticket_key"] for r in everything if r["series_key"] is None]
    if unmatched:
        context.log.warning(f"resolved tickets not opened by an alert (no ledger entry): {unmatched}")
    _rows_per_day(context, rows)
    return dg.MaterializeResult(metadata={
        "resolutions": len(everything), "by_code": dg.MetadataValue.json(by_code),
        "events_known": len(events), "not_from_an_alert": dg.MetadataValue.json(unmatched),
        "tickets": dg.MetadataValue.md(_table([{k: r[k] for k in ("ticket_key", "code", "series_key", "days_to_fix", "note")}
                                               for r in everything][-20:])),
    })


def _table(rows: list[dict]) -> str:
    from feedback_assets.metadata import markdown_table

    return markdown_table(rows).value


@dg.asset(
    key=IMPACT_KEY, kinds={"python", "statsmodels"},
    deps=[dg.AssetDep(RESOLUTIONS_KEY, partition_mapping=_trailing(MEASURE_REACH_DAYS)),
          dg.AssetDep(METRICS_KEY, partition_mapping=_trailing(MEASURE_REACH_DAYS)),
          dg.AssetDep(SERIES_COMMERCE_KEY, partition_mapping=_trailing(MEASURE_REACH_DAYS)),
          dg.AssetDep(VELOCITY_KEY, partition_mapping=_trailing(MEASURE_REACH_DAYS))],
    check_specs=[dg.AssetCheckSpec("every_resolution_measured_per_window", asset=IMPACT_KEY, blocking=True,
                                   description="Each resolved ticket has one row per window; every complete window is measured or says why not.")],
    **_ROI,
)
def remediation_impact(context: dg.AssetExecutionContext, table_store: dg.ResourceParam[TableStore]):
    """Whether each fix worked: the series' complaint rate per 1k orders after the fix against its pre-spike baseline, with a 95% interval."""
    days, windows = _days(context), ImpactWindows()
    resolutions = [r for r in resolutions_until(table_store, days[-1]) if r["series_key"]]
    by_day = impact_by_day(table_store, resolutions, days, windows)
    _write_days(table_store, tables.REMEDIATION_IMPACT, REMEDIATION_IMPACT, by_day)
    _rows_per_day(context, by_day)
    last = by_day[days[-1]]
    expected = sum(r["resolved_at"].date() <= days[-1] for r in resolutions) * len(windows.after_windows)
    unexplained = [r for r in last if r["status"] != "complete" and not r.get("reason")]
    yield dg.MaterializeResult(metadata={
        "as_of": days[-1].isoformat(), "tickets_measured": len({r["ticket_key"] for r in last}),
        "complete_windows": sum(r["status"] == "complete" for r in last),
        "pending_windows": sum(r["status"] == "pending" for r in last),
        "verdicts": dg.MetadataValue.json(dict(sorted(
            {v: sum(r.get("verdict") == v for r in last) for v in ("improved", "inconclusive", "worse")}.items()))),
        "impact": dg.MetadataValue.md(_table([_impact_summary(r) for r in last])),
    })
    yield dg.AssetCheckResult(check_name="every_resolution_measured_per_window", passed=len(last) == expected and not unexplained,
                              metadata={"expected_rows": expected, "rows": len(last), "unexplained": len(unexplained)})


def _impact_summary(row: dict) -> dict:
    if row["status"] != "complete":
        return {"ticket": row["ticket_key"], "code": row["code"], "window": row["window_days"], "rate ratio": "-",
                "verdict": row["status"], "complaints avoided": "-", "note": row.get("reason") or ""}
    return {"ticket": row["ticket_key"], "code": row["code"], "window": row["window_days"],
            "rate ratio": f"{row['rate_ratio']:.2f} ({row['ci_low']:.2f}–{row['ci_high']:.2f})" if row["rate_ratio"] is not None else "-",
            "verdict": row["verdict"],
            "complaints avoided": f"{row['complaints_avoided']:.0f} ({row['avoided_low']:.0f}–{row['avoided_high']:.0f})",
            "note": f"naive before/after {row['naive_ratio']:.2f}" if row.get("naive_ratio") is not None else ""}


def pipeline_cost(instance: dg.DagsterInstance, start: date, end: date) -> PipelineCost:
    """LLM spend and tokens from the classification runs' metadata, and the hours of pipeline runs in [start, end]."""
    llm, tokens, classified = 0.0, 0, 0
    records = instance.fetch_materializations(dg.AssetRecordsFilter(CLASSIFICATIONS_KEY), limit=10_000).records
    seen_runs: set[str] = set()
    for record in records:
        materialization = record.asset_materialization
        day = date.fromisoformat(record.partition_key) if record.partition_key else None
        if materialization is None or day is None or not start <= day <= end or record.run_id in seen_runs:
            continue
        # A ranged run repeats its run-wide metadata on every partition: count each run once.
        seen_runs.add(record.run_id)
        meta = materialization.metadata
        llm += float(getattr(meta.get("estimated_cost_usd"), "value", 0.0) or 0.0)
        tokens += int(getattr(meta.get("prompt_tokens"), "value", 0) or 0) + int(getattr(meta.get("completion_tokens"), "value", 0) or 0)
        classified += int(getattr(meta.get("classified_now"), "value", 0) or 0)
    hours = 0.0
    for run_id in seen_runs | _runs_touching(instance, start, end):
        stats = instance.get_run_stats(run_id)
        if stats.start_time and stats.end_time:
            hours += (stats.end_time - stats.start_time) / 3600
    return PipelineCost(round(llm, 6), tokens, round(hours, 4), classified)


def _runs_touching(instance: dg.DagsterInstance, start: date, end: date) -> set[str]:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(METRICS_KEY), limit=10_000).records
    return {r.run_id for r in records if r.partition_key and start <= date.fromisoformat(r.partition_key) <= end}


@dg.asset(
    key=ROI_KEY, kinds={"python"},
    deps=[IMPACT_KEY, dg.AssetDep(RESOLUTIONS_KEY, partition_mapping=_trailing(MEASURE_REACH_DAYS)),
          dg.AssetDep(CLASSIFICATIONS_KEY, partition_mapping=_trailing(MEASURE_REACH_DAYS))],
    check_specs=[dg.AssetCheckSpec("roi_assumptions_valid", asset=ROI_KEY, blocking=True,
                                   description="roi_assumptions.yaml parses: every assumption has a value within its range, a unit and a source.")],
    **_ROI,
)
def roi_metrics(context: dg.AssetExecutionContext, table_store: dg.ResourceParam[TableStore]):
    """What the programme is worth as of each day over a rolling window: time to insight and fix, complaints, returns and contacts avoided, revenue protected, and its own cost, with ranges."""
    path = _assumptions_path()
    try:
        assumptions = parse_assumptions(path.read_bytes())
    except (AssumptionsError, OSError) as error:
        yield dg.AssetCheckResult(check_name="roi_assumptions_valid", passed=False, metadata={"error": str(error)})
        raise dg.Failure(f"{path}: {error}") from None
    days = _days(context)
    history = read_gold_history(table_store, days[-1])
    openings = [e for e in DispatchLedger(table_store).entries()
                if e.ticket_action == "created" and e.create_attempted_at is not None]
    by_day, summary = {}, []
    for day in days:
        start = day - timedelta(days=assumptions.rolling_days - 1)
        resolutions = [r for r in resolutions_until(table_store, day) if r["resolved_at"].date() >= start]
        impacts = (table_store.read_days(tables.REMEDIATION_IMPACT, [day]) or pa.table({})).to_pylist()
        alerts = [r for r in resolutions if r["alert_day"]]
        delays = [alert_delay(history, r["series_key"], r["alert_day"]) for r in alerts if history is not None]
        ticket_hours, replayed = ticket_delays((e.alert_day, e.create_attempted_at) for e in openings
                                               if start <= e.alert_day <= day)
        cost = pipeline_cost(context.instance, start, day)
        figures = roi_figures(impacts, resolutions, delays, cost, assumptions, ticket_hours, replayed)
        by_day[day] = [f.row((start, day)) for f in figures]
        summary = figures
    _write_days(table_store, tables.ROI_METRICS, ROI_METRICS, by_day)
    _rows_per_day(context, by_day)
    metadata: dict = {f.metric: float(f.value) for f in summary if f.value is not None}
    metadata["figures"] = dg.MetadataValue.md(_table([
        {"metric": f.metric, "value": _fmt(f.value), "range": f"{_fmt(f.low)}–{_fmt(f.high)}" if f.low is not None else "",
         "unit": f.unit, "basis": f.basis} for f in summary]))
    metadata["assumptions"] = dg.MetadataValue.md(_table([
        {"assumption": a.name, "value": a.value, "range": f"{a.low}–{a.high}", "unit": a.unit, "source": a.source}
        for a in assumptions.entries.values()]))
    metadata["assumptions_version"] = assumptions.version
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(check_name="roi_assumptions_valid", passed=True,
                              metadata={"assumptions": len(assumptions.entries), "version": assumptions.version})


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


@dg.asset(key=AFFECTED_KEY, kinds={"python"},
          deps=[RESOLUTIONS_KEY, dg.AssetDep(LABELS_KEY, partition_mapping=_trailing(MEASURE_REACH_DAYS))],
          **_ROI)
def affected_customers(context: dg.AssetExecutionContext, table_store: dg.ResourceParam[TableStore]):
    """The pseudonymized customers whose complaints led to each resolved fix, with a thank-you message per domain (written once to the follow-up outbox)."""
    config = settings()
    messages = load_followup_messages(config.config_dir / "followup_messages.yaml")
    labels = load_taxonomy().labels
    outbox = FollowupOutbox(config.feedback_home / "followup_outbox.jsonl")
    by_day, sent = {}, 0
    for day in _days(context):
        rows = []
        resolved = table_store.read_days(tables.TICKET_RESOLUTIONS, [day])
        for resolution in resolved.to_pylist() if resolved is not None else []:
            # Only a fix is news to customers: a mitigation or a deferral is not "your feedback led to a fix".
            if resolution["code"] != "resolved" or not resolution["series_key"]:
                continue
            label, dimension, value = parse_series_key(resolution["series_key"])
            complained = days_in(resolution["alert_day"] - timedelta(days=13), day)
            items = series_items(table_store, label, dimension, value, complained)
            domain = labels[label].domain if label in labels else "other"
            rows += customers_of_fix(items, resolution, domain, customer_subject(table_store, dimension, value, day), messages)
        sent += outbox.send(rows)
        by_day[day] = rows
    _write_days(table_store, tables.AFFECTED_CUSTOMERS, AFFECTED_CUSTOMERS, by_day)
    _rows_per_day(context, by_day)
    everything = [r for rows in by_day.values() for r in rows]
    return dg.MaterializeResult(metadata={
        "customers": len({r["customer_key"] for r in everything}), "messages_sent_now": sent,
        "outbox": dg.MetadataValue.path(str(outbox.path)),
        "by_ticket": dg.MetadataValue.json({k: sum(r["ticket_key"] == k for r in everything)
                                            for k in sorted({r["ticket_key"] for r in everything})}),
    })


@dg.asset(key=DASHBOARD_KEY, kinds={"python", "html"},
          deps=[ROI_KEY, IMPACT_KEY, VELOCITY_KEY, SERIES_COMMERCE_KEY,
                dg.AssetDep(METRICS_KEY, partition_mapping=_trailing(MEASURE_REACH_DAYS))],
          **_ROI)
def executive_dashboard(context: dg.AssetExecutionContext, table_store: dg.ResourceParam[TableStore]):
    """One offline HTML page for executives: complaints by domain, top priorities with revenue at risk, open tickets by SLA, each fix's measured effect and the ROI with its assumptions."""
    day = _days(context)[-1]
    history = read_gold_history(table_store, day)
    if history is None:
        raise dg.Failure("no gold data yet: materialize the gold group first")
    impacts = (table_store.read_days(tables.REMEDIATION_IMPACT, [day]) or pa.table({})).to_pylist()
    roi_rows = (table_store.read_days(tables.ROI_METRICS, [day]) or pa.table({})).to_pylist()
    data = dashboard_data(table_store, history, day, resolutions_until(table_store, day), impacts, roi_rows,
                          load_assumptions(_assumptions_path()))
    page = render_dashboard(data)
    folder = settings().feedback_home / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    dated, latest = folder / f"dashboard_{day.isoformat()}.html", folder / "dashboard.html"
    dated.write_text(page, encoding="utf-8")
    latest.write_text(page, encoding="utf-8")
    pngs = chart_pngs(data)
    titles = {"fix_impact": "Fix impact (rate ratio, 95% interval)", "roi_summary": "ROI summary",
              "top_priorities": "Top priorities"}
    metadata = {"as_of": day.isoformat(), "path": dg.MetadataValue.path(str(latest)),
                "generated_at": datetime.now(UTC).isoformat(timespec="seconds"), "bytes": len(page.encode())}
    for chart_id in ("fix_impact", "roi_summary", "top_priorities"):
        if chart_id in pngs and chart_id in CHART_IDS:
            metadata[f"chart_{chart_id}"] = dg.MetadataValue.md(_png_markdown(titles[chart_id], pngs[chart_id]))
    return dg.MaterializeResult(metadata=metadata)


roi_assets = [ticket_resolutions, remediation_impact, roi_metrics, affected_customers, executive_dashboard]
