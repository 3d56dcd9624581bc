"""Replaying alerting over days already materialized, as if each day had just arrived.

The sample (and any backfill an analyst wants to audit) lands in one ranged run, which the sensor
rightly records without paging. The replay walks the days in order and dispatches each day's alerts
through the same dispatcher the sensor's runs use, so the demo and the backtest see what a team
would have received live.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from feedback_assets import tables
from feedback_assets.alerts.dispatch import Dispatcher
from feedback_assets.alerts.evidence import AlertContext, build_alert
from feedback_assets.alerts.ledger import DispatchLedger
from feedback_assets.alerts.model import DispatchOutcome, SlackSink, TicketSink
from feedback_assets.alerts.planning import PlannedAlert, plan_alerts

from resources.table_store import TableStore


def replay_plans(store: TableStore, start: date | None = None, end: date | None = None) -> list[PlannedAlert]:
    """Every alert of [start, end], day by day, each planned as if its day had been computed the next morning."""
    days = [d for d in store.partition_days(tables.COMPLAINT_VELOCITY) if (not start or d >= start) and (not end or d <= end)]
    return [plan for day in days for plan in plan_alerts(store, {day: day + timedelta(days=1)}, window_days=1)]


def replay_alerts(store: TableStore, tickets: TicketSink, slack: SlackSink, context: AlertContext,
                  start: date | None = None, end: date | None = None,
                  log: Callable[[str], None] = lambda _: None) -> list[DispatchOutcome]:
    """Dispatches every alert of [start, end], day by day, as if computed the next morning.

    Breaches the ledger already holds (posted, or recorded by the sensor) are left as they are.
    """
    dispatcher = Dispatcher(DispatchLedger(store), tickets, slack, context.run_id, log)
    return [dispatcher.dispatch(build_alert(store, plan.series_key, plan.day, context))
            for plan in replay_plans(store, start, end)]
