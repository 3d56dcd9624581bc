"""Ticket sinks: the local ticket store, and Jira through the real `jira` client against a loopback Jira,
including the resolutions both report back."""

from __future__ import annotations

import base64
import json
import multiprocessing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from feedback_assets.alerts.model import Owner
from feedback_assets.alerts.resolutions import (
    ResolutionEvent,
    latest_per_issue,
    load_resolution_mapping,
    new_events,
    next_cursor,
    poll_start,
)
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


class Clock:
    """A settable clock for the stores (tests never read the wall clock)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


MAPPING = load_resolution_mapping(Path(__file__).resolve().parents[1] / "config" / "resolutions.yaml")
FLOOR = datetime(2000, 1, 1, tzinfo=UTC)
MARCH_20 = datetime(2024, 3, 20, 9, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 3, 25, 12, 0, tzinfo=UTC))


@pytest.fixture
def clocked(tmp_path, clock) -> LocalTicketStore:
    return LocalTicketStore(tmp_path / "clocked", clock=clock)


def test_local_tickets_get_a_store_wide_immutable_id_and_an_update_time(clocked, clock):
    clocked.create(make_alert(), DUE)
    clocked.create(make_alert(owner=Owner("Ops", "OPS", "#ops-alerts", 5)), DUE)

    assert [(row["id"], row["key"]) for row in clocked.tickets()] == [("L-1", "FIT-1"), ("L-2", "OPS-1")]
    assert {row["updated_at"] for row in clocked.tickets()} == {clock.now.isoformat()}
    assert all(row["history"] == [] for row in clocked.tickets())


def test_local_resolve_back_dated_records_the_resolution_on_the_row_and_in_the_file(clocked):
    ticket = clocked.create(make_alert(), DUE)

    row = clocked.resolve(ticket.key, "mitigated", "  Size chart\n corrected;\tmacro live ", at=MARCH_20)

    assert row == clocked.tickets()[0]
    assert row["status"] == "done" and row["resolution"] == "mitigated"
    assert row["resolution_note"] == "Size chart corrected; macro live"
    assert row["resolved_at"] == row["updated_at"] == "2024-03-20T09:30:00+00:00"
    assert [(e["code"], e["at"]) for e in row["history"]] == [("mitigated", "2024-03-20T09:30:00+00:00")]
    assert clocked.path_of(ticket.key).read_text().endswith(
        "\n**Resolved as mitigated** on 2024-03-20 09:30 UTC: Size chart corrected; macro live\n"
    )
    assert clocked.find_open(make_alert().dedupe_label) == []
    assert not list(clocked.root.glob(".tickets.*.tmp")), "the index is replaced atomically"


def test_local_reopen_then_resolve_again_shows_every_event_and_the_latest_wins(clocked):
    key = clocked.create(make_alert(), DUE).key
    clocked.resolve(key, "resolved", at=MARCH_20)
    reopened = clocked.resolve(key, "open", "complaints came back", at=MARCH_20 + timedelta(days=2))
    assert reopened["status"] == "open" and reopened["resolution"] is None and reopened["resolved_at"] is None
    assert [t.key for t in clocked.find_open(make_alert().dedupe_label)] == [key]
    clocked.resolve(key, "deferred", "waiting on the supplier", at=MARCH_20 + timedelta(days=3))

    events = clocked.resolution_events(FLOOR, MAPPING)

    assert [(e.code, e.status, e.status_category, e.resolution) for e in events] == [
        ("resolved", "done", "done", "resolved"),
        ("open", "open", "new", None),
        ("deferred", "done", "done", "deferred"),
    ]
    assert {e.issue_id for e in events} == {"L-1"} and {e.key for e in events} == {key}
    assert events[1].note == "complaints came back" and events[0].labels == tuple(clocked.tickets()[0]["labels"])
    [latest] = latest_per_issue(events).values()
    assert latest.code == "deferred" and latest.note == "waiting on the supplier"
    assert "**Reopened** on 2024-03-22 09:30 UTC: complaints came back" in clocked.path_of(key).read_text()


def test_local_resolve_rejects_unknown_codes_and_keys_and_naive_times(clocked):
    key = clocked.create(make_alert(), DUE).key

    with pytest.raises(ValueError, match="resolution code must be one of"):
        clocked.resolve(key, "fixed")
    with pytest.raises(TicketSinkError) as unknown:
        clocked.resolve("FIT-99", "resolved")
    with pytest.raises(ValueError, match="timezone-aware"):
        clocked.resolve(key, "resolved", at=datetime(2024, 3, 20, 9, 30))

    assert unknown.value.status == 404
    assert clocked.tickets()[0]["status"] == "open" and clocked.tickets()[0]["history"] == []


def test_local_resolution_notes_are_bounded(clocked):
    key = clocked.create(make_alert(), DUE).key
    row = clocked.resolve(key, "invalid", "duplicate " * 200)
    assert len(row["resolution_note"]) == 500 and row["history"][0]["note"] == row["resolution_note"]


def test_local_close_resolves_the_ticket(clocked, clock):
    key = clocked.create(make_alert(), DUE).key
    clocked.close(key)
    [event] = clocked.resolution_events(FLOOR, MAPPING)
    assert (event.code, event.updated_at) == ("resolved", clock.now)


def test_local_rows_written_before_ids_fall_back_to_their_key(clocked):
    clocked.create(make_alert(), DUE)
    old = {k: v for k, v in clocked.tickets()[0].items() if k not in ("id", "updated_at", "history")}
    clocked.index_path.write_text(json.dumps(old) + "\n")

    clocked.resolve("FIT-1", "resolved", at=MARCH_20)
    new = clocked.create(make_alert(value="JKT-2000"), DUE)

    [event] = clocked.resolution_events(FLOOR, MAPPING)
    assert event.issue_id == "FIT-1" and event.key == "FIT-1"
    assert [row.get("id") for row in clocked.tickets()] == [None, "L-1"] and new.key == "FIT-2"


def test_local_events_since_a_cursor_include_resolutions_back_dated_behind_it(clocked, clock):
    first, second = clocked.create(make_alert(), DUE).key, clocked.create(make_alert(value="JKT-2000"), DUE).key
    clocked.resolve(first, "resolved", at=MARCH_20)
    polled = clocked.resolution_events(FLOOR, MAPPING)
    seen, cursor = {e.dedupe_key() for e in polled}, next_cursor(polled, None)
    assert cursor == MARCH_20

    clock.now += timedelta(days=1)
    clocked.resolve(second, "deferred", at=MARCH_20 - timedelta(days=1))
    since = poll_start(cursor, MAPPING.overlap_minutes, FLOOR)
    fresh = new_events(clocked.resolution_events(since, MAPPING), seen)

    assert [(e.key, e.code) for e in fresh] == [(second, "deferred")], "dated before the cursor, recorded after it"
    assert next_cursor(fresh, cursor) == cursor, "the cursor does not move back to the back-dated event"
    assert clocked.resolution_events(clock.now + timedelta(minutes=1), MAPPING) == []


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


T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def resolve_all(server: LoopbackJira, sink: JiraTicketSink, resolutions: list[str | None]) -> list[str]:
    """Creates one issue per entry and moves each, a minute apart after T0, to Done with it (None: In Progress)."""
    keys = [sink.create(make_alert(value=f"SKU-{n}"), DUE).key for n in range(len(resolutions))]
    for minute, (key, resolution) in enumerate(zip(keys, resolutions, strict=True), start=1):
        if resolution is None:
            server.transition(key, "In Progress", "indeterminate", None, at=T0 + timedelta(minutes=minute))
        else:
            server.transition(key, "Done", "done", resolution, at=T0 + timedelta(minutes=minute))
    return keys


def searches(server: LoopbackJira) -> list[str]:
    return [unquote_plus(r["path"]) for r in server.requests if "/search" in r["path"]]


def test_jira_resolution_events_page_through_every_issue_once():
    resolutions = ["Done", "Fixed", "Won't Do", "Duplicate", "Cannot Reproduce", "Workaround", "Shipped", None]
    with LoopbackJira(page_size=3, clock=Clock(T0)) as server:
        sink = jira_sink(server)
        keys = resolve_all(server, sink, resolutions)

        events = sink.resolution_events(FLOOR, MAPPING)

        assert [e.key for e in events] == keys, "each issue once, oldest update first"
        assert [e.code for e in events] == [
            "resolved", "resolved", "deferred", "invalid", "invalid", "mitigated", "resolved", "open",
        ]
        assert [e.updated_at for e in events] == [T0 + timedelta(minutes=m) for m in range(1, 9)]
        pages = searches(server)
        assert len(pages) == 3 and "nextPageToken" not in pages[0]
        assert "nextPageToken=3" in pages[1] and "nextPageToken=6" in pages[2]
        assert all(
            'jql=labels = "feedback-to-fix" AND updated >= "2000-01-01 00:00" ORDER BY updated ASC' in page
            for page in pages
        )
        assert "fields=status&fields=resolution&fields=labels&fields=updated" in pages[0]


def test_jira_events_carry_the_immutable_issue_id_and_the_mapped_state():
    with LoopbackJira(clock=Clock(T0)) as server:
        sink = jira_sink(server)
        wont, duplicate, parked, reopened = resolve_all(server, sink, ["Won't Do", "Duplicate", None, "Done"])
        server.transition(parked, "Deferred", "new", None, at=T0 + timedelta(minutes=10))
        # A workflow that reopens without clearing the resolution.
        server.transition(reopened, "Reopened", "new", "Done", at=T0 + timedelta(minutes=11))

        events = {e.key: e for e in sink.resolution_events(FLOOR, MAPPING)}

        ids = {issue["key"]: issue["id"] for issue in server.issues}
        assert {key: e.issue_id for key, e in events.items()} == ids and ids[wont] != wont
        won = events[wont]
        assert (won.status, won.status_category, won.resolution) == ("Done", "done", "Won't Do")
        assert {key: e.code for key, e in events.items()} == {
            wont: "deferred", duplicate: "invalid", parked: "deferred", reopened: "open",
        }
        assert events[wont].note == "" and "feedback-to-fix" in events[wont].labels
        assert events[parked].updated_at == T0 + timedelta(minutes=10)


def test_jira_a_resolution_the_index_lags_behind_is_caught_by_the_next_overlapping_poll():
    clock = Clock(T0)
    with LoopbackJira(clock=clock) as server:
        sink = jira_sink(server)
        lagging, prompt, untouched = (sink.create(make_alert(value=f"SKU-{n}"), DUE).key for n in range(3))
        seen: set[str] = set()
        kept: list[ResolutionEvent] = []
        cursor: datetime | None = None

        def poll() -> list[ResolutionEvent]:
            nonlocal cursor
            polled = sink.resolution_events(poll_start(cursor, MAPPING.overlap_minutes, FLOOR), MAPPING)
            fresh = new_events(polled, seen)
            seen.update(e.dedupe_key() for e in fresh)
            kept.extend(fresh)
            cursor = next_cursor(polled, cursor)
            return fresh

        assert [e.key for e in poll()] == [lagging, prompt, untouched]
        server.update_lag = 1
        server.transition(lagging, "Done", "done", "Done", at=T0 + timedelta(minutes=2))
        server.update_lag = 0
        server.transition(prompt, "Done", "done", "Won't Do", at=T0 + timedelta(minutes=3, seconds=30))

        assert [(e.key, e.code) for e in poll()] == [(prompt, "deferred")], "the index still has the old state"
        assert cursor == T0 + timedelta(minutes=3, seconds=30)
        caught = poll()
        assert [(e.key, e.code) for e in caught] == [(lagging, "resolved")]
        assert caught[0].updated_at < kept[3].updated_at, "dated before the cursor: only the overlap reaches it"
        assert poll() == []

        states = [(e.issue_id, e.updated_at) for e in kept]
        assert len(states) == len(set(states)) == 5
        assert {e.key: e.code for e in latest_per_issue(kept).values()} == {
            lagging: "resolved", prompt: "deferred", untouched: "open",
        }


def test_jira_a_comment_is_a_change_so_the_issue_is_observed_again_in_its_current_state():
    clock = Clock(T0)
    with LoopbackJira(clock=clock) as server:
        sink = jira_sink(server)
        [key] = resolve_all(server, sink, ["Done"])
        clock.now = T0 + timedelta(hours=1)
        sink.comment(key, make_alert(day=date(2024, 3, 21)))

        [event] = sink.resolution_events(T0 + timedelta(minutes=30), MAPPING)

        assert (event.code, event.updated_at) == ("resolved", T0 + timedelta(hours=1))


def test_jira_poll_dates_are_written_in_the_bot_users_time_zone_and_floored_to_the_minute():
    with LoopbackJira(time_zone="America/New_York", clock=Clock(T0)) as server:
        sink = jira_sink(server)
        early, late = resolve_all(server, sink, ["Done", "Done"])
        server.transition(early, "Done", "done", "Done", at=datetime(2026, 12, 1, 15, 4, 10, tzinfo=UTC))
        server.transition(late, "Done", "done", "Done", at=datetime(2026, 12, 1, 15, 5, tzinfo=UTC))

        events = sink.resolution_events(datetime(2026, 12, 1, 15, 4, 59, tzinfo=UTC), MAPPING)

        assert [e.key for e in events] == [late], "the minute's earlier update is Jira's, not ours"
        [search] = searches(server)
        assert 'updated >= "2026-12-01 10:04"' in search, "15:04 UTC is 10:04 in New York"
        assert sum(r["path"].endswith("/myself") for r in server.requests) == 1


def test_jira_poll_dates_in_the_hour_a_dst_change_repeats_start_an_hour_earlier():
    with LoopbackJira(time_zone="America/New_York", clock=Clock(T0)) as server:
        sink = jira_sink(server)
        [key] = resolve_all(server, sink, ["Done"])
        # 05:45 UTC is 01:45 EDT; at 02:00 EDT the clocks go back to 01:00 EST (06:00 UTC).
        server.transition(key, "Done", "done", "Done", at=datetime(2026, 11, 1, 5, 45, tzinfo=UTC))

        [event] = sink.resolution_events(datetime(2026, 11, 1, 5, 30, tzinfo=UTC), MAPPING)

        assert event.key == key and 'updated >= "2026-11-01 00:30"' in searches(server)[0]


def test_jira_poll_dates_widen_when_the_bot_user_has_no_time_zone():
    with LoopbackJira(time_zone=None, clock=Clock(T0)) as server:
        sink = jira_sink(server)
        [key] = resolve_all(server, sink, ["Done"])

        [event] = sink.resolution_events(T0, MAPPING)

        assert event.key == key and 'updated >= "2026-11-30 22:00"' in searches(server)[0]


@pytest.mark.parametrize("kind", ["429", "503"])
def test_jira_resolution_searches_are_retried(kind):
    with LoopbackJira(clock=Clock(T0)) as server:
        sink = jira_sink(server)
        [key] = resolve_all(server, sink, ["Duplicate"])
        server.add_fault(kind, route="search", retry_after=0)

        assert [(e.key, e.code) for e in sink.resolution_events(FLOOR, MAPPING)] == [(key, "invalid")]
        assert [r["status"] for r in server.requests if "/search/jql" in r["path"]] == [int(kind), 200]


def test_jira_resolution_errors_never_carry_the_token(jira_server):
    wrong = JiraTicketSink(jira_server.url, jira_server.user, "wrong-token-xyz", max_retry_delay=0)
    with pytest.raises(TicketSinkError) as unauthorized:
        wrong.resolution_events(FLOOR, MAPPING)
    jira_server.add_fault("500", route="search")
    with pytest.raises(TicketSinkError) as failed:
        jira_sink(jira_server).resolution_events(FLOOR, MAPPING)

    assert unauthorized.value.status == 401 and failed.value.status == 500
    assert str(failed.value).startswith("Jira search failed: HTTP 500")
    basic = base64.b64encode(f"{jira_server.user}:{jira_server.api_token}".encode()).decode()
    for error in (unauthorized.value, failed.value):
        text = f"{error} {error!r}"
        assert jira_server.api_token not in text and basic not in text and "wrong-token-xyz" not in text
        assert error.__cause__ is None and error.__context__ is None


def test_jira_resolution_polls_need_an_aware_time(jira_server):
    with pytest.raises(ValueError, match="timezone-aware"):
        jira_sink(jira_server).resolution_events(datetime(2026, 12, 1), MAPPING)
    assert jira_server.requests == []


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
