"""Lands export files as they arrive and asks for the bronze/silver partitions they touch.

A late file for an old date lands in that date's partition; this sensor is what refreshes it.
"""

import json

import dagster as dg

from feedback_assets.landing.mapping import Contract
from resources.landing import LandingResource
from resources.table_store import TableStore

INGEST_JOB_NAME = "ingest_feedback"


def touched_days(entry: dict) -> list[str]:
    """The days a ledger row changed: where its records landed, and where an earlier landing it replaced had."""
    return sorted({*json.loads(entry["days"] or "[]"), *json.loads(entry.get("replaced_days") or "[]")})


def stale_days(ledger: list[dict], after: float, materialized_at: dict[tuple[str, str], float]) -> dict[str, list[str]]:
    """Days touched by feedback files registered after `after` and not materialized since, with the files."""
    stale: dict[str, list[str]] = {}
    for entry in ledger:
        registered = entry["registered_at"].timestamp()
        if entry["status"] == "superseded" or entry["contract"] != Contract.feedback.value or registered <= after:
            continue
        for day in touched_days(entry):
            if materialized_at.get((entry["channel"], day), 0.0) < registered:
                stale.setdefault(day, []).append(entry["sha256"])
    return stale


def _bronze_materialized_at(instance: dg.DagsterInstance, channel: str, days: list[str]) -> dict[tuple[str, str], float]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(dg.AssetKey(f"bronze_{channel}"), asset_partitions=days), limit=max(len(days) * 4, 100)
    ).records
    latest: dict[tuple[str, str], float] = {}
    for record in records:
        key = (channel, record.partition_key)
        latest[key] = max(latest.get(key, 0.0), record.timestamp)
    return latest


@dg.sensor(job_name=INGEST_JOB_NAME, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Lands export files dropped in the landing folder and re-runs bronze and silver for exactly "
                       "the days they touch (late files included). Off by default; turn it on in Automation.")
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingResource, table_store: dg.ResourceParam[TableStore]):
    """Registers new export files and requests an ingest run for every day whose bronze is now out of date."""
    registry = landing.registry(table_store)
    registrations, skipped = registry.land_pending("sensor:landing_sensor")
    for registration in registrations:
        context.log.info("landed %s: %s %s", registration.file, registration.status, registration.error or "")
    for waiting in skipped:
        context.log.info("left %s for a later tick: %s", waiting.file, waiting.reason)
    after = float(context.cursor or 0.0)
    ledger = registry.ledger()
    fresh = [e for e in ledger if e["registered_at"].timestamp() > after and e["contract"] == Contract.feedback.value]
    if not fresh:
        return dg.SkipReason("no feedback files registered since the last tick")
    materialized_at: dict[tuple[str, str], float] = {}
    for channel in sorted({e["channel"] for e in fresh}):
        days = sorted({d for e in fresh if e["channel"] == channel for d in touched_days(e)})
        materialized_at.update(_bronze_materialized_at(context.instance, channel, days))
    stale = stale_days(fresh, after, materialized_at)
    context.update_cursor(str(max(e["registered_at"].timestamp() for e in fresh)))
    return [
        dg.RunRequest(partition_key=day, run_key=f"landing:{day}:{','.join(sorted(files))}"[:500])
        for day, files in sorted(stale.items())
    ]
