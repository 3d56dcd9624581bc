"""Running the asset graph in-process over a range of days, recorded in the Dagster instance."""

from __future__ import annotations

import json
from datetime import date

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from feedback_assets.definitions import ALL_ASSETS, build_resources
from feedback_assets.landing.registry import LandingRegistry
from resources.settings import Settings


def landed_day_range(registry: LandingRegistry) -> tuple[date, date] | None:
    """First and last day that any registered file touches."""
    days = [date.fromisoformat(d) for e in registry.ledger() if e["status"] == "registered" for d in json.loads(e["days"])]
    return (min(days), max(days)) if days else None


def materialize_range(config: Settings, start: date, end: date, groups: list[str], instance: dg.DagsterInstance) -> dg.ExecuteInJobResult:
    """One ranged run per call: each asset processes all days at once (its backfill policy is single-run)."""
    return materialize_selection(config, start, end, dg.AssetSelection.groups(*groups), instance)


def materialize_selection(config: Settings, start: date, end: date, selection: dg.AssetSelection,
                          instance: dg.DagsterInstance) -> dg.ExecuteInJobResult:
    """The selected assets for [start, end] in one ranged run, recorded in the instance."""
    return dg.materialize(
        ALL_ASSETS,
        selection=selection,
        resources=build_resources(config),
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: start.isoformat(), ASSET_PARTITION_RANGE_END_TAG: end.isoformat()},
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        raise_on_error=False,
    )
