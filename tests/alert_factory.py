"""A realistic `Alert` for sink and rendering tests; override any field by keyword."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from feedback_assets.alerts.model import Alert, Owner

FIT_QUALITY = Owner(team="Fit Quality", jira_project="FIT", slack_channel="#fit-quality", sla_days=3)


def make_alert(**overrides: Any) -> Alert:
    """A size_runs_small breach on one jacket SKU; keyword arguments replace fields."""
    alert = Alert(
        label="size_runs_small",
        domain="fit",
        dimension="sku",
        value="JKT-1042",
        day=date(2024, 3, 14),
        count=14,
        count_7d=31,
        daily_counts_7d=(2, 3, 2, 4, 3, 3, 14),
        ma7=4.4,
        ma28=3.3,
        lift=14 / 3.3,
        p_value=1.7e-6,
        per_1k_orders=3.12,
        priority_score=72.0,
        revenue_at_risk=12340.0,
        affected_skus=("JKT-1042", "JKT-1043"),
        affected_regions=("EU", "US"),
        quotes=(
            "Ordered my usual M and the sleeves stop above my wrists.",
            "Runs a full size small, had to send it back.",
            "Lovely fabric but the shoulders are tight even in L.",
        ),
        themes=("sleeves too short", "tight shoulders"),
        owner=FIT_QUALITY,
        prompt_version="classify-v3",
        run_id="6f1c2d3e-run",
        asset_url="http://localhost:3000/assets/gold/complaint_velocity",
        support_macro=(
            "Hi {first_name},\n"
            "Thanks for telling us about the fit. This jacket runs small: we'll swap it for the next size up "
            "free of charge. Start the exchange at https://shop.example.com/returns"
        ),
    )
    return replace(alert, **overrides)
