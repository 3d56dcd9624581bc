"""ticket_resolutions_sensor: polls the ticket system for resolved alert tickets and rebuilds their days.

The cursor holds the newest `updated` time polled and a watermark of the kept states already
turned into runs. Each poll looks back `overlap_minutes` before the cursor (Jira's JQL dates have
minute precision and its search lags), every state is kept once by issue id and update time, so
the overlap never doubles anything; states kept by a tick that died before requesting its runs
are requested by the next.
"""

import json
from datetime import datetime

import dagster as dg

from feedback_assets.alerts.model import short_hash
from feedback_assets.alerts.resolutions import load_resolution_mapping
from feedback_assets.roi.assets import RESOLUTIONS_KEY
from feedback_assets.roi.resolutions import pending_days, sync_resolutions
from partitions import daily_partitions
from resources.settings import settings
from resources.table_store import TableStore
from resources.tickets import TicketsResource

RESOLUTIONS_JOB_NAME = "ticket_resolutions_job"

ticket_resolutions_job = dg.define_asset_job(
    RESOLUTIONS_JOB_NAME,
    selection=dg.AssetSelection.assets(RESOLUTIONS_KEY),
    partitions_def=daily_partitions,
    description="Rebuilds the ticket_resolutions days whose tickets changed; impact and ROI follow by automation.",
)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dg.sensor(job=ticket_resolutions_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Reads resolved, mitigated, deferred and invalid alert tickets back from Jira or the local store.")
def ticket_resolutions_sensor(context: dg.SensorEvaluationContext, table_store: dg.ResourceParam[TableStore],
                              tickets: TicketsResource):
    state = json.loads(context.cursor) if context.cursor else {}
    mapping = load_resolution_mapping(settings().config_dir / "resolutions.yaml")
    polled = sync_resolutions(tickets.sink(), table_store, mapping, _time(state.get("polled_through")))
    days, watermark = pending_days(table_store, _time(state.get("requested_through")))
    cursor = json.dumps({"polled_through": polled.cursor.isoformat() if polled.cursor else None,
                         "requested_through": watermark.isoformat() if watermark else None})
    partitions = set(daily_partitions.get_partition_keys())
    requests = [dg.RunRequest(run_key=f"resolutions:{day.isoformat()}@{short_hash(watermark.isoformat())}",
                              partition_key=day.isoformat(), tags={"feedback/resolution_day": day.isoformat()})
                for day in days if day.isoformat() in partitions]
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"no ticket changed ({len(polled.events)} new states kept)"),
                               cursor=cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor)
