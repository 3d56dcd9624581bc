"""Freshness: each daily asset is expected to have run between 06:00 UTC yesterday and 06:00 UTC today."""

from datetime import timedelta

import dagster as dg

DAILY_BY_SIX_UTC = dg.FreshnessPolicy.cron(deadline_cron="0 6 * * *", lower_bound_delta=timedelta(hours=24), timezone="UTC")
