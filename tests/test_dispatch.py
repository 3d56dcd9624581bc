"""Exactly-once dispatch: one ticket and one Slack post per breach, across retries, crashes and re-runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from feedback_assets.alerts.dispatch import Dispatcher
from feedback_assets.alerts.ledger import POSTED, RECORDED, DispatchLedger
from resources.slack import SlackOutbox
from resources.table_store import table_store_for
from resources.tickets import LocalTicketStore
from tests.alert_factory import make_alert


class Crash(RuntimeError):
    """The process died right after the side effect, before the ledger heard about it."""


class CrashAfterCreate(LocalTicketStore):
    def __init__(self, root, crashes: int = 1):
        super().__init__(root)
        self.crashes = crashes

    def create(self, alert, due):
        ticket = super().create(alert, due)
        if self.crashes:
            self.crashes -= 1
            raise Crash("502 Bad Gateway after the issue was created")
        return ticket


class CrashAfterPost(SlackOutbox):
    def __init__(self, path, crashes: int = 1):
        super().__init__(path)
        self.crashes = crashes

    def post(self, channel, alert, ticket, thread_ts=None):
        posted = super().post(channel, alert, ticket, thread_ts)
        if self.crashes:
            self.crashes -= 1
            raise Crash("connection reset after chat.postMessage")
        return posted


@pytest.fixture(params=["parquet", "delta"])
def ledger(request, feedback_home) -> DispatchLedger:
    """The exactly-once guarantees hold on either table format the ledger can live in."""
    return DispatchLedger(table_store_for(request.param, str(feedback_home / "warehouse")))


def _dispatcher(ledger, tickets, slack, run_id="run-1") -> Dispatcher:
    return Dispatcher(ledger, tickets, slack, run_id, reconcile_waits=(0.0,))


def test_a_breach_opens_one_ticket_and_one_post_and_a_rerun_changes_nothing(ledger, tmp_path):
    tickets, slack = LocalTicketStore(tmp_path / "tickets"), SlackOutbox(tmp_path / "outbox.jsonl")
    alert = make_alert()
    first = _dispatcher(ledger, tickets, slack).dispatch(alert)
    again = _dispatcher(ledger, tickets, slack, "run-2").dispatch(alert)
    assert first.ticket_action == "created" and again.ticket_action == "skipped"
    assert len(tickets.tickets()) == 1 and len(slack.messages()) == 1
    entry = ledger.get(alert.breach_key)
    assert entry.status == POSTED and entry.ticket_key == tickets.tickets()[0]["key"] and entry.attempts == 1
    assert tickets.tickets()[0]["due"] == (alert.day + timedelta(days=alert.owner.sla_days)).isoformat()
    assert slack.messages()[0]["channel"] == alert.owner.slack_channel.lstrip("#")


def test_a_crash_between_create_and_ledger_adopts_the_ticket_instead_of_opening_a_twin(ledger, tmp_path):
    tickets, slack = CrashAfterCreate(tmp_path / "tickets"), SlackOutbox(tmp_path / "outbox.jsonl")
    alert = make_alert()
    with pytest.raises(Crash):
        _dispatcher(ledger, tickets, slack).dispatch(alert)
    assert ledger.get(alert.breach_key).create_attempted_at is not None
    retried = _dispatcher(ledger, tickets, slack, "run-2").dispatch(alert)
    assert retried.ticket_action == "created" and len(tickets.tickets()) == 1 and len(slack.messages()) == 1
    assert ledger.get(alert.breach_key).attempts == 2


def test_a_crash_between_post_and_ledger_finds_the_post_instead_of_posting_twice(ledger, tmp_path):
    tickets, slack = LocalTicketStore(tmp_path / "tickets"), CrashAfterPost(tmp_path / "outbox.jsonl")
    alert = make_alert()
    with pytest.raises(Crash):
        _dispatcher(ledger, tickets, slack).dispatch(alert)
    _dispatcher(ledger, tickets, slack, "run-2").dispatch(alert)
    assert len(tickets.tickets()) == 1 and len(slack.messages()) == 1
    assert ledger.get(alert.breach_key).status == POSTED


def test_a_later_breach_of_the_same_series_comments_on_the_open_ticket_and_replies_in_its_thread(ledger, tmp_path):
    tickets, slack = LocalTicketStore(tmp_path / "tickets"), SlackOutbox(tmp_path / "outbox.jsonl")
    first, later = make_alert(), make_alert(day=make_alert().day + timedelta(days=8), count=20)
    _dispatcher(ledger, tickets, slack).dispatch(first)
    outcome = _dispatcher(ledger, tickets, slack).dispatch(later)
    _dispatcher(ledger, tickets, slack).dispatch(later)
    assert outcome.ticket_action == "commented" and len(tickets.tickets()) == 1
    assert tickets.tickets()[0]["comments"] == 1
    opening, reply = slack.messages()
    assert reply["thread_ts"] == opening["ts"] and reply["breach_key"] == later.breach_key


def test_a_closed_ticket_gets_a_new_ticket_for_a_new_breach(ledger, tmp_path):
    tickets, slack = LocalTicketStore(tmp_path / "tickets"), SlackOutbox(tmp_path / "outbox.jsonl")
    first = make_alert()
    _dispatcher(ledger, tickets, slack).dispatch(first)
    tickets.close(tickets.tickets()[0]["key"])
    outcome = _dispatcher(ledger, tickets, slack).dispatch(make_alert(day=first.day + timedelta(days=9)))
    assert outcome.ticket_action == "created" and len(tickets.tickets()) == 2


def test_other_series_get_their_own_tickets(ledger, tmp_path):
    tickets, slack = LocalTicketStore(tmp_path / "tickets"), SlackOutbox(tmp_path / "outbox.jsonl")
    _dispatcher(ledger, tickets, slack).dispatch(make_alert())
    _dispatcher(ledger, tickets, slack).dispatch(make_alert(value="ELC-2207"))
    _dispatcher(ledger, tickets, slack).dispatch(replace(make_alert(), label="fit_cut_issue"))
    assert len(tickets.tickets()) == 3 and len({m["ts"] for m in slack.messages()}) == 3


def test_recorded_breaches_never_page(ledger, tmp_path):
    tickets, slack = LocalTicketStore(tmp_path / "tickets"), SlackOutbox(tmp_path / "outbox.jsonl")
    alert = make_alert()
    ledger.record(alert.series_key, alert.day, "sensor", "older than the alert window")
    outcome = _dispatcher(ledger, tickets, slack).dispatch(alert)
    assert outcome.ticket_action == "skipped" and ledger.get(alert.breach_key).status == RECORDED
    assert tickets.tickets() == [] and slack.messages() == []


def test_against_jira_and_slack_a_lost_create_answer_and_a_rate_limit_still_give_one_ticket_and_one_post(ledger):
    from resources.slack import SlackWebApiSink
    from resources.tickets import JiraTicketSink
    from tests.loopback_jira import LoopbackJira
    from tests.loopback_slack import LoopbackSlack

    alert = make_alert()
    with LoopbackJira() as jira, LoopbackSlack() as slack_api:
        tickets = JiraTicketSink(jira.url, jira.user, jira.api_token, max_retry_delay=0)
        slack = SlackWebApiSink(slack_api.token, base_url=slack_api.base_url)
        jira.search_lag = 1
        jira.add_fault("fail_after_create", status=502)
        slack_api.add_fault("ratelimited", retry_after=1)
        with pytest.raises(Exception, match="502"):
            _dispatcher(ledger, tickets, slack).dispatch(alert)
        retried = Dispatcher(ledger, tickets, slack, "run-2", reconcile_waits=(0.0, 0.1, 0.1)).dispatch(alert)
        again = _dispatcher(ledger, tickets, slack, "run-3").dispatch(alert)
        assert retried.ticket_action == "created" and again.ticket_action == "skipped"
        assert len(jira.issues) == 1 and len(slack_api.messages("#fit-quality")) == 1
        posts = [r for r in slack_api.requests if r["path"].endswith("chat.postMessage")]
        assert [r["status"] for r in posts] == [429, 200]
        assert ledger.get(alert.breach_key).ticket_key == jira.issues[0]["key"]


def test_a_lost_create_that_search_cannot_see_yet_fails_the_attempt_instead_of_opening_a_twin(ledger):
    from feedback_assets.alerts.dispatch import TicketOutcomeUnknown
    from resources.tickets import JiraTicketSink
    from tests.loopback_jira import LoopbackJira

    alert = make_alert()
    with LoopbackJira() as jira:
        tickets = JiraTicketSink(jira.url, jira.user, jira.api_token, max_retry_delay=0)
        slack = SlackOutbox(Path(ledger.store.root) / "outbox.jsonl")
        jira.search_lag = 5
        jira.add_fault("fail_after_create", status=500)
        with pytest.raises(Exception, match="500"):
            _dispatcher(ledger, tickets, slack).dispatch(alert)
        with pytest.raises(TicketOutcomeUnknown, match="duplicate"):
            _dispatcher(ledger, tickets, slack, "run-2").dispatch(alert)
        # The third attempt searches long enough for the issue to show up, and adopts it.
        outcome = Dispatcher(ledger, tickets, slack, "run-3", reconcile_waits=(0.0,) * 5).dispatch(alert)
        assert outcome.ticket_action == "created" and len(jira.issues) == 1 and len(slack.messages()) == 1


def test_a_retried_post_looks_where_the_first_attempt_posted(ledger, tmp_path):
    tickets, slack = LocalTicketStore(tmp_path / "tickets"), CrashAfterPost(tmp_path / "outbox.jsonl")
    alert = make_alert()
    with pytest.raises(Crash):
        _dispatcher(ledger, tickets, slack).dispatch(alert)
    moved = replace(alert, owner=replace(alert.owner, slack_channel="#renamed-channel"))
    _dispatcher(ledger, tickets, slack, "run-2").dispatch(moved)
    assert [m["channel"] for m in slack.messages()] == ["fit-quality"]
