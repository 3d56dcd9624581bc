"""Freshness checks: yesterday's feedback should be in silver by 06:00 UTC each morning."""

import dagster as dg

from feedback_assets.bronze import bronze_assets
from feedback_assets.silver import SILVER_FEEDBACK_KEY

freshness_checks = dg.build_time_partition_freshness_checks(
    assets=[*bronze_assets, SILVER_FEEDBACK_KEY], deadline_cron="0 6 * * *", timezone="UTC"
)

freshness_checks_sensor = dg.build_sensor_for_freshness_checks(
    freshness_checks=freshness_checks, minimum_interval_seconds=15 * 60
)
