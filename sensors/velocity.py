"""velocity_alerts: every new complaint_velocity partition's alerts become dispatch runs, once.

A multi-asset sensor sees every partition materialized since its cursor (a ranged run or backfill
materializes many at once; an asset sensor would see only the latest). Only alerts on the latest
`alert_window_days` days page anyone: a backfill's older alerts go on the ledger as recorded.
"""


from datetime import UTC, date, datetime, timedelta

import dagster as dg

from feedback_assets.alerts.config import load_alerting
from feedback_assets.alerts.ledger import CREATED, PENDING, POSTED, DispatchLedger
from feedback_assets.alerts.planning import PlannedAlert, plan_alerts
from feedback_assets.alerts.replay import replay_plans
from feedback_assets.dispatch import DISPATCH_JOB_NAME, BreachConfig
from feedback_assets.gold import VELOCITY_KEY
from resources.table_store import TableStore

# A dispatch run that failed (its step retries spent) is requested again, up to this many runs.
MAX_DISPATCH_RUNS = 3
# A ledger row left pending or created this long means its run died without failing (a killed worker).
STUCK_AFTER = timedelta(minutes=30)


def dispatch_request(plan: PlannedAlert, velocity_run_id: str) -> dg.RunRequest:
    """The dispatch run of one breach: keyed by the breach, tagged with it and its series for the Runs page."""
    config = BreachConfig(series_key=plan.series_key, day=plan.day.isoformat(), velocity_run_id=velocity_run_id)
    return dg.RunRequest(run_key=plan.breach_key, run_config=dg.RunConfig(ops={"dispatch_alert": config}),
                         tags={"breach_key": plan.breach_key, "series_key": plan.series_key})


def velocity_run_ids(instance: dg.DagsterInstance, days: list[date]) -> dict[date, str]:
    """The run that last materialized each day's complaint_velocity partition."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(VELOCITY_KEY, asset_partitions=[d.isoformat() for d in days]),
        limit=max(len(days) * 4, 100)).records
    latest: dict[date, dg.EventLogRecord] = {}
    for record in records:
        day = date.fromisoformat(record.partition_key)
        if day not in latest or record.storage_id > latest[day].storage_id:
            latest[day] = record
    return {day: record.run_id for day, record in latest.items()}


def replay_requests(instance: dg.DagsterInstance, table_store: dg.ResourceParam[TableStore]) -> list[dg.RunRequest]:
    """Dispatch runs for every materialized day's alerts as the sensor would have asked the morning after.

    Breaches the ledger already holds (dispatched, or recorded by the sensor) get no run.
    """
    ledger = DispatchLedger(table_store)
    plans = [plan for plan in replay_plans(table_store) if ledger.get(plan.breach_key) is None]
    run_ids = velocity_run_ids(instance, sorted({plan.day for plan in plans}))
    return [dispatch_request(plan, run_ids.get(plan.day, "")) for plan in plans]


def retry_requests(instance: dg.DagsterInstance, ledger: DispatchLedger, now: datetime | None = None) -> list[dg.RunRequest]:
    """A new run for each breach whose latest dispatch run failed, or died leaving its ledger row stuck.

    `run_key` dedupes forever, failed runs included, so each retry carries its attempt number.
    """
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=DISPATCH_JOB_NAME))
    by_breach: dict[str, list[dg.DagsterRun]] = {}
    for run in runs:  # newest first
        if "breach_key" in run.tags:
            by_breach.setdefault(run.tags["breach_key"], []).append(run)
    stale_before = (now or datetime.now(UTC)) - STUCK_AFTER
    requests = []
    for breach_key, attempts in sorted(by_breach.items()):
        latest = attempts[0]
        retry = latest.status == dg.DagsterRunStatus.FAILURE or (not latest.is_finished and _stuck(ledger, breach_key, stale_before))
        if retry and len(attempts) < MAX_DISPATCH_RUNS:
            requests.append(dg.RunRequest(run_key=f"{breach_key}#attempt{len(attempts) + 1}",
                                          run_config=latest.run_config, tags=dict(latest.tags)))
    return requests


def _stuck(ledger: DispatchLedger, breach_key: str, stale_before: datetime) -> bool:
    entry = ledger.get(breach_key)
    return (entry is not None and entry.status in (PENDING, CREATED) and entry.updated_at is not None
            and datetime.fromisoformat(entry.updated_at) < stale_before)


@dg.multi_asset_sensor(
    monitored_assets=[VELOCITY_KEY],
    job_name=DISPATCH_JOB_NAME,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Opens tickets and posts to Slack for new complaint-velocity alerts; backfilled ones are only recorded.",
)
def velocity_alerts(context: dg.MultiAssetSensorEvaluationContext, table_store: dg.ResourceParam[TableStore]):
    ledger = DispatchLedger(table_store)
    retries = retry_requests(context.instance, ledger)
    records = context.latest_materialization_records_by_partition(VELOCITY_KEY)
    if not records:
        return retries or dg.SkipReason("no new complaint_velocity partitions")
    computed_on = {date.fromisoformat(p): datetime.fromtimestamp(r.timestamp, UTC).date() for p, r in records.items()}
    plans = plan_alerts(table_store, computed_on, load_alerting().alert_window_days)
    requests, recorded, dispatched = [], 0, 0
    for plan in plans:
        known = ledger.get(plan.breach_key)
        if known is not None and known.status == POSTED:
            dispatched += 1  # by an earlier run or a replay: a new run would only skip
            continue
        if not plan.page:
            if known is None:
                ledger.record(plan.series_key, plan.day, "sensor:velocity_alerts",
                              "older than the alert window when its partition was materialized")
            recorded += 1
            continue
        requests.append(dispatch_request(plan, records[plan.day.isoformat()].event_log_entry.run_id))
    # Only the records read above: a partition materialized during this tick waits for the next one.
    for record in records.values():
        context.advance_cursor({VELOCITY_KEY: record})
    if not requests and not retries:
        return dg.SkipReason(f"{len(records)} new partition(s): {dispatched} alert(s) dispatched already, "
                             f"{recorded} recorded, none to page")
    return requests + retries
