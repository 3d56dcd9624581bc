"""`feedback backfill` and `feedback taxonomy ...`: the analyst's loop of changing the taxonomy and re-applying it."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

taxonomy_app = typer.Typer(help="The taxonomy: check it, compare versions, accept a change, read the change log.",
                           no_args_is_help=True)


def _day(value: str, option: str):
    from feedback_assets.cli import _parse_day

    return _parse_day(value, option)


def backfill(
    start: Annotated[str, typer.Option(help="First day (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option(help="Last day (YYYY-MM-DD).")],
    asset: Annotated[list[str] | None, typer.Option(help="Asset to backfill (repeatable); default the classifications and everything downstream.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Launch without asking after the estimate.")] = False,
    wait: Annotated[bool, typer.Option(help="Follow the backfill until it ends.")] = False,
    batch: Annotated[bool, typer.Option(help="Classify through the LLM's Batch API: half the price, results within 24 h.")] = False,
) -> None:
    """Estimate the LLM calls and cost of re-classifying a range, then launch it as an asset backfill on the instance."""
    import dagster as dg

    from feedback_assets.backfill import (
        BackfillError,
        backfill_assets,
        daemon_running,
        launch_backfill,
        stale_days,
        wait_for_backfill,
    )
    from feedback_assets.classifications import CLASSIFICATIONS_KEY
    from feedback_assets.definitions import defs
    from feedback_assets.enrichment.corrections_store import read_ledger
    from feedback_assets.enrichment.estimate import estimate_classification
    from feedback_assets.enrichment.gate import golden_items, golden_version, stored_score
    from feedback_assets.enrichment.prompt import build_prompt
    from feedback_assets.enrichment.taxonomy import load_taxonomy
    from resources.enrichment import EnrichmentResource
    from resources.settings import settings, ui_base_url
    from resources.table_store import configured_table_store

    first, last = _day(start, "--start"), _day(end, "--end")
    try:
        keys = backfill_assets(defs, asset)
    except BackfillError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    store = configured_table_store(settings())
    corrections = read_ledger(store)
    identity = EnrichmentResource().identity()
    with dg.DagsterInstance.get() as instance:
        stale = stale_days(instance, defs, CLASSIFICATIONS_KEY)
    in_range = {cause: [d for d in days if start <= d <= end] for cause, days in stale.items()}
    for cause, days in in_range.items():
        if days:
            typer.echo(f"feedback_classifications: {len(days)} of the days in the range are stale ({cause})")
    if CLASSIFICATIONS_KEY in keys:
        estimate = estimate_classification(store, identity, first, last, build_prompt(load_taxonomy(), corrections=corrections),
                                           EnrichmentResource().llm_settings(identity.model))
        typer.echo(f"Re-classifying {first} .. {last}: {estimate.describe()}")
        golden = golden_items()
        if identity.backend != "local" and stored_score(store, identity.code_version, golden_version(golden)) is None:
            typer.echo(f"  plus {math.ceil(len(golden) / EnrichmentResource().batch_size)} requests to score the new version "
                       "on the golden set first")
    typer.echo(f"Backfill of {len(keys)} assets: {', '.join(k.to_user_string() for k in keys)}")
    if not yes and not typer.confirm("Launch it?", default=False):
        raise typer.Exit(1)
    with dg.DagsterInstance.get() as instance:
        try:
            backfill_id = launch_backfill(
                instance, defs, keys, first, last, title=f"re-apply {identity.code_version}",
                description=f"`feedback backfill` of {first} .. {last} with classifier {identity.code_version}",
                tags={"feedback/classifier_version": identity.code_version[:255]}, batch_api=batch)
        except BackfillError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"Launched backfill {backfill_id}: {ui_base_url()}/runs/b/{backfill_id}?tab=partitions "
                   "(cancel it there)")
        if not daemon_running(instance):
            typer.echo("note: no Dagster daemon is running on this instance; the backfill starts once one does "
                       "(`make dev`, or `dagster-daemon run -w workspace.yaml`)", err=True)
        if wait:
            status = wait_for_backfill(instance, backfill_id, typer.echo)
            typer.echo(f"Backfill {backfill_id} ended {status.value}")
            if status.value not in ("COMPLETED", "COMPLETED_SUCCESS"):
                raise typer.Exit(1)


@taxonomy_app.command("check")
def taxonomy_check(
    file: Annotated[Path | None, typer.Argument(help="Taxonomy YAML; default the working prompts/taxonomy.yaml.")] = None,
) -> None:
    """Check the taxonomy: unique ids, owners, descriptions and examples; every problem with its place."""
    from feedback_assets.enrichment.governance import check_taxonomy
    from feedback_assets.enrichment.taxonomy import content_version, prompts_dir

    path = file or prompts_dir() / "taxonomy.yaml"
    raw = path.read_bytes()
    problems = check_taxonomy(raw, str(path))
    for problem in problems:
        typer.echo(f"  {problem}", err=True)
    if problems:
        typer.echo(f"error: {path} has {len(problems)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{path}: ok (version {content_version(raw)})")


@taxonomy_app.command("diff")
def taxonomy_diff(
    old: Annotated[str, typer.Argument(help="A version id (or prefix), `accepted`, `current` or a YAML file.")] = "accepted",
    new: Annotated[str, typer.Argument(help="Same choices as OLD.")] = "current",
    markdown: Annotated[bool, typer.Option(help="Print markdown instead of text.")] = False,
) -> None:
    """What changed between two taxonomy versions (labels added, removed, moved; descriptions, examples, owners)."""
    from feedback_assets.enrichment.governance import HistoryError, default_history_dir, diff_taxonomies, resolve_taxonomy_ref
    from feedback_assets.enrichment.taxonomy import TaxonomyError, parse_taxonomy, prompts_dir

    current = prompts_dir() / "taxonomy.yaml"
    try:
        (old_name, old_raw), (new_name, new_raw) = (resolve_taxonomy_ref(ref, default_history_dir(), current) for ref in (old, new))
        diff = diff_taxonomies(parse_taxonomy(old_raw, old_name), parse_taxonomy(new_raw, new_name))
    except (HistoryError, TaxonomyError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{old_name} → {new_name}: {diff.summary()}")
    if not diff.is_empty:
        typer.echo(diff.render_markdown() if markdown else diff.render_text())


@taxonomy_app.command("accept")
def taxonomy_accept(
    by: Annotated[str, typer.Option("--by", help="Who accepts the change (recorded in the change log).")],
    note: Annotated[str, typer.Option(help="Why the change is made, and why a lower score is acceptable if it is.")] = "",
) -> None:
    """Score the working taxonomy's classifier on the golden set and record it as the accepted version."""
    from feedback_assets.enrichment.entities import EntityCatalog
    from feedback_assets.enrichment.gate import golden_items, golden_version, keep_score, score_golden
    from feedback_assets.enrichment.governance import HistoryError, default_history_dir, last_accepted, record_acceptance
    from feedback_assets.enrichment.taxonomy import TaxonomyError, load_taxonomy, prompts_dir
    from resources.enrichment import EnrichmentResource
    from resources.settings import settings
    from resources.table_store import configured_table_store

    if not by.strip() or len(by) > 100 or len(note) > 1000:
        typer.echo("error: --by needs a name of at most 100 characters, --note at most 1,000", err=True)
        raise typer.Exit(2)
    try:
        taxonomy = load_taxonomy()
    except TaxonomyError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    # Scored as the gate scores it: realtime, by the version itself (corrections are no part of it).
    backend = EnrichmentResource().build(EntityCatalog(), realtime=True)
    golden = golden_items()
    score, _ = score_golden(backend.classify, taxonomy, golden, backend.code_version, backend.name, backend.model)
    if not score.complete:
        typer.echo(f"error: {score.unclassified} golden item(s) got no answer from the classifier; nothing accepted", err=True)
        raise typer.Exit(1)
    keep_score(configured_table_store(settings()), score, golden_version(golden))
    previous = last_accepted(default_history_dir())
    earlier = (previous.evaluation.get(backend.name) or {}) if previous else {}
    typer.echo(f"{backend.code_version}: macro-F1 {score.macro_f1:.3f}, accuracy {score.accuracy:.3f}, "
               f"calibration error {score.calibration_error:.3f} on {score.items} golden items"
               + (f" (accepted before: {earlier['macro_f1']:.3f})" if "macro_f1" in earlier else ""))
    try:
        entry = record_acceptance(default_history_dir(), (prompts_dir() / "taxonomy.yaml").read_bytes(), accepted_by=by,
                                  note=note, evaluation={backend.name: score.as_evaluation()}, accepted_at=datetime.now(UTC))
    except (HistoryError, TaxonomyError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"Accepted taxonomy {entry.taxonomy_version} by {entry.accepted_by}: {entry.summary}")


