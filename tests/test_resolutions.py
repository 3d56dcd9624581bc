"""Resolution read-back logic: the mapping file, what a ticket state means, and how a cursor polls."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from feedback_assets.alerts.resolutions import (
    OPEN,
    RESOLUTION_CODES,
    ResolutionEvent,
    code_of,
    latest_per_issue,
    load_resolution_mapping,
    new_events,
    next_cursor,
    parse_resolution_mapping,
    poll_start,
)

CONFIG = Path(__file__).resolve().parents[1] / "config" / "resolutions.yaml"
FLOOR = datetime(2000, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)

MINIMAL = b"""
by_resolution: {Done: resolved}
done_default: resolved
overlap_minutes: 10
"""


@pytest.fixture(scope="module")
def mapping():
    return load_resolution_mapping(CONFIG)


def event(issue_id: str, minutes: float, code: str = "resolved", key: str | None = None) -> ResolutionEvent:
    """An event of `issue_id` updated `minutes` after T0."""
    done = code != OPEN
    return ResolutionEvent(
        issue_id=issue_id,
        key=key or f"FIT-{issue_id}",
        updated_at=T0 + timedelta(minutes=minutes),
        status="Done" if done else "To Do",
        status_category="done" if done else "new",
        resolution="Done" if done else None,
        code=code,
        note="",
        labels=("feedback-to-fix",),
    )


# ---- the mapping file -------------------------------------------------------------------------


def test_the_shipped_mapping_covers_the_usual_jira_resolutions(mapping):
    assert mapping.by_resolution["done"] == mapping.by_resolution["fixed"] == "resolved"
    assert mapping.by_resolution["won't do"] == mapping.by_resolution["won't fix"] == "deferred"
    assert {mapping.by_resolution[name] for name in ("duplicate", "cannot reproduce", "not a bug")} == {"invalid"}
    assert mapping.by_resolution["workaround"] == mapping.by_resolution["mitigated"] == "mitigated"
    assert mapping.by_status == {"deferred": "deferred", "parked": "deferred"}
    assert mapping.done_default == "resolved" and mapping.overlap_minutes == 10
    assert set(mapping.by_resolution.values()) | set(mapping.by_status.values()) <= set(RESOLUTION_CODES)


def test_the_version_is_a_short_hash_of_the_file_and_loading_is_cached(mapping):
    assert len(mapping.version) == 12 and mapping.version == parse_resolution_mapping(CONFIG.read_bytes()).version
    assert parse_resolution_mapping(MINIMAL).version != mapping.version
    assert load_resolution_mapping(CONFIG) is mapping


def test_a_minimal_file_needs_no_statuses():
    minimal = parse_resolution_mapping(MINIMAL)
    assert dict(minimal.by_resolution) == {"done": "resolved"} and dict(minimal.by_status) == {}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"by_resolution: {Done: fixed}\ndone_default: resolved\noverlap_minutes: 10",
         "by_resolution['Done']: 'fixed' is not one of resolved, mitigated, deferred, invalid"),
        (b"by_status: {Parked: later}\ndone_default: resolved\noverlap_minutes: 10", "by_status['Parked']: 'later'"),
        (b"done_default: open\noverlap_minutes: 10", "done_default: 'open' is not one of"),
        (b"by_resolution: {Done: resolved, DONE: invalid}\ndone_default: resolved\noverlap_minutes: 10",
         "'DONE' repeats 'Done'"),
        (b"done_default: resolved\noverlap_minutes: 0", "overlap_minutes must be a whole number of minutes"),
        (b"done_default: resolved\noverlap_minutes: '10'", "overlap_minutes must be a whole number of minutes"),
        (b"done_default: resolved\noverlap_minutes: 10\nby_resolutions: {}", "unknown keys ['by_resolutions']"),
        (b"by_resolution: [Done]\ndone_default: resolved\noverlap_minutes: 10", "by_resolution must map names"),
        (b"- resolved", "must be a mapping"),
    ],
)
def test_invalid_files_are_rejected_naming_the_bad_entry(document, message):
    with pytest.raises(ValueError) as rejected:
        parse_resolution_mapping(document)
    assert message in str(rejected.value)


# ---- what a state means -----------------------------------------------------------------------


def test_a_done_issue_is_coded_by_its_resolution(mapping):
    assert code_of("done", "Done", "Won't Do", mapping) == "deferred"
    assert code_of("done", "Closed", "Duplicate", mapping) == "invalid"
    assert code_of("done", "Done", "Workaround", mapping) == "mitigated"


def test_names_match_whatever_their_case(mapping):
    assert code_of("done", "Done", "CANNOT REPRODUCE", mapping) == "invalid"
    assert code_of("new", "PARKED", None, mapping) == "deferred"


def test_a_done_issue_with_an_unlisted_or_no_resolution_gets_the_default(mapping):
    assert code_of("done", "Done", "Shipped in 4.2", mapping) == mapping.done_default == "resolved"
    assert code_of("done", "Done", None, mapping) == "resolved"


def test_a_mapped_status_wins_in_any_category(mapping):
    assert code_of("new", "Deferred", None, mapping) == "deferred", "a To Do status, not open"
    assert code_of("done", "Deferred", "Done", mapping) == "deferred", "over the resolution"


def test_an_issue_that_is_not_done_is_open_even_with_a_stale_resolution(mapping):
    assert code_of("new", "To Do", None, mapping) == OPEN
    assert code_of("indeterminate", "In Progress", None, mapping) == OPEN
    assert code_of("new", "Reopened", "Done", mapping) == OPEN, "reopened without clearing the resolution"


# ---- events and polling -----------------------------------------------------------------------


def test_an_event_is_identified_by_issue_id_and_update_time_in_utc():
    berlin = timezone(timedelta(hours=1))
    written_in_berlin = replace(event("10001", 0), updated_at=T0.astimezone(berlin))

    assert event("10001", 0).dedupe_key() == "10001@2026-12-01T10:00:00+00:00"
    assert written_in_berlin.dedupe_key() == event("10001", 0).dedupe_key()
    assert written_in_berlin.updated_at.tzinfo is UTC
    assert event("10001", 0, key="OPS-7").dedupe_key() == event("10001", 0).dedupe_key(), "keys are not identity"


def test_events_need_an_aware_time_and_a_known_code():
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(event("1", 0), updated_at=datetime(2026, 12, 1, 10, 0))
    with pytest.raises(ValueError, match="code must be one of"):
        replace(event("1", 0), code="fixed")


def test_the_first_poll_starts_at_the_floor_and_later_polls_overlap_the_cursor():
    assert poll_start(None, 10, FLOOR) == FLOOR
    assert poll_start(T0, 10, FLOOR) == T0 - timedelta(minutes=10)
    assert poll_start(T0, 0, FLOOR) == T0
    with pytest.raises(ValueError):
        poll_start(datetime(2026, 12, 1), 10, FLOOR)


def test_new_events_drop_what_was_seen_and_repeats_and_come_oldest_first():
    seen = {event("1", 0).dedupe_key()}
    polled = [event("3", 5), event("1", 0), event("2", 5), event("3", 5), event("1", 7, code=OPEN)]

    fresh = new_events(polled, seen)

    assert [(e.issue_id, e.updated_at - T0) for e in fresh] == [
        ("2", timedelta(minutes=5)), ("3", timedelta(minutes=5)), ("1", timedelta(minutes=7)),
    ]
    assert new_events(polled, seen | {e.dedupe_key() for e in fresh}) == []


def test_an_overlapping_poll_rereads_an_event_already_seen_and_keeps_only_the_new_one():
    first = [event("1", 0), event("2", 4)]
    cursor = next_cursor(first, None)
    seen = {e.dedupe_key() for e in new_events(first, set())}

    since = poll_start(cursor, 10, FLOOR)
    second = [e for e in [*first, event("3", 6)] if e.updated_at >= since]

    assert [e.issue_id for e in second] == ["1", "2", "3"], "the overlap reaches back past the cursor"
    assert [e.issue_id for e in new_events(second, seen)] == ["3"]


def test_the_cursor_is_the_newest_update_seen_and_never_moves_backwards():
    assert next_cursor([], None) is None
    assert next_cursor([event("1", 3), event("2", 1)], None) == T0 + timedelta(minutes=3)
    assert next_cursor([], T0) == T0
    assert next_cursor([event("1", -30)], T0) == T0, "an old event re-read by the overlap"
    assert next_cursor([event("1", 30)], T0) == T0 + timedelta(minutes=30)


def test_latest_per_issue_keeps_each_issues_newest_state():
    resolved, reopened, resolved_again = event("1", 0), event("1", 5, code=OPEN), event("1", 9, code="deferred")
    tie_first, tie_second = event("2", 1, code="invalid"), event("2", 1, code="mitigated")

    latest = latest_per_issue([resolved_again, resolved, reopened, tie_first, tie_second])

    assert latest == {"1": resolved_again, "2": tie_second}
