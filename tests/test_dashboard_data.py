"""What the dashboard counts as an open problem."""

from datetime import UTC, date, datetime

from feedback_assets.roi.dashboard_data import closed_problems


def resolution(key: str, code: str, day: int) -> dict:
    return {"ticket_key": key, "code": code, "resolved_at": datetime(2026, 11, day, 12, tzinfo=UTC)}


def test_fixed_mitigated_and_invalid_problems_are_closed_a_deferred_one_goes_on():
    rows = [resolution("A", "resolved", 2), resolution("B", "mitigated", 3), resolution("C", "invalid", 4),
            resolution("D", "deferred", 5)]
    assert closed_problems(rows, date(2026, 11, 30)) == {"A", "B", "C"}


def test_a_problem_is_closed_only_from_its_resolution_day_and_by_its_latest_code():
    rows = [resolution("A", "resolved", 10), resolution("B", "resolved", 2), resolution("B", "deferred", 6)]
    assert closed_problems(rows, date(2026, 11, 5)) == {"B"}
    assert closed_problems(rows, date(2026, 11, 9)) == set(), "B was reopened and deferred; A is not fixed yet"
    assert closed_problems(rows, date(2026, 11, 10)) == {"A"}
