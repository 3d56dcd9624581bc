"""What every daily Spark table asset shares: partitions, single-run backfills, freshness, kinds, owner."""

from datetime import timedelta

import dagster as dg

from partitions import daily_partitions

# Each daily asset is expected to have run between 06:00 UTC yesterday and 06:00 UTC today.
DAILY_BY_SIX_UTC = dg.FreshnessPolicy.cron(deadline_cron="0 6 * * *", lower_bound_delta=timedelta(hours=24), timezone="UTC")

SPARK_TABLE = {"kinds": {"spark", "parquet"}, "owners": ["team:data-platform"], "freshness_policy": DAILY_BY_SIX_UTC}

# A backfill of any length is one run that reads and writes the whole window.
DAILY_RANGED = {"partitions_def": daily_partitions, "backfill_policy": dg.BackfillPolicy.single_run()}
