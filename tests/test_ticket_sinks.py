"""Ticket sinks: the local ticket store, and Jira through the real `jira` client against a loopback Jira."""

from __future__ import annotations

import base64
import json
import multiprocessing
from datetime import date

import pytest

from feedback_assets.alerts.model import Owner
from resources.tickets import JiraTicketSink, LocalTicketStore, TicketSinkError, TicketsResource
from tests.alert_factory import make_alert
from tests.loopback_jira import LoopbackJira

DUE = date(2024, 3, 17)


# ---- the local ticket store ---------------------------------------------------------------------


@pytest.fixture
def local(tmp_path) -> LocalTicketStore:
    return LocalTicketStore(tmp_path / "tickets")


def test_local_keys_are_sequential_per_project_with_one_file_each(local):
    fit_a = local.create(make_alert(), DUE)
    fit_b = local.create(make_alert(value="JKT-2000"), DUE)
    ops = local.create(make_alert(owner=Owner("Ops", "OPS", "#ops-alerts", 5)), DUE)

    assert [fit_a.key, fit_b.key, ops.key] == ["FIT-1", "FIT-2", "OPS-1"]
    assert sorted(p.name for p in local.root.glob("*.md")) == ["FIT-1.md", "FIT-2.md", "OPS-1.md"]
    assert fit_a.url == local.path_of("FIT-1").resolve().as_uri() and fit_a.status == "open"
    assert not list(local.root.glob(".tickets.*.tmp")), "the index is replaced atomically"


def test_local_index_row_describes_the_ticket(local):
    alert = make_alert()
    local.create(alert, DUE)
    [row] = [json.loads(line) for line in local.index_path.read_text().splitlines()]

    assert row["key"] == "FIT-1" and row["project"] == "FIT" and row["status"] == "open"
    assert row["summary"] == "[velocity] size_runs_small on sku=JKT-1042: 14 today, 4.2× the 28-day mean"
    assert row["labels"] == [alert.dedupe_label, alert.breach_label, "feedback-to-fix"]
    assert row["priority"] == "High" and row["due"] == "2024-03-17" and row["comments"] == 0
    assert row["series_key"] == alert.series_key and row["breach_key"] == alert.breach_key
    assert row["created_at"] and local.tickets() == [row]
    body = local.path_of("FIT-1").read_text()
    assert body.startswith("# FIT-1: ") and alert.breach_label in body and alert.quotes[0] in body


def test_local_comments_append_to_the_file_and_are_found_by_marker(local):
    first = make_alert()
    repeat = make_alert(day=date(2024, 3, 21), count=19)
    ticket = local.create(first, DUE)
    body = local.path_of(ticket.key).read_text()

    assert not local.has_comment(ticket.key, repeat.breach_label)
    assert not local.has_comment(ticket.key, first.breach_label), "the ticket body is not a comment"
    local.comment(ticket.key, repeat)

    text = local.path_of(ticket.key).read_text()
    assert text.startswith(body) and "## Comment 1: breached again on 2024-03-21" in text
    assert local.has_comment(ticket.key, repeat.breach_label)
    assert local.tickets()[0]["comments"] == 1
    with pytest.raises(TicketSinkError):
        local.comment("FIT-99", repeat)


def test_local_find_open_skips_closed_tickets_and_find_any_keeps_them(local):
    old = local.create(make_alert(), DUE)
    new = local.create(make_alert(day=date(2024, 3, 28)), date(2024, 3, 31))
    series = make_alert().dedupe_label

    assert [t.key for t in local.find_open(series)] == [old.key, new.key]
    local.close(old.key)
    assert [t.key for t in local.find_open(series)] == [new.key]
    assert [(t.key, t.status) for t in local.find_any(series)] == [(old.key, "done"), (new.key, "open")]
    assert [t.key for t in local.find_any(make_alert().breach_label)] == [old.key]
    assert local.find_any("f2f-breach-000000000000") == []


def _create_many(root, worker: int, count: int) -> None:
    store = LocalTicketStore(root)
    for i in range(count):
        store.create(make_alert(value=f"SKU-{worker}-{i}"), DUE)


