"""`feedback`: project commands for sample data, landing exports, running the pipeline and reading results."""

from __future__ import annotations

import json
import os
import uuid
import warnings
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from feedback_assets.cli_analyst import backfill, taxonomy_app, triage_app
from feedback_assets.cli_eval import evaluate_sets
from feedback_assets.landing.mapping import MappingError, preset_names, resolve_source
from feedback_assets.landing.registry import DateOptions, LandingRegistry
from partitions import PARTITIONS_START, START_FILE_NAME
from resources.settings import Settings, settings
from resources.table_store import configured_table_store

app = typer.Typer(
    help="Feedback-to-Fix: turn customer feedback into prioritized, owned, measurable fixes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEFAULT_GROUPS = ["bronze", "silver", "enrichment", "gold"]
ROI_GROUP = "roi"


class Backend(StrEnum):
    auto = "auto"
    local = "local"
    openai = "openai"


@app.callback()
def main() -> None:
    """Feedback-to-Fix project commands (FEEDBACK_HOME and DAGSTER_HOME say where state lives)."""
    import dagster as dg

    # Beta/preview notices about Dagster parameters are for developers, not for people running commands.
    for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
        warnings.filterwarnings("ignore", category=category)


def _parse_day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-10-01", param_hint=option) from None


def _yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def _registry(config: Settings, settle_seconds: float | None = None) -> LandingRegistry:
    store = configured_table_store(config)
    settle = config.landing_settle_seconds if settle_seconds is None else settle_seconds
    return LandingRegistry(config.landing_dir, store, date.fromisoformat(PARTITIONS_START), settle)


def _cli_run_id(command: str) -> str:
    return f"cli-{command}-{uuid.uuid4().hex[:12]}"


def _pin_partitions_start(config: Settings, first_day: date) -> None:
    """Lets this home's partitions start at its first sample day, unless a start is configured."""
    if os.environ.get("FEEDBACK_PARTITIONS_START"):
        return
    start_file = config.feedback_home / START_FILE_NAME
    pinned = _parse_day(start_file.read_text().strip(), str(start_file)) if start_file.is_file() else None
    if pinned is None or first_day < pinned:
        start_file.parent.mkdir(parents=True, exist_ok=True)
        start_file.write_text(first_day.isoformat() + "\n")


@app.command()
def seed(
    days: Annotated[int, typer.Option(min=1, help="How many days of history.")] = 60,
    end_date: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD); default yesterday (UTC).")] = None,
    items_per_day: Annotated[int, typer.Option(min=1, help="Feedback items per day across all six channels.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 7,
) -> None:
    """Generate a deterministic sample (six channels, commerce data, planted incidents) and land it."""
    from feedback_assets.sample_data import generate_sample

    config = settings()
    last_day = _parse_day(end_date, "--end-date") or _yesterday()
    manifest_path = config.feedback_home / "sample" / "manifest.json"
    sample = generate_sample(config.landing_dir, manifest_path, days=days, end_date=last_day,
                             items_per_day=items_per_day, seed=seed)
    # The generator has finished writing its files: no need to wait for them to settle.
    registrations = _registry(config, settle_seconds=0).register_pending(_cli_run_id("seed"))
    _pin_partitions_start(config, last_day - timedelta(days=days - 1))
    landed = [r for r in registrations if r.status == "registered"]
    typer.echo(f"Wrote {len(sample.files)} files ({sample.feedback_items:,} feedback items, {sample.orders:,} order lines) "
               f"for {last_day - timedelta(days=days - 1)} .. {last_day} under {config.landing_dir}")
    typer.echo(f"Landed {len(landed)} new files ({sum(r.rows for r in landed):,} records); "
               f"incident manifest: {sample.manifest_path}")
    for refused in (r for r in registrations if r.status in ("rejected", "quarantined")):
        typer.echo(f"  {refused.status} {refused.file}: {refused.error}", err=True)


@app.command()
def sources() -> None:
    """List the landing presets (the six native channels, commerce exports and real-data importers)."""
    from feedback_assets.landing.mapping import load_preset

    for name in preset_names():
        mapping = load_preset(name)
        typer.echo(f"{name:<28} {mapping.contract.value:<12} {mapping.description}")


@app.command()
def ingest(
    source: Annotated[str, typer.Option(help="A preset name (see `feedback sources`) or a mapping YAML file.")],
    file: Annotated[Path, typer.Option(exists=True, dir_okay=False, readable=True, help="The export file to land.")],
    anchor_date: Annotated[str | None, typer.Option(help="For undated exports: the newest day records are spread back from.")] = None,
    shift_to_end: Annotated[str | None, typer.Option(help="Replay dated records so the newest lands on this day.")] = None,
    replace: Annotated[bool, typer.Option(help="Land a file seen before again (e.g. with a corrected mapping), replacing what it landed.")] = False,
) -> None:
    """Land one export file through a mapping: each record goes to the partition of its own date."""
    from feedback_assets.landing.registry import Status
    from feedback_assets.landing.report import describe

    config = settings()
    options = DateOptions(anchor=_parse_day(anchor_date, "--anchor-date"), shift_to_end=_parse_day(shift_to_end, "--shift-to-end"))
    registry = _registry(config)
    try:
        mapping = resolve_source(source)
        custom_mapping = Path(source) if source.endswith((".yaml", ".yml")) else None
        staged = registry.stage(file, mapping, custom_mapping)
    except MappingError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    except OSError as error:
        typer.echo(f"error: cannot copy {file} into the landing folder: {error.strerror or error}", err=True)
        raise typer.Exit(1) from None
    result = registry.register(staged, mapping, _cli_run_id("ingest"), options, replace=replace)
    failed = result.status in (Status.rejected, Status.quarantined)
    for line in describe(result, file.name, f"{mapping.name}, {mapping.contract.value}"):
        typer.echo(line, err=failed)
    if failed:
        raise typer.Exit(1)


@app.command()
def files(
    status: Annotated[str | None, typer.Option(help="Only files with this outcome: registered, rejected, quarantined, superseded.")] = None,
) -> None:
    """List every file the landing ledger has seen, with its outcome, records and error."""
    rows = sorted(_registry(settings()).ledger(), key=lambda r: r["registered_at"])
    shown = [r for r in rows if status is None or r["status"] == status]
    if not shown:
        typer.echo("No files." if not rows else f"No {status} files ({len(rows)} in the ledger).")
        return
    for row in shown:
        detail = row["error"] or f"{row['rows']:,} records, {row['rows_with_errors'] or 0:,} with errors"
        typer.echo(f"{row['status']:<11} {row['file']:<60} {row['mapping']:<24} {detail}")


def _day_range(config: Settings, start: str | None, end: str | None) -> tuple[date, date]:
    """The days given, or else the first and last day anything landed on."""
    from feedback_assets.pipeline import landed_day_range

    landed = landed_day_range(_registry(config))
    first = _parse_day(start, "--start") or (landed[0] if landed else None)
    last = _parse_day(end, "--end") or (landed[1] if landed else None)
    if first is None or last is None:
        typer.echo("error: nothing has been landed yet; run `feedback seed` or `feedback ingest` first", err=True)
        raise typer.Exit(1)
    return first, last


@app.command()
def materialize(
    start: Annotated[str | None, typer.Option(help="First day; default the first landed day.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day; default the last landed day.")] = None,
    group: Annotated[list[str] | None, typer.Option(help="Asset groups to run (repeatable).")] = None,
) -> None:
    """Run the asset groups for a range of days in one ranged run, recorded in DAGSTER_HOME."""
    import dagster as dg

    from feedback_assets.pipeline import materialize_range

    config = settings()
    first, last = _day_range(config, start, end)
    groups = group or DEFAULT_GROUPS
    typer.echo(f"Materializing {', '.join(groups)} for {first} .. {last} ({(last - first).days + 1} days)...")
    with dg.DagsterInstance.get() as instance:
        result = materialize_range(config, first, last, groups, instance)
    if not result.success:
        typer.echo(f"error: run {result.run_id} failed; see it in the Dagster UI (`make dev`)", err=True)
        raise typer.Exit(1)
    typer.echo(f"Run {result.run_id} succeeded.")


@app.command()
def summary() -> None:
    """Print partitions, rows per layer, rejects by reason, PII redactions and languages."""
    from feedback_assets.summary import render, summarize

    config = settings()
    typer.echo(render(summarize(configured_table_store(config)), config.feedback_home))


@app.command()
def demo(
    days: Annotated[int, typer.Option(min=1)] = 90,
    end_date: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD); default yesterday (UTC).")] = None,
    items_per_day: Annotated[int, typer.Option(min=1)] = 200,
    seed_value: Annotated[int, typer.Option("--seed")] = 7,
) -> None:
    """Seed the sample, run the pipeline and alerting, resolve the planted tickets, measure the fixes and the ROI."""
    seed(days=days, end_date=end_date, items_per_day=items_per_day, seed=seed_value)
    materialize(start=None, end=None, group=None)
    summary()
    alerts(replay=True)
    _resolve_planted_tickets()
    roi()
    config = settings()
    typer.echo(
        "\nWhere to look:\n"
        "  make dev                      Dagster UI on http://127.0.0.1:3000 (asset graph, checks, partitions, run)\n"
        f"  {config.feedback_home / 'dashboard' / 'dashboard.html'}  the executive dashboard (`feedback dashboard --serve`)\n"
        f"  {config.warehouse_dir}  {config.table_format.capitalize()} tables (<layer>/<table>/feedback_date=<day>/)\n"
        f"  {config.feedback_home / 'tickets'}  local tickets (one markdown file each, tickets.jsonl)\n"
        f"  {config.feedback_home / 'slack_outbox.jsonl'}  Slack messages that would have been posted\n"
        f"  {config.feedback_home / 'sample' / 'manifest.json'}  planted incidents\n"
        "  feedback summary / alerts / roi / tickets list   these summaries again"
    )


@app.command()
def alerts(
    replay: Annotated[bool, typer.Option(help="First dispatch every materialized day's alerts as dispatch_alerts runs, "
                                              "as if each day had just arrived.")] = False,
) -> None:
    """Show the tickets and Slack messages alerting produced (JIRA_* / SLACK_BOT_TOKEN switch to the real ones)."""
    import dagster as dg

    from feedback_assets.alerts.report import render_alerts
    from feedback_assets.definitions import build_resources, defs
    from feedback_assets.dispatch import DISPATCH_JOB_NAME
    from sensors.velocity import replay_requests

    config = settings()
    resources = build_resources(config)
    tickets = resources["tickets"].process_config_and_initialize().sink()
    slack = resources["slack"].process_config_and_initialize().sink()
    store = configured_table_store(config)
    failed: list[tuple[str, str]] = []
    if replay:
        typer.echo("\nReplaying alerting day by day over the materialized window, one dispatch_alerts run per alert...")
        job = defs.resolve_job_def(DISPATCH_JOB_NAME)
        with dg.DagsterInstance.get() as instance:
            requests = replay_requests(instance, store)
            for request in requests:
                run_config = {**request.run_config, "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
                result = job.execute_in_process(run_config=run_config, instance=instance, raise_on_error=False,
                                                tags={**request.tags, "feedback/launched_by": "feedback alerts --replay"})
                if not result.success:
                    failed.append((request.tags["breach_key"], result.run_id))
        typer.echo(f"Ran {len(requests)} dispatch_alerts run(s); see them in the Dagster UI under Runs.")
        for breach_key, run_id in failed:
            typer.echo(f"  error: dispatch run {run_id} for {breach_key} failed", err=True)
    typer.echo(render_alerts([], tickets, slack))
    manifest_path = config.feedback_home / "sample" / "manifest.json"
    if manifest_path.exists():
        from feedback_assets.sample_data.incidents import render_incident_check
        from feedback_assets.enrichment.taxonomy import load_taxonomy
        from feedback_assets.sample_data.incidents import fired_alerts, score_alerts

        fired, series_weeks = fired_alerts(store)
        domains = {label.id: label.domain for label in load_taxonomy().labels.values()}
        typer.echo(render_incident_check(score_alerts(json.loads(manifest_path.read_text()), fired, series_weeks, domains)))
    if failed:
        raise typer.Exit(1)


tickets_app = typer.Typer(help="Alert tickets in the local store (with JIRA_* set, tickets live and are resolved in Jira).",
                          no_args_is_help=True)
app.add_typer(tickets_app, name="tickets")


class ResolutionCode(StrEnum):
    resolved = "resolved"
    mitigated = "mitigated"
    deferred = "deferred"
    invalid = "invalid"
    open = "open"


def _local_tickets(config: Settings):
    from resources.tickets import LocalTicketStore

    if os.environ.get("JIRA_URL"):
        typer.echo("error: JIRA_URL is set: tickets live in Jira; resolve them there (the sensor reads them back)", err=True)
        raise typer.Exit(1)
    return LocalTicketStore(config.feedback_home / "tickets")


@tickets_app.command("list")
def tickets_list() -> None:
    """Every local ticket: key, status, resolution, priority, due date and summary."""
    rows = _local_tickets(settings()).tickets()
    if not rows:
        typer.echo("No tickets.")
    for row in rows:
        resolution = row.get("resolution") or "-"
        typer.echo(f"{row['key']:<9} {row['status']:<5} {resolution:<10} {row['priority']:<7} due {row['due']}  {row['summary']}")


@tickets_app.command("resolve")
def tickets_resolve(
    key: Annotated[str, typer.Argument(help="Ticket key, e.g. FIT-3.")],
    code: Annotated[ResolutionCode, typer.Option(help="What became of it (`open` reopens it).")],
    note: Annotated[str, typer.Option(help="What was done, e.g. \"size guide updated\".")] = "",
    on: Annotated[str | None, typer.Option(help="The day it was resolved (YYYY-MM-DD); default now.")] = None,
) -> None:
    """Resolve (or reopen) a local ticket; the impact of the fix is measured from that day."""
    from resources.tickets import TicketSinkError

    day = _parse_day(on, "--on")
    at = datetime.combine(day, datetime.min.time().replace(hour=12), UTC) if day else None
    try:
        row = _local_tickets(settings()).resolve(key, code.value, note, at)
    except TicketSinkError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{row['key']}: {row['status']} ({code.value}) on {row['updated_at'][:10]}")


def _resolve_planted_tickets() -> None:
    """The sample's team at work: each incident's tickets get the manifest's resolution on its day."""
    from feedback_assets.sample_data.incidents import planned_resolutions

    config = settings()
    manifest_path = config.feedback_home / "sample" / "manifest.json"
    if not manifest_path.exists() or os.environ.get("JIRA_URL"):
        return
    store = _local_tickets(config)
    plans = planned_resolutions(json.loads(manifest_path.read_text()), store.tickets())
    typer.echo("\nThe sample's team resolves the planted incidents' tickets on the manifest's days:")
    for plan in plans:
        store.resolve(plan.ticket_key, plan.code, plan.note, plan.at)
        typer.echo(f"  {plan.ticket_key:<9} {plan.code:<9} {plan.at.date()}  {plan.incident}: {plan.note}")


@app.command()
def roi(
    start: Annotated[str | None, typer.Option(help="First day; default the first landed day.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day; default the last landed day.")] = None,
) -> None:
    """Read ticket resolutions back, measure each fix and the ROI over the days, and print them."""
    import dagster as dg

    from feedback_assets import tables
    from feedback_assets.alerts.resolutions import load_resolution_mapping
    from feedback_assets.definitions import build_resources
    from feedback_assets.pipeline import materialize_range
    from feedback_assets.roi.report import render_impacts, render_roi
    from feedback_assets.roi.resolutions import sync_resolutions

    config = settings()
    first, last = _day_range(config, start, end)
    store = configured_table_store(config)
    sink = build_resources(config)["tickets"].process_config_and_initialize().sink()
    synced = sync_resolutions(sink, store, load_resolution_mapping(config.config_dir / "resolutions.yaml"), None)
    typer.echo(f"\nRead {len(synced.events)} new ticket state(s) from {sink.name}; measuring {first} .. {last}...")
    with dg.DagsterInstance.get() as instance:
        result = materialize_range(config, first, last, [ROI_GROUP], instance)
    if not result.success:
        typer.echo(f"error: run {result.run_id} failed; see it in the Dagster UI (`make dev`)", err=True)
        raise typer.Exit(1)
    impacts = (store.read_days(tables.REMEDIATION_IMPACT, [last]) or _empty()).to_pylist()
    figures = (store.read_days(tables.ROI_METRICS, [last]) or _empty()).to_pylist()
    typer.echo(f"\nFix impact as of {last} (complaint rate per 1k orders after the fix vs the pre-spike baseline):")
    typer.echo("\n".join(render_impacts(impacts)) or "  no resolved tickets yet")
    if figures:
        window = f"{figures[0]['window_start']} .. {figures[0]['window_end']}"
        typer.echo(f"\nROI over {window} (value, range; assumptions and sources in config/roi_assumptions.yaml):")
        typer.echo("\n".join(render_roi(figures)))
    typer.echo(f"\nDashboard: {config.feedback_home / 'dashboard' / 'dashboard.html'}")


def _empty():
    import pyarrow as pa

    return pa.table({})


@app.command()
def dashboard(
    serve: Annotated[bool, typer.Option(help="Serve it on http://127.0.0.1:PORT until interrupted.")] = False,
    port: Annotated[int, typer.Option(min=1024, max=65535)] = 8765,
) -> None:
    """Print the executive dashboard's path (the roi group's `executive_dashboard` asset writes it), or serve it."""
    path = settings().feedback_home / "dashboard" / "dashboard.html"
    if not path.exists():
        typer.echo("error: no dashboard yet; run `feedback roi` (or materialize the roi group)", err=True)
        raise typer.Exit(1)
    typer.echo(str(path))
    if serve:
        import functools
        import http.server

        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
        with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
            typer.echo(f"Serving on http://127.0.0.1:{port}/dashboard.html (Ctrl-C stops)")
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass


@app.command()
def classify(
    input: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="JSON Lines: `id`, `text`, optional `rating`, `channel`, `context`.")],
    output: Annotated[Path, typer.Option(dir_okay=False, help="JSON Lines, exactly one line per input id.")],
    backend: Annotated[Backend, typer.Option(help="auto: the LLM when OPENAI_* / AZURE_OPENAI_* are set, else local.")] = Backend.auto,
) -> None:
    """Classify feedback items from a file (text is normalized and PII-scrubbed first, as in silver)."""
    from feedback_assets.enrichment.items import InputError, read_items
    from feedback_assets.enrichment.service import classify_with_backend

    try:
        items = read_items(input)
    except InputError as error:
        typer.echo(f"error: {input} has lines that cannot be classified:\n{error}", err=True)
        raise typer.Exit(2) from None
    try:
        outcome = classify_with_backend(items, backend.value)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    with output.open("w", encoding="utf-8") as handle:
        for result in outcome.results:
            handle.write(json.dumps(result, ensure_ascii=False) + "\n")
    review = sum(r["needs_review"] for r in outcome.results)
    failed = sum(bool(r.get("error")) for r in outcome.results)
    typer.echo(f"Classified {len(outcome.results):,} items with {outcome.backend} ({outcome.model}) into {output}: "
               f"{review:,} need review, {failed:,} failed (kept with `error`).")
    if outcome.usage.calls:
        usage = outcome.usage
        typer.echo(f"LLM usage: {usage.calls} calls, {usage.prompt_tokens:,} prompt tokens ({usage.cached_tokens:,} cached), "
                   f"{usage.completion_tokens:,} completion tokens, ≈${usage.cost_usd(outcome.model):.4f}")


