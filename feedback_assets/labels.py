"""Label assets: analysts' triage corrections by day, and the labels gold counts (a correction wins over the model)."""

from collections import Counter
from datetime import date

import dagster as dg

from feedback_assets.asset_defaults import DAILY_RANGED
from feedback_assets.classifications import CLASSIFICATIONS_KEY
from feedback_assets.enrichment.corrections_store import read_ledger, write_day_parts
from resources.compute import StepRunner
from resources.table_store import TableStore

CORRECTIONS_KEY = dg.AssetKey("label_corrections")
LABELS_KEY = dg.AssetKey("feedback_labels")

_LABELS = {"group_name": "enrichment", "owners": ["team:voice-of-customer"], "tags": {"layer": "enrichment"},
           **DAILY_RANGED}


@dg.asset(key=CORRECTIONS_KEY, kinds={"python"}, **_LABELS)
def label_corrections(context: dg.AssetExecutionContext, table_store: dg.ResourceParam[TableStore]):
    """Analysts' corrections from the triage queue (CLI import or inbox folder), filed under the day of the item they correct."""
    days = [date.fromisoformat(key) for key in context.partition_keys]
    ledger = read_ledger(table_store)
    counts = write_day_parts(table_store, days, ledger)
    of_window = [c for c in ledger if c.feedback_date in counts]
    for day, count in counts.items():
        context.add_asset_metadata({"dagster/row_count": dg.MetadataValue.int(count)}, partition_key=day.isoformat())
    return dg.MaterializeResult(metadata={
        "corrections": dg.MetadataValue.int(len(of_window)),
        "items_corrected": dg.MetadataValue.int(len({c.feedback_id for c in of_window})),
        "analysts": dg.MetadataValue.json(dict(Counter(c.analyst for c in of_window).most_common())),
        "labels": dg.MetadataValue.json(dict(Counter(c.label for c in of_window).most_common())),
        "files": dg.MetadataValue.json(sorted({c.source for c in of_window})),
    })


@dg.asset(key=LABELS_KEY, deps=[CLASSIFICATIONS_KEY, CORRECTIONS_KEY], kinds={"spark", "parquet"}, **_LABELS)
def feedback_labels(context: dg.AssetExecutionContext, step_runner: dg.ResourceParam[StepRunner],
                    table_store: dg.ResourceParam[TableStore]):
    """Each item's labels as gold counts them: the latest analyst correction where there is one, else the model's."""
    yield from step_runner.run(context, "feedback_labels", table_store)


label_assets = [label_corrections, feedback_labels]
