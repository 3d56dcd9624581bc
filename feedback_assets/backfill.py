"""Re-running a range of days as an asset backfill on the Dagster instance, the way the UI's "Materialize" does.

The backfill is recorded on the instance (visible and cancellable under Runs → Backfills) and run by
the Dagster daemon (`make dev` runs one); every asset's backfill policy is single-run, so a range is
one run per asset step, not one per day.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.utils import make_new_backfill_id

from feedback_assets.classifications import CLASSIFICATIONS_KEY
from partitions import daily_partitions

TERMINAL = {BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS, BulkActionStatus.COMPLETED_FAILED,
            BulkActionStatus.FAILED, BulkActionStatus.CANCELED}
DAEMON_FRESH_SECONDS = 120


class BackfillError(ValueError):
    """A backfill that cannot be launched as asked."""


def backfill_assets(defs: dg.Definitions, names: Sequence[str] | None) -> list[dg.AssetKey]:
    """The named assets, or by default the classifications and everything that derives from them (with step siblings)."""
    graph = defs.resolve_asset_graph()
    known = {key.to_user_string(): key for key in graph.get_all_asset_keys()}
    if names:
        unknown = [name for name in names if name not in known]
        if unknown:
            raise BackfillError(f"unknown asset(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        selection = dg.AssetSelection.assets(*[known[name] for name in names])
    else:
        selection = dg.AssetSelection.assets(CLASSIFICATIONS_KEY).downstream()
    # An asset made by a step that writes several (the classifications, triage queue and dead letters) brings the others.
    return sorted(selection.required_multi_asset_neighbors().resolve(graph), key=lambda k: k.to_user_string())


def partition_days(start: date, end: date) -> list[str]:
    if end < start:
        raise BackfillError(f"the range ends ({end}) before it starts ({start})")
    first, last = daily_partitions.get_first_partition_key(), daily_partitions.get_last_partition_key()
    if start.isoformat() < first or (last and end.isoformat() > last):
        raise BackfillError(f"days must lie within the partitions {first} .. {last}")
    return daily_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(start.isoformat(), end.isoformat()))


def launch_backfill(instance: dg.DagsterInstance, defs: dg.Definitions, keys: Sequence[dg.AssetKey], start: date,
                    end: date, *, title: str, description: str, tags: dict[str, str] | None = None,
                    batch_api: bool = False) -> str:
    """Records an asset backfill of the keys over [start, end] on the instance and returns its id.

    With `batch_api`, the backfill's runs classify through the LLM's Batch API (half the price, slower).
    """
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(), asset_graph=defs.resolve_asset_graph(),
        partition_names=partition_days(start, end), asset_selection=list(keys),
        backfill_timestamp=datetime.now(UTC).timestamp(), tags=tags or {}, dynamic_partitions_store=instance,
        all_partitions=False, title=title, description=description,
        run_config={"resources": {"enrichment": {"config": {"mode": "batch"}}}} if batch_api else None,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id


def daemon_running(instance: dg.DagsterInstance, now: float | None = None) -> bool:
    """Whether a Dagster daemon that runs backfills has reported in lately on this instance."""
    now = time.time() if now is None else now
    beats = instance.get_daemon_heartbeats()
    beat = beats.get("BACKFILL")
    return beat is not None and now - beat.timestamp < DAEMON_FRESH_SECONDS


def wait_for_backfill(instance: dg.DagsterInstance, backfill_id: str, echo: Callable[[str], None],
                      poll_seconds: float = 5.0, timeout_seconds: float | None = None) -> BulkActionStatus:
    """Polls the backfill until it ends, echoing each change of status and the runs it launched."""
    started, last = time.monotonic(), None
    while True:
        backfill = instance.get_backfill(backfill_id)
        runs = instance.get_run_records(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        state = (backfill.status, tuple(sorted((r.dagster_run.run_id[:8], r.dagster_run.status.value) for r in runs)))
        if state != last:
            echo(f"  {backfill.status.value}: " + (", ".join(f"run {rid} {status}" for rid, status in state[1]) or "no runs yet"))
            last = state
        if backfill.status in TERMINAL:
            return backfill.status
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            return backfill.status
        time.sleep(poll_seconds)


def stale_days(instance: dg.DagsterInstance, defs: dg.Definitions, key: dg.AssetKey) -> dict[str, list[str]]:
    """The asset's materialized days the UI shows as stale, by cause (e.g. its code version changed)."""
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._time import get_current_datetime

    graph = defs.resolve_asset_graph()
    view = AssetGraphView(temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
                          instance=instance, asset_graph=graph)
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)
    materialized = sorted(instance.get_materialized_partitions(key))
    by_cause: dict[str, list[str]] = {}
    for day in materialized:
        if resolver.get_status(key, day) == StaleStatus.STALE:
            causes = resolver.get_stale_causes(key, day)
            by_cause.setdefault(causes[0].reason if causes else "stale", []).append(day)
    return by_cause
