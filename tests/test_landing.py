"""Landing: mappings, parsing native shapes, the ledger that lands each file once, late files, dates."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from feedback_assets import tables
from feedback_assets.landing.mapping import LandingMapping, MappingError, load_mapping, load_preset, preset_names
from feedback_assets.landing.parse import LandingError, extract, field_value, parse_timestamp, read_records
from feedback_assets.landing.registry import DateOptions

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

REVIEWS_HEADER = "review_id,submitted_at,product_sku,variant,stars,headline,body,reviewer_email,customer_id,order_ref,ship_region"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def reviews_csv(*rows: str) -> str:
    return "\n".join([REVIEWS_HEADER, *rows]) + "\n"


def review(review_id: str, when: str, body: str = "Runs small in the shoulders") -> str:
    return f'{review_id},{when},JKT-1042,M,2,Too small,"{body}",a@example.com,C-1,ORD-1,us_west'


class TestMappings:
    def test_every_preset_is_a_valid_mapping(self):
        assert {"product_reviews", "support_tickets", "surveys", "app_store_reviews", "return_reasons",
                "marketplace_messages", "orders", "returns", "sku_catalog", "womens_clothing_reviews",
                "datafiniti_amazon_reviews"} <= set(preset_names())
        for name in preset_names():
            assert load_preset(name).name == name

    def test_unknown_preset_names_the_known_ones(self):
        with pytest.raises(MappingError, match="unknown source preset 'nope'.*product_reviews"):
            load_preset("nope")

    def test_a_mapping_must_cover_the_contract(self, tmp_path):
        path = write(tmp_path / "m.yaml", "name: m\ncontract: feedback\nchannel: surveys\nformat: csv\n"
                     "timestamp: {field: t}\nfields: {source_id: id}\n")
        with pytest.raises(MappingError, match=r"needs \['text'\] mapped"):
            load_mapping(path)

    def test_a_mapping_cannot_invent_fields(self, tmp_path):
        path = write(tmp_path / "m.yaml", "name: m\ncontract: feedback\nchannel: surveys\nformat: csv\n"
                     "timestamp: {field: t}\nfields: {source_id: id, text: c, owner: o}\n")
        with pytest.raises(MappingError, match=r"\['owner'\] are not fields of contract feedback"):
            load_mapping(path)

    def test_a_mapping_needs_a_known_channel(self):
        with pytest.raises(ValueError, match="name a channel"):
            LandingMapping(name="m", contract="feedback", channel="fax", format="csv",
                           timestamp={"field": "t"}, fields={"source_id": "id", "text": "c"})


class TestParsing:
    def test_paths_reach_into_nested_json(self):
        record = {"transcript": [{"role": "customer", "text": "hi"}, {"role": "agent", "text": "hello"},
                                 {"role": "customer", "text": "still broken"}], "order": {"id": "ORD-1"}}
        assert field_value(record, ["transcript[role=customer].text"]) == "hi\nstill broken"
        assert extract(record, "transcript[*].role") == ["customer", "agent", "customer"]
        assert field_value(record, ["order.id"]) == "ORD-1"
        assert field_value(record, ["order.missing"]) is None

    def test_flat_columns_with_dots_are_matched_whole(self):
        assert field_value({"reviews.text": "ok"}, ["reviews.text"]) == "ok"

    def test_blank_values_are_empty_text_not_missing(self):
        assert field_value({"a": "", "b": "  "}, ["a", "b"]) == ""

    @pytest.mark.parametrize(
        ("spec", "record", "expected"),
        [
            ({"field": "t"}, {"t": "2026-10-01T23:30:00-05:00"}, datetime(2026, 10, 2, 4, 30, tzinfo=UTC)),
            ({"field": "t", "format": "epoch_seconds"}, {"t": 1790000000}, datetime.fromtimestamp(1790000000, UTC)),
            ({"field": "t", "format": "epoch_millis"}, {"t": "1790000000000"}, datetime.fromtimestamp(1790000000, UTC)),
            ({"field": "t", "format": "strptime", "pattern": "%d.%m.%Y %H:%M", "timezone_field": "tz"},
             {"t": "01.10.2026 22:15", "tz": "America/Los_Angeles"}, datetime(2026, 10, 2, 5, 15, tzinfo=UTC)),
            ({"field": "t", "format": "rfc2822"}, {"t": "Thu, 01 Oct 2026 14:03:22 +0200"},
             datetime(2026, 10, 1, 12, 3, 22, tzinfo=UTC)),
        ],
    )
    def test_timestamps_in_every_native_format_become_utc(self, spec, record, expected):
        from feedback_assets.landing.mapping import TimestampSpec

        assert parse_timestamp(record, TimestampSpec(**spec)) == (expected, None)

    @pytest.mark.parametrize("raw", ["not a date", "31.02.2026 25:61", ""])
    def test_unreadable_timestamps_say_why(self, raw):
        from feedback_assets.landing.mapping import TimestampSpec

        moment, error = parse_timestamp({"t": raw}, TimestampSpec(field="t"))
        assert moment is None and error

    def test_unknown_time_zone_is_an_error_not_a_guess(self):
        from feedback_assets.landing.mapping import TimestampSpec

        spec = TimestampSpec(field="t", format="strptime", pattern="%Y-%m-%d", timezone_field="tz")
        assert parse_timestamp({"t": "2026-10-01", "tz": "Mars/Olympus"}, spec) == (None, "unknown time zone 'Mars/Olympus'")

    def test_malformed_jsonl_lines_are_kept_with_the_reason(self, tmp_path):
        good = '{"ticket_id": "T%d", "created_at": "2026-10-01T10:00:00Z", "subject": "s", "transcript": []}'
        path = write(tmp_path / "t.jsonl", f'{good % 1}\n{{"ticket_id": \n[1, 2]\n\n{good % 2}\n')
        records = list(read_records(path, load_preset("support_tickets")))
        assert [(r.line, r.parse_error is None) for r in records] == [(1, True), (2, False), (3, False), (5, True)]
        assert records[1].parse_error.startswith("invalid JSON") and records[1].raw == '{"ticket_id": '
        assert records[2].parse_error == "a JSON line must hold an object, not an array"

    def test_csv_rows_with_the_wrong_width_are_kept_with_the_reason(self, tmp_path):
        path = write(tmp_path / "r.csv", reviews_csv(review("R1", "2026-10-01T10:00:00Z"), "R2,2026-10-01T10:00:00Z,JKT-1042"))
        records = list(read_records(path, load_preset("product_reviews")))
        assert records[0].parse_error is None
        assert records[1].parse_error == "expected 11 columns, found 3" and records[1].line == 3

    def test_invalid_utf8_is_flagged_per_record(self, tmp_path):
        body = review("R1", "2026-10-01T10:00:00Z", "caf\xe9").encode("latin-1")
        path = write(tmp_path / "r.csv", (REVIEWS_HEADER + "\n").encode() + body + b"\n" +
                     review("R2", "2026-10-01T10:00:00Z").encode() + b"\n")
        first, second = read_records(path, load_preset("product_reviews"))
        assert first.encoding_error and "\ufffd" in first.fields["body"]
        assert not second.encoding_error

    def test_missing_required_columns_reject_the_whole_file_with_the_names(self, tmp_path):
        path = write(tmp_path / "r.csv", "review_id,stars\nR1,5\n")
        with pytest.raises(LandingError, match="missing required column.*body.*headline.*submitted_at"):
            list(read_records(path, load_preset("product_reviews")))


class TestRegistry:
    def test_a_file_lands_once_whatever_its_name(self, registry, tmp_path):
        mapping = load_preset("product_reviews")
        source = write(tmp_path / "reviews_2026-10-01.csv", reviews_csv(review("R1", "2026-10-01T10:00:00Z")))
        first = registry.register(registry.stage(source, mapping), mapping, "run-1", now=NOW)
        copy = write(tmp_path / "renamed.csv", source.read_bytes())
        again = registry.register(registry.stage(copy, mapping), mapping, "run-2", now=NOW)
        assert (first.status, first.rows) == ("registered", 1)
        assert again.status == "already_registered"
        assert registry.register_pending("run-3") == []
        assert [e["status"] for e in registry.ledger()] == ["registered"]

    def test_records_land_on_their_own_day_and_a_late_file_reaches_an_old_partition(self, registry, store, tmp_path):
        mapping = load_preset("product_reviews")
        daily = write(tmp_path / "reviews_2026-10-02.csv", reviews_csv(
            review("R1", "2026-10-02T10:00:00Z"), review("R2", "2026-10-01T23:30:00-05:00")))
        late = write(tmp_path / "reviews_2026-10-20.csv", reviews_csv(review("R3", "2026-09-15T08:00:00Z")))
        assert registry.register(registry.stage(daily, mapping), mapping, "r", now=NOW).days == [date(2026, 10, 2)]
        assert registry.register(registry.stage(late, mapping), mapping, "r", now=NOW).days == [date(2026, 9, 15)]
        landed = store.read_parts(tables.LANDED_FEEDBACK["product_reviews"], [date(2026, 9, 15)])
        assert landed.column("source_id").to_pylist() == ["R3"]
        assert store.read_parts(tables.LANDED_FEEDBACK["product_reviews"], [date(2026, 10, 2)]).num_rows == 2

    def test_records_without_a_usable_timestamp_land_on_the_file_day(self, registry, store, tmp_path):
        mapping = load_preset("product_reviews")
        source = write(tmp_path / "reviews_2026-10-03.csv", reviews_csv(review("R1", "yesterday-ish")))
        result = registry.register(registry.stage(source, mapping), mapping, "r", now=NOW)
        row = store.read_parts(tables.LANDED_FEEDBACK["product_reviews"], [date(2026, 10, 3)]).to_pylist()[0]
        assert result.rows_with_errors == 1
        assert row["event_at"] is None and row["date_origin"] == "file_date"
        assert row["timestamp_error"] == "cannot read 'yesterday-ish' as iso8601"

    def test_old_exports_are_refused_with_a_way_forward_and_can_be_replayed(self, registry, tmp_path):
        mapping = load_preset("product_reviews")
        source = registry.stage(write(tmp_path / "old.csv", reviews_csv(
            review("R1", "2016-03-01T10:00:00Z"), review("R2", "2016-03-05T10:00:00Z"))), mapping)
        refused = registry.register(source, mapping, "r", now=NOW)
        assert refused.status == "rejected" and "--shift-to-end" in refused.error
        replayed = registry.register(source, mapping, "r", DateOptions(shift_to_end=date(2026, 11, 1)), now=NOW)
        assert replayed.days == [date(2026, 10, 28), date(2026, 11, 1)]

    def test_future_dates_are_refused(self, registry, tmp_path):
        mapping = load_preset("product_reviews")
        source = registry.stage(write(tmp_path / "f.csv", reviews_csv(review("R1", "2027-06-01T10:00:00Z"))), mapping)
        assert "lie in the future" in registry.register(source, mapping, "r", now=NOW).error

    def test_undated_exports_are_spread_deterministically_back_from_the_anchor(self, registry, tmp_path):
        mapping = load_preset("womens_clothing_reviews")
        rows = "\n".join(f'{i},100{i},30,Title,Text {i},5,1,0,General,Tops,Knits' for i in range(5))
        source = registry.stage(write(tmp_path / "w.csv", ",Clothing ID,Age,Title,Review Text,Rating,Recommended IND,"
                                      "Positive Feedback Count,Division Name,Department Name,Class Name\n" + rows + "\n"), mapping)
        result = registry.register(source, mapping, "r", DateOptions(anchor=date(2026, 10, 10)), now=NOW)
        assert result.days == [date(2026, 10, d) for d in range(6, 11)]

    def test_ledger_records_rejected_files_with_their_error(self, registry, tmp_path):
        mapping = load_preset("product_reviews")
        source = registry.stage(write(tmp_path / "bad.csv", "review_id\nR1\n"), mapping)
        result = registry.register(source, mapping, "r", now=NOW)
        entry = registry.ledger()[0]
        assert result.status == entry["status"] == "rejected"
        assert "missing required column" in entry["error"] and json.loads(entry["days"]) == []