def test_concurrent_processes_never_share_a_ticket_number(local):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_create_many, args=(local.root, w, 5)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    keys = [row["key"] for row in local.tickets()]
    assert sorted(keys, key=lambda k: int(k.split("-")[1])) == [f"FIT-{n}" for n in range(1, 21)]
    assert len(list(local.root.glob("FIT-*.md"))) == 20


# ---- Jira against the loopback ------------------------------------------------------------------


@pytest.fixture
def jira_server():
    with LoopbackJira() as server:
        yield server


def jira_sink(server: LoopbackJira, **kwargs) -> JiraTicketSink:
    return JiraTicketSink(server.url, server.user, server.api_token, max_retry_delay=0, **kwargs)


def test_jira_create_sends_one_post_with_every_field(jira_server):
    alert = make_alert()
    ticket = jira_sink(jira_server).create(alert, DUE)

    [request] = jira_server.requests
    assert request["method"] == "POST" and request["path"] == "/rest/api/2/issue" and request["status"] == 201
    fields = request["body"]["fields"]
    assert fields["project"] == {"key": "FIT"} and fields["issuetype"] == {"name": "Task"}
    assert fields["summary"] == "[velocity] size_runs_small on sku=JKT-1042: 14 today, 4.2× the 28-day mean"
    assert fields["labels"] == [alert.dedupe_label, alert.breach_label, "feedback-to-fix"]
    assert fields["priority"] == {"name": "High"} and fields["duedate"] == "2024-03-17"
    assert alert.breach_label in fields["description"] and "{quote}" in fields["description"]
    assert ticket.key == "FIT-1" and ticket.url == f"{jira_server.url}/browse/FIT-1"
    assert ticket.labels == tuple(fields["labels"]) and ticket.status == "open"
    assert request["headers"]["authorization"] == "***"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_jira_lost_create_answer_raises_and_leaves_exactly_one_issue(jira_server, status):
    jira_server.add_fault("fail_after_create", status=status)
    alert = make_alert()

    with pytest.raises(TicketSinkError) as failure:
        jira_sink(jira_server).create(alert, DUE)

    assert failure.value.status == status
    assert [r["method"] for r in jira_server.requests] == ["POST"], "a create is never re-sent"
    [issue] = jira_server.issues
    assert issue["fields"]["labels"][1] == alert.breach_label


def test_jira_connection_dropped_after_create_is_not_retried(jira_server):
    jira_server.add_fault("drop_after_create")

    with pytest.raises(TicketSinkError) as failure:
        jira_sink(jira_server).create(make_alert(), DUE)

    assert failure.value.status is None and "ConnectionError" in str(failure.value)
    assert len(jira_server.requests) == 1 and len(jira_server.issues) == 1


def test_jira_find_any_finds_a_lost_create_once_search_catches_up(jira_server):
    jira_server.search_lag = 2
    jira_server.add_fault("fail_after_create", status=502)
    sink, alert = jira_sink(jira_server), make_alert()
    with pytest.raises(TicketSinkError):
        sink.create(alert, DUE)

    attempts = [sink.find_any(alert.breach_label) for _ in range(3)]

    assert attempts[:2] == [[], []]
    assert [(t.key, t.status) for t in attempts[2]] == [("FIT-1", "open")]
    searches = [r["path"] for r in jira_server.requests if "/search" in r["path"]]
    assert len(searches) == 3 and all(p.startswith("/rest/api/2/search/jql?") for p in searches)
    assert "ORDER+BY+created+ASC" in searches[0]


def test_jira_find_open_excludes_done_issues(jira_server):
    sink = jira_sink(jira_server)
    first = sink.create(make_alert(), DUE)
    second = sink.create(make_alert(day=date(2024, 3, 28)), date(2024, 3, 31))
    series = make_alert().dedupe_label

    assert [t.key for t in sink.find_open(series)] == [first.key, second.key]
    jira_server.mark_done(first.key)
    assert [t.key for t in sink.find_open(series)] == [second.key]
    assert [(t.key, t.status) for t in sink.find_any(series)] == [(first.key, "done"), (second.key, "open")]
    jql = [r["path"] for r in jira_server.requests if "/search/jql" in r["path"]]
    assert "statusCategory+%21%3D+Done" in jql[0] and "statusCategory" not in jql[-1]


