"""What a cluster reports per day is taken only for the run's own days and in the metadata types the UI knows."""

from __future__ import annotations

import pytest

from feedback_assets.outcomes import Meta, decode_per_day, encode_per_day, integer, markdown

DAYS = ["2026-10-02", "2026-10-03"]


def test_per_day_metadata_round_trips_through_its_pipes_form():
    per_day = {"2026-10-02": {"dagster/row_count": integer(3), "alerts_raised": markdown("**2 alerts**")}}
    assert decode_per_day(encode_per_day(per_day), DAYS) == per_day


@pytest.mark.parametrize("raw, complaint", [
    (["2026-10-02"], "must be an object of days"),
    ({"2026-10-09": {}}, "did not cover"),
    ({"../../etc": {}}, "did not cover"),
    ({"2026-10-02": "rows"}, "must be an object"),
    ({"2026-10-02": {"x": {"type": "notebook", "raw_value": "/x"}}}, "not a typed value"),
    ({"2026-10-02": {"x": {"type": "md"}}}, "not a typed value"),
    ({"2026-10-02": {"x": 5}}, "not a typed value"),
])
def test_malformed_or_foreign_per_day_metadata_is_refused_with_a_reason(raw, complaint):
    with pytest.raises(ValueError, match=complaint):
        decode_per_day(raw, DAYS)


def test_a_value_keeps_its_type():
    assert decode_per_day({"2026-10-03": {"n": {"type": "int", "raw_value": 7}}}, DAYS) == {"2026-10-03": {"n": Meta("int", 7)}}
