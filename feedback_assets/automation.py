"""When the daily chain runs by itself.

The roots (bronze per channel and the commerce tables; bronze lands the waiting files first) run
once a day at a configured hour for the newest complete day. Everything downstream runs as soon
as the partitions it reads have changed: the same tick for the daily chain, and for a late file
exactly the days whose inputs the landing sensor's ingest run rewrote (the built-in `eager()`
considers only the latest day, so it would leave those days stale).
"""

from datetime import timedelta

import dagster as dg

DEFAULT_DAILY_RUN_HOUR_UTC = 5


def daily_at(hour_utc: int) -> dg.AutomationCondition:
    """The newest complete day, once a day at `hour_utc`."""
    if not 0 <= hour_utc <= 23:
        raise ValueError(f"the daily run hour must be 0..23 (UTC), got {hour_utc}")
    return dg.AutomationCondition.on_cron(f"0 {hour_utc} * * *", "UTC")


def when_inputs_change(optional: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """Any day whose upstream partitions changed since it was last handled, once they are all present and settled.

    `optional` inputs trigger a run when they change but are not waited for: a day may never have
    any (analysts' corrections exist only for the days someone corrected).
    """
    missing = dg.AutomationCondition.any_deps_missing()
    return (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        & ~(missing.ignore(optional) if optional is not None else missing)
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("when_inputs_change")


def reclassify_recent(days: int) -> dg.AutomationCondition:
    """The last `days` days, once, after the classifier's code version changed (taxonomy, prompt or model).

    Opt-in and bounded on purpose: `code_version_changed()` alone would request every day of history,
    which on an LLM backend costs real money; older days are left to a deliberate backfill.
    """
    if days < 1:
        raise ValueError(f"re-classifying recent days needs at least one day, got {days}")
    return (
        dg.AutomationCondition.code_version_changed().since_last_handled()
        & dg.AutomationCondition.in_latest_time_window(timedelta(days=days))
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(f"reclassify_last_{days}_days")


def enrichment_kinds(backend: str) -> set[str]:
    """The kinds the UI shows for the classifier and the themes: what actually runs."""
    return {"python", {"openai": "openai", "azure_openai": "azure"}.get(backend, "huggingface")}