@taxonomy_app.command("log")
def taxonomy_log() -> None:
    """The change log: every accepted taxonomy version, who accepted it, when, what changed and how it scored."""
    from feedback_assets.enrichment.governance import default_history_dir, read_changelog

    for entry in read_changelog(default_history_dir()):
        scores = ", ".join(f"{backend} macro-F1 {e['macro_f1']:.3f}" for backend, e in entry.evaluation.items()
                           if isinstance(e, dict) and "macro_f1" in e) or "no scores"
        typer.echo(f"{entry.accepted_at:%Y-%m-%d %H:%M} {entry.taxonomy_version} by {entry.accepted_by}: "
                   f"{entry.summary} ({scores}){' — ' + entry.note if entry.note else ''}")


triage_app = typer.Typer(help="The triage queue: export it for review, import the analysts' corrections.",
                         no_args_is_help=True)


@triage_app.command("export")
def triage_export(
    start: Annotated[str | None, typer.Option(help="First day; default the first day with a triage queue.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day; default the last day with a triage queue.")] = None,
    out: Annotated[Path | None, typer.Option(help="CSV file; default $FEEDBACK_HOME/triage/triage_<start>_<end>.csv.")] = None,
) -> None:
    """Write the triage queue as a CSV to correct: id, text, model labels, confidence, why it needs review."""
    from feedback_assets import tables
    from feedback_assets.enrichment.corrections import export_csv, export_rows
    from feedback_assets.enrichment.corrections_store import read_ledger
    from resources.settings import settings
    from resources.table_store import configured_table_store

    config = settings()
    store = configured_table_store(config)
    days = store.partition_days(tables.TRIAGE_QUEUE)
    first = _day(start, "--start") if start else (days[0] if days else None)
    last = _day(end, "--end") if end else (days[-1] if days else None)
    chosen = [d for d in days if first <= d <= last] if first and last else []
    if not chosen:
        typer.echo("error: no triage queue for those days (materialize the enrichment group first)", err=True)
        raise typer.Exit(1)
    queue = store.read_days(tables.TRIAGE_QUEUE, chosen)
    texts = store.read_days(tables.SILVER_FEEDBACK, chosen, ["feedback_id", "text_clean"])
    text_of = dict(zip(texts.column("feedback_id").to_pylist(), texts.column("text_clean").to_pylist())) if texts else {}
    corrected = {c.feedback_id for c in read_ledger(store)}  # an analyst has already settled these
    rows = export_rows({**row, "text": text_of.get(row["feedback_id"], "")} for row in queue.to_pylist()
                       if row["feedback_id"] not in corrected)
    path = out or config.feedback_home / "triage" / f"triage_{first}_{last}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(export_csv(rows))
    typer.echo(f"Wrote {len(rows):,} items to review ({first} .. {last}; {len(corrected):,} corrected before are left out) "
               f"to {path}; fill in corrected_label (and a note), "
               "then `feedback triage import` it or drop it into $FEEDBACK_HOME/triage/inbox/.")