def test_jira_comment_and_has_comment(jira_server, monkeypatch):
    monkeypatch.setattr(JiraTicketSink, "COMMENT_PAGE", 2)
    sink = jira_sink(jira_server)
    ticket = sink.create(make_alert(), DUE)
    repeats = [make_alert(day=date(2024, 3, 20 + i), count=15 + i) for i in range(3)]

    assert not sink.has_comment(ticket.key, repeats[0].breach_label)
    for repeat in repeats:
        sink.comment(ticket.key, repeat)

    assert sink.has_comment(ticket.key, repeats[2].breach_label), "found on the second page"
    assert not sink.has_comment(ticket.key, make_alert().breach_label), "the description is not a comment"
    comments = jira_server.comments_of(ticket.key)
    assert len(comments) == 3 and "h3. Breached again on 2024-03-20" in comments[0]["body"]
    listed = [r["path"] for r in jira_server.requests if r["method"] == "GET" and r["path"].count("/comment")]
    assert "startAt=2&maxResults=2" in listed[2]


@pytest.mark.parametrize("kind", ["429", "503"])
def test_jira_reads_are_retried(jira_server, kind):
    sink, alert = jira_sink(jira_server), make_alert()
    sink.create(alert, DUE)
    jira_server.add_fault(kind, route="search", retry_after=0)

    assert [t.key for t in sink.find_any(alert.breach_label)] == ["FIT-1"]
    statuses = [r["status"] for r in jira_server.requests if "/search/jql" in r["path"]]
    assert statuses == [int(kind), 200]


def test_jira_create_is_not_retried_even_on_429(jira_server):
    jira_server.add_fault("429", route="create", retry_after=0)
    with pytest.raises(TicketSinkError) as failure:
        jira_sink(jira_server).create(make_alert(), DUE)
    assert failure.value.status == 429 and jira_server.issues == []
    assert len(jira_server.requests) == 1


def test_jira_errors_never_carry_the_token(jira_server):
    wrong = JiraTicketSink(jira_server.url, jira_server.user, "wrong-token-xyz", max_retry_delay=0)
    with pytest.raises(TicketSinkError) as unauthorized:
        wrong.find_any(make_alert().dedupe_label)
    jira_server.add_fault("fail_after_create")
    with pytest.raises(TicketSinkError) as lost:
        jira_sink(jira_server).create(make_alert(), DUE)

    assert unauthorized.value.status == 401
    basic = base64.b64encode(f"{jira_server.user}:{jira_server.api_token}".encode()).decode()
    for error in (unauthorized.value, lost.value):
        text = f"{error} {error!r}"
        assert jira_server.api_token not in text and basic not in text and "wrong-token-xyz" not in text
        assert error.__cause__ is None and error.__context__ is None, "no chained response holding the auth header"


def test_jira_labels_cannot_inject_jql(jira_server):
    with pytest.raises(ValueError):
        jira_sink(jira_server).find_any('x" OR project = FIT OR labels = "y')
    assert jira_server.requests == []


def test_jira_server_deployment_uses_the_older_search_endpoint():
    with LoopbackJira(deployment="server") as server:
        sink, alert = jira_sink(server, cloud=False), make_alert()
        sink.create(alert, DUE)
        assert [t.key for t in sink.find_open(alert.dedupe_label)] == ["FIT-1"]
        assert any(r["path"].startswith("/rest/api/2/search?") for r in server.requests)


def test_cloud_refuses_the_removed_search_endpoint(jira_server):
    with pytest.raises(TicketSinkError) as gone:
        jira_sink(jira_server, cloud=False).find_any(make_alert().dedupe_label)
    assert gone.value.status == 410


# ---- the resource -------------------------------------------------------------------------------


def test_resource_picks_jira_only_when_fully_configured(tmp_path):
    local = TicketsResource(ticket_dir=str(tmp_path)).sink()
    partial = TicketsResource(ticket_dir=str(tmp_path), jira_url="https://acme.atlassian.net", jira_user="bot").sink()
    jira = TicketsResource(
        ticket_dir=str(tmp_path), jira_url="https://acme.atlassian.net", jira_user="bot", jira_api_token="t",
        issue_type="Bug",
    ).sink()

    assert isinstance(local, LocalTicketStore) and local.root == tmp_path
    assert isinstance(partial, LocalTicketStore)
    assert isinstance(jira, JiraTicketSink) and jira.issue_type == "Bug" and jira.name == "jira"
