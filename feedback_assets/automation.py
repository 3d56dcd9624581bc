"""When the daily chain runs by itself.

The roots (bronze per channel and the commerce tables; bronze lands the waiting files first) run
once a day at a configured hour for the newest complete day. Everything downstream runs as soon
as the partitions it reads have changed: the same tick for the daily chain, and for a late file
exactly the days whose inputs the landing sensor's ingest run rewrote (the built-in `eager()`
considers only the latest day, so it would leave those days stale).
"""

import dagster as dg

DEFAULT_DAILY_RUN_HOUR_UTC = 5


def daily_at(hour_utc: int) -> dg.AutomationCondition:
    """The newest complete day, once a day at `hour_utc`."""
    if not 0 <= hour_utc <= 23:
        raise ValueError(f"the daily run hour must be 0..23 (UTC), got {hour_utc}")
    return dg.AutomationCondition.on_cron(f"0 {hour_utc} * * *", "UTC")


def when_inputs_change() -> dg.AutomationCondition:
    """Any day whose upstream partitions changed since it was last handled, once they are all present and settled."""
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("when_inputs_change")


def enrichment_kinds(backend: str) -> set[str]:
    """The kinds the UI shows for the classifier and the themes: what actually runs."""
    return {"python", {"openai": "openai", "azure_openai": "azure"}.get(backend, "huggingface")}