app.command()(backfill)
app.command(name="eval")(evaluate_sets)
app.add_typer(taxonomy_app, name="taxonomy")
app.add_typer(triage_app, name="triage")

databricks_app = typer.Typer(help="Databricks: package the project for the Pipes tasks.", no_args_is_help=True)
app.add_typer(databricks_app, name="databricks")


@databricks_app.command("build")
def databricks_build(
    out: Annotated[Path, typer.Option(help="Folder the wheel is written to.")] = Path("dist"),
) -> None:
    """Build the wheel the Databricks tasks install, check it, and say where to upload it."""
    from feedback_assets.packaging import build_wheel, inspect_wheel

    report = inspect_wheel(build_wheel(out.resolve()))
    typer.echo(f"built {report.path} ({report.path.stat().st_size / 1e6:.1f} MB, {len(report.requires)} requirements)")
    if not report.ok:
        typer.echo(f"error: the wheel is not deployable: missing {report.missing_data or 'nothing'}, "
                   f"cluster-provided packages required {report.cluster_conflicts or 'none'}", err=True)
        raise typer.Exit(1)
    typer.echo("upload it to a Unity Catalog volume and point DATABRICKS_WHEEL_PATH at it, e.g.\n"
               f"  databricks fs cp {report.path} dbfs:/Volumes/<catalog>/<schema>/artifacts/{report.path.name}\n"
               "or deploy it with the bundle in deploy/databricks.yml (databricks bundle deploy).")


if __name__ == "__main__":
    app()
