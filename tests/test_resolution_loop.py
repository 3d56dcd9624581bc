"""Resolutions back into the warehouse: each ticket state kept once, each resolved ticket tied to its alert's series."""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg

from feedback_assets.alerts.dispatch import Dispatcher
from feedback_assets.alerts.ledger import DispatchLedger
from feedback_assets.alerts.resolutions import load_resolution_mapping
from feedback_assets.roi.resolutions import (
    pending_days,
    resolution_rows,
    stored_events,
    sync_resolutions,
    write_resolutions,
)
from resources.settings import settings
from resources.slack import SlackOutbox
from resources.tickets import LocalTicketStore, TicketsResource
from sensors.resolutions import ticket_resolutions_sensor
from tests.alert_factory import make_alert

ALERT_DAY = date(2026, 10, 14)
FIX = datetime(2026, 10, 20, 16, tzinfo=UTC)


def mapping():
    return load_resolution_mapping(settings().config_dir / "resolutions.yaml")


def opened(store, tickets: LocalTicketStore, **overrides):
    dispatcher = Dispatcher(DispatchLedger(store), tickets, SlackOutbox(tickets.root.parent / "outbox.jsonl"), "run-1")
    return dispatcher.dispatch(make_alert(day=ALERT_DAY, **overrides)).ticket


def test_a_resolved_ticket_lands_on_its_resolution_day_with_the_alert_that_opened_it(store, feedback_home):
    tickets = LocalTicketStore(feedback_home / "tickets")
    ticket = opened(store, tickets)
    tickets.resolve(ticket.key, "resolved", "size guide updated", FIX)

    synced = sync_resolutions(tickets, store, mapping(), None)
    again = sync_resolutions(tickets, store, mapping(), synced.cursor)

    assert len(synced.events) == 1 and again.events == [], "a state is kept once, however often it is polled"
    rows = resolution_rows(stored_events(store), store, {}, [FIX.date()])[FIX.date()]
    assert len(rows) == 1
    row = rows[0]
    assert row["ticket_key"] == ticket.key and row["code"] == "resolved" and row["note"] == "size guide updated"
    assert row["series_key"] == "size_runs_small:sku=JKT-1042" and row["alert_day"] == ALERT_DAY
    assert row["days_to_fix"] == 6


def test_a_reopened_ticket_leaves_its_old_day_and_both_days_are_rebuilt(store, feedback_home):
    tickets = LocalTicketStore(feedback_home / "tickets")
    ticket = opened(store, tickets)
    tickets.resolve(ticket.key, "resolved", "", FIX)
    sync_resolutions(tickets, store, mapping(), None)
    days, watermark = pending_days(store, None)
    assert days == [FIX.date()]
    write_resolutions(store, resolution_rows(stored_events(store), store, {}, days))  # the run it requested

    reopened = datetime(2026, 10, 23, 9, tzinfo=UTC)
    tickets.resolve(ticket.key, "open", "came back", reopened)
    sync_resolutions(tickets, store, mapping(), None)
    days, _ = pending_days(store, watermark)

    assert days == [FIX.date()], "the day it left is rebuilt; the reopening itself is no resolution"
    assert resolution_rows(stored_events(store), store, {}, [FIX.date(), reopened.date()]) == {
        FIX.date(): [], reopened.date(): []}

    tickets.resolve(ticket.key, "resolved", "fixed for good", datetime(2026, 10, 25, 9, tzinfo=UTC))
    sync_resolutions(tickets, store, mapping(), None)
    assert pending_days(store, watermark)[0] == [FIX.date(), date(2026, 10, 25)]


def test_the_sensor_requests_each_changed_day_once_and_again_only_for_new_states(store, feedback_home):
    tickets = LocalTicketStore(feedback_home / "tickets")
    ticket = opened(store, tickets)
    tickets.resolve(ticket.key, "deferred", "supplier change next quarter", FIX)
    resources = {"table_store": store, "tickets": TicketsResource(ticket_dir=str(feedback_home / "tickets"))}

    with dg.build_sensor_context(resources=resources) as context:
        first = ticket_resolutions_sensor(context)
    assert [r.partition_key for r in first.run_requests] == [FIX.date().isoformat()]

    with dg.build_sensor_context(resources=resources, cursor=first.cursor) as context:
        second = ticket_resolutions_sensor(context)
    assert not second.run_requests, "nothing changed since the last tick"


def test_a_tick_that_kept_states_but_died_before_its_runs_is_requested_again(store, feedback_home):
    tickets = LocalTicketStore(feedback_home / "tickets")
    ticket = opened(store, tickets)
    tickets.resolve(ticket.key, "resolved", "", FIX)
    sync_resolutions(tickets, store, mapping(), None)  # kept, but no run was requested (the tick died)
    resources = {"table_store": store, "tickets": TicketsResource(ticket_dir=str(feedback_home / "tickets"))}

    with dg.build_sensor_context(resources=resources) as context:
        result = ticket_resolutions_sensor(context)

    assert [r.partition_key for r in result.run_requests] == [FIX.date().isoformat()]


def test_a_sensor_switched_on_over_a_built_warehouse_asks_for_nothing(store, feedback_home):
    tickets = LocalTicketStore(feedback_home / "tickets")
    ticket = opened(store, tickets)
    tickets.resolve(ticket.key, "resolved", "size guide updated", FIX)
    sync_resolutions(tickets, store, mapping(), None)
    write_resolutions(store, resolution_rows(stored_events(store), store, {}, [FIX.date()]))  # as `feedback roi` does
    resources = {"table_store": store, "tickets": TicketsResource(ticket_dir=str(feedback_home / "tickets"))}

    with dg.build_sensor_context(resources=resources) as context:
        result = ticket_resolutions_sensor(context)

    assert not result.run_requests, "its days already list what the ticket system says"
