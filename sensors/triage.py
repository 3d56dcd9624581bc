"""triage_inbox_sensor: imports corrections files analysts drop into the triage inbox and re-labels their days.

Each settled CSV in `$FEEDBACK_HOME/triage/inbox/` is validated row by row, its good rows are kept
in the corrections ledger (once per file content), and the file moves to `processed/` (or
`rejected/`) beside a report of every row it refused. The days of the corrected items are then
re-labelled in one ranged run; gold follows by automation.
"""

import json
from datetime import UTC, datetime

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from feedback_assets.alerts.model import short_hash
from feedback_assets.enrichment.corrections_store import process_inbox, unrequested_files
from feedback_assets.labels import CORRECTIONS_KEY, LABELS_KEY
from partitions import daily_partitions
from resources.settings import settings
from resources.table_store import TableStore

CORRECTIONS_JOB_NAME = "apply_label_corrections"

apply_label_corrections_job = dg.define_asset_job(
    CORRECTIONS_JOB_NAME,
    selection=dg.AssetSelection.assets(CORRECTIONS_KEY, LABELS_KEY),
    partitions_def=daily_partitions,
    description="Files imported corrections under their days and re-labels those days; gold follows by automation.",
)


@dg.sensor(job=apply_label_corrections_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Imports triage corrections files dropped into $FEEDBACK_HOME/triage/inbox/ and re-labels their days.")
def triage_inbox_sensor(context: dg.SensorEvaluationContext, table_store: dg.ResourceParam[TableStore]):
    config = settings()
    for outcome in process_inbox(table_store, config.feedback_home / "triage", datetime.now(UTC), config.landing_settle_seconds):
        context.log.info(f"{outcome.file}: {outcome.status}, {outcome.accepted} accepted, {outcome.rejected_rows} refused")
    # The cursor lists the files already asked for: a file kept by a tick that died before its run was
    # requested, or imported from the CLI without --apply, is asked for by the next tick.
    requested = set(json.loads(context.cursor)["requested"]) if context.cursor else set()
    pending, days = unrequested_files(table_store, requested)
    cursor = json.dumps({"requested": sorted(requested | pending)})
    known = set(daily_partitions.get_partition_keys())
    days = [d for d in days if d.isoformat() in known]
    if not days:
        return dg.SensorResult(skip_reason=dg.SkipReason("no corrections waiting to be applied"), cursor=cursor)
    return dg.SensorResult(run_requests=[dg.RunRequest(
        run_key=f"corrections:{short_hash(','.join(sorted(pending)))}",
        tags={ASSET_PARTITION_RANGE_START_TAG: days[0].isoformat(), ASSET_PARTITION_RANGE_END_TAG: days[-1].isoformat(),
              "feedback/corrections_files": str(len(pending))})], cursor=cursor)
