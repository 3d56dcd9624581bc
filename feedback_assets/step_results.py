"""Step outcomes as Dagster sees them: materializations, per-partition metadata, check results and logs.

The in-process runner hands an outcome over directly; the Databricks runner gets the same outcome
back through Pipes. Both go through here, so the UI cannot tell them apart (apart from the
cluster's run id and link, which a Pipes run adds).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date

import dagster as dg

from feedback_assets.outcomes import PER_DAY_KEY, Metadata, StepOutcome, decode_per_day
from feedback_assets.window import DayWindow

StepResult = dg.MaterializeResult | dg.AssetCheckResult

_CONVERTERS = {
    "text": dg.MetadataValue.text,
    "int": dg.MetadataValue.int,
    "float": dg.MetadataValue.float,
    "bool": dg.MetadataValue.bool,
    "json": dg.MetadataValue.json,
    "md": dg.MetadataValue.md,
    "url": dg.MetadataValue.url,
}


def window_of(context: dg.AssetExecutionContext) -> DayWindow:
    """The days a (possibly ranged) partitioned run covers."""
    time_window = context.partition_time_window
    last_day = date.fromordinal(time_window.end.date().toordinal() - 1)
    return DayWindow(time_window.start.date(), last_day)


def to_dagster(metadata: Metadata) -> dict[str, dg.MetadataValue]:
    return {key: _CONVERTERS[meta.type](meta.value) for key, meta in metadata.items()}


def _add_per_day(context: dg.AssetExecutionContext, asset_key: dg.AssetKey, per_day: dict[str, Metadata]) -> None:
    for day, metadata in per_day.items():
        context.add_asset_metadata(to_dagster(metadata), asset_key=asset_key, partition_key=day)


def results_of(context: dg.AssetExecutionContext, outcome: StepOutcome) -> Iterator[StepResult]:
    """An in-process step's outcome: its logs, then materializations (with per-day metadata), then checks."""
    for level, message in outcome.logs:
        getattr(context.log, level)(message)
    for asset in outcome.assets:
        key = dg.AssetKey(asset.asset_key)
        _add_per_day(context, key, asset.per_day)
        yield dg.MaterializeResult(asset_key=key, metadata=to_dagster(asset.metadata))
    for check in outcome.checks:
        yield dg.AssetCheckResult(check_name=check.check_name, asset_key=dg.AssetKey(check.asset_key), passed=check.passed,
                                  severity=dg.AssetCheckSeverity(check.severity), metadata=to_dagster(check.metadata))
    if outcome.failure:
        raise dg.Failure(description=outcome.failure, allow_retries=False)


def results_from_pipes(context: dg.AssetExecutionContext, reported: Sequence[StepResult]) -> Iterator[StepResult]:
    """What a Pipes run reported, with the per-day metadata it carried in one entry spread back onto its days."""
    days = [day.isoformat() for day in window_of(context).days]
    for result in reported:
        if isinstance(result, dg.MaterializeResult):
            metadata = dict(result.metadata or {})
            carried = metadata.pop(PER_DAY_KEY, None)
            if carried is not None:
                try:
                    per_day = decode_per_day(carried.value, days)
                except ValueError as error:
                    raise dg.Failure(description=f"the task reported unusable metadata for {result.asset_key.to_user_string()}: "
                                                 f"{error}", allow_retries=False) from None
                _add_per_day(context, result.asset_key, per_day)
            yield dg.MaterializeResult(asset_key=result.asset_key, metadata=metadata)
        else:
            yield result