@triage_app.command("import")
def triage_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The corrected CSV.")],
    by: Annotated[str, typer.Option("--by", help="The analyst who made the corrections.")],
    apply: Annotated[bool, typer.Option(help="Re-label the corrected days and rebuild gold for them now.")] = True,
) -> None:
    """Validate a corrections file row by row, keep its good rows, and re-label the days they correct."""
    import dagster as dg

    from feedback_assets.enrichment.corrections import CorrectionFileError
    from feedback_assets.enrichment.corrections_store import days_of, import_file, recorded_files
    from feedback_assets.labels import CORRECTIONS_KEY
    from feedback_assets.pipeline import materialize_selection
    from resources.settings import settings
    from resources.table_store import configured_table_store

    config = settings()
    store = configured_table_store(config)
    raw = file.read_bytes()
    if hashlib.sha256(raw).hexdigest() in recorded_files(store):
        typer.echo(f"{file.name} was imported before (same content): nothing applied twice")
        return
    try:
        result = import_file(store, raw, source=file.name, analyst=by, now=datetime.now(UTC))
    except CorrectionFileError as error:
        typer.echo(f"error: {file}: {error}", err=True)
        raise typer.Exit(2) from None
    for line in result.report():
        typer.echo(line)
    days = days_of(result.accepted)
    if not days or not apply:
        if result.rejected and not result.accepted:
            raise typer.Exit(1)
        return
    selection = dg.AssetSelection.assets(CORRECTIONS_KEY).downstream() - dg.AssetSelection.groups("roi")
    typer.echo(f"Re-labelling {days[0]} .. {days[-1]} and rebuilding gold for those days...")
    with dg.DagsterInstance.get() as instance:
        run = materialize_selection(config, days[0], days[-1], selection, instance)
    if not run.success:
        typer.echo(f"error: run {run.run_id} failed; see it in the Dagster UI", err=True)
        raise typer.Exit(1)
    typer.echo(f"Run {run.run_id} applied {len(result.accepted)} correction(s).")
