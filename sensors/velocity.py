"""velocity_alerts: every new complaint_velocity partition's alerts become dispatch runs, once.

A multi-asset sensor sees every partition materialized since its cursor (a ranged run or backfill
materializes many at once; an asset sensor would see only the latest). Only alerts on the latest
`alert_window_days` days page anyone: a backfill's older alerts go on the ledger as recorded.
"""


from datetime import UTC, date, datetime, timedelta

import dagster as dg

from feedback_assets.alerts.config import load_alerting
from feedback_assets.alerts.ledger import CREATED, PENDING, DispatchLedger
from feedback_assets.alerts.planning import plan_alerts
from feedback_assets.dispatch import DISPATCH_JOB_NAME
from feedback_assets.gold import VELOCITY_KEY
from resources.table_store import LocalParquetTableStore

# A dispatch run that failed (its step retries spent) is requested again, up to this many runs.
MAX_DISPATCH_RUNS = 3
# A ledger row left pending or created this long means its run died without failing (a killed worker).
STUCK_AFTER = timedelta(minutes=30)


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
def velocity_alerts(context: dg.MultiAssetSensorEvaluationContext, table_store: LocalParquetTableStore):
    ledger = DispatchLedger(table_store)
    retries = retry_requests(context.instance, ledger)
    records = context.latest_materialization_records_by_partition(VELOCITY_KEY)
    if not records:
        return retries or dg.SkipReason("no new complaint_velocity partitions")
    computed_on = {date.fromisoformat(p): datetime.fromtimestamp(r.timestamp, UTC).date() for p, r in records.items()}
    plans = plan_alerts(table_store, computed_on, load_alerting().alert_window_days)
    requests = []
    for plan in plans:
        if not plan.page:
            ledger.record(plan.series_key, plan.day, "sensor:velocity_alerts",
                          "older than the alert window when its partition was materialized")
            continue
        run_id = records[plan.day.isoformat()].event_log_entry.run_id
        requests.append(dg.RunRequest(
            run_key=plan.breach_key,
            run_config={"ops": {"dispatch_alert": {"config": {"series_key": plan.series_key, "day": plan.day.isoformat(),
                                                              "velocity_run_id": run_id}}}},
            tags={"breach_key": plan.breach_key, "series_key": plan.series_key},
        ))
    # Only the records read above: a partition materialized during this tick waits for the next one.
    for record in records.values():
        context.advance_cursor({VELOCITY_KEY: record})
    recorded = sum(not p.page for p in plans)
    if not requests and not retries:
        return dg.SkipReason(f"{len(records)} new partition(s): {recorded} alert(s) recorded, none in the alert window")
    return requests + retries
