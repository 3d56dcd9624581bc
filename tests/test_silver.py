"""bronze → silver on local Spark: every bad input reaches a defined outcome, duplicates go, PII never stays."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

import pytest
from pyspark.sql import functions as F

from feedback_assets import tables
from feedback_assets.landing.mapping import FEEDBACK_CHANNELS, load_preset
from feedback_assets.steps import run_bronze, run_silver_feedback
from feedback_assets.window import DayWindow
from feedback_assets.transforms.silver import hmac_sha256_hex
from tests.test_landing import NOW, REVIEWS_HEADER, write

DAY = date(2026, 10, 1)
WINDOW = DayWindow(DAY, DAY)
KEY = "test-key"


def csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def review_row(review_id: str, body: str, when: str = "2026-10-01T10:00:00Z", customer: str = "C-1", headline: str = "") -> str:
    return f"{review_id},{when},JKT-1042,M,2,{csv_field(headline)},{csv_field(body)},x@example.com,{customer},ORD-1,us_west"


def land_and_build(spark, registry, store, tmp_path, files: dict[str, bytes], window: DayWindow = WINDOW, lookback: int = 7):
    for mapping_name, content in files.items():
        mapping = load_preset(mapping_name)
        suffix = "csv" if mapping.format == "csv" else "jsonl"
        registry.register(registry.stage(write(tmp_path / f"{mapping_name}_{window.end}.{suffix}", content), mapping),
                          mapping, "test-run", now=NOW)
    for channel in FEEDBACK_CHANNELS:
        run_bronze(spark, store, registry, channel, DayWindow(window.start.replace(day=1) if lookback else window.start, window.end), "run")
    report = run_silver_feedback(spark, store, window, KEY, max_text_chars=10_000, lookback_days=lookback)
    silver = {r["source_id"]: r.asDict() for r in store.read(spark, tables.SILVER_FEEDBACK).collect()}
    rejects = {r["source_id"] or f"line{r['source_line']}": r.asDict()
               for r in store.read(spark, tables.SILVER_REJECTS).collect()}
    return report, silver, rejects


@pytest.fixture
def corpus_outcome(spark, registry, store, tmp_path):
    reviews = "\n".join([
        REVIEWS_HEADER,
        review_row("ok", "Zipper broke after a week. Call me at (415) 555-0132 or jane@example.com"),
        review_row("empty", ""),
        review_row("blank", "   \t  "),
        review_row("huge", "x" * 1_000_000),
        review_row("html", "<p>Seam <b>ripped</b></p><script>alert('pwned')</script>"),
        review_row("markup_only", "<div><br/></div>"),
        review_row("emoji_rtl", "لم يصل الطلب 😡 still waiting"),
        review_row("csv_injection", "=cmd|' /C calc'!A0"),
        review_row("bad_time", "Arrived late", when="31.02.2026 25:61"),
        review_row("", "who am I"),
        review_row("dup", "First delivery of this review"),
        review_row("dup", "First delivery of this review"),
        review_row("resubmitted_1", "Please refund my order", customer="C-9"),
        review_row("resubmitted_2", "please refund   my order ", customer="c-9 "),
        review_row("same_text_other_customer", "Please refund my order", customer="C-10"),
        "short,row",
    ]).encode() + b"\n" + review_row("latin1", "caf\xe9 au lait").encode("latin-1") + b"\n"
    tickets = b'{"ticket_id": "T1", "created_at": 1790000000, "subject": "late", "transcript": []\n'
    return land_and_build(spark, registry, store, tmp_path, {"product_reviews": reviews, "support_tickets": tickets})


EXPECTED_REJECTS = {
    "empty": "empty_text",
    "blank": "empty_text",
    "huge": "oversize_text",
    "markup_only": "empty_text",
    "bad_time": "bad_timestamp",
    "line11": "missing_required_field",
    "dup": "duplicate_source_id",
    "resubmitted_2": "duplicate_resubmission",
    "latin1": "invalid_encoding",
}


def test_every_bad_input_reaches_its_defined_outcome(corpus_outcome):
    report, silver, rejects = corpus_outcome
    reasons = {key: row["reason"] for key, row in rejects.items()}
    for key, reason in EXPECTED_REJECTS.items():
        assert reasons.get(key) == reason, key
    malformed = [row for row in rejects.values() if row["reason"] == "malformed_record"]
    assert sorted(row["channel"] or "" for row in malformed) == ["product_reviews", "support_tickets"]
    assert set(silver) == {"ok", "html", "emoji_rtl", "csv_injection", "dup", "resubmitted_1", "same_text_other_customer"}
    assert report.unreconciled_days == []
    assert report.silver_rows + report.reject_rows == 18


def test_kept_text_is_clean_scrubbed_and_inert(corpus_outcome):
    _, silver, _ = corpus_outcome
    assert silver["ok"]["text_clean"] == "Zipper broke after a week. Call me at [PHONE] or [EMAIL]"
    assert silver["ok"]["pii_redactions"] == {"email": 1, "phone": 1, "card": 0, "address": 0}
    assert silver["html"]["text_clean"] == "Seam ripped"
    assert silver["emoji_rtl"]["text_clean"] == "لم يصل الطلب 😡 still waiting"
    assert silver["csv_injection"]["text_clean"] == "=cmd|' /C calc'!A0"


def test_duplicates_point_at_what_they_duplicate(corpus_outcome):
    _, silver, rejects = corpus_outcome
    assert rejects["dup"]["duplicate_of"] == silver["dup"]["feedback_id"]
    assert rejects["resubmitted_2"]["duplicate_of"] == silver["resubmitted_1"]["feedback_id"]


def test_silver_rows_carry_the_contract(corpus_outcome):
    report, silver, _ = corpus_outcome
    row = silver["ok"]
    assert row["channel"] == "product_reviews" and row["received_at"].isoformat().startswith("2026-10-01T10:00")
    assert row["rating"] == 2.0 and row["language"] == "en" and row["sku"] == "JKT-1042"
    assert row["content_hash"] == hashlib.sha256(row["text_clean"].encode()).hexdigest()
    assert row["feedback_id"] == hashlib.sha256(b"product_reviews:ok").hexdigest()[:32]
    assert row["customer_key"] == hmac.new(KEY.encode(), b"c-1", hashlib.sha256).hexdigest()[:32]
    assert report.key_column_nulls == dict.fromkeys(report.key_column_nulls, 0)
    assert report.pii_residue == {"email": 0, "phone": 0, "card": 0}


def test_resubmissions_on_a_later_day_are_recognised_within_the_lookback(spark, registry, store, tmp_path):
    first = "\n".join([REVIEWS_HEADER, review_row("a", "Still no refund", when="2026-10-01T09:00:00Z", customer="C-5")])
    again = "\n".join([REVIEWS_HEADER, review_row("b", "Still no refund", when="2026-10-03T09:00:00Z", customer="C-5")])
    land_and_build(spark, registry, store, tmp_path / "1", {"product_reviews": first.encode()}, DayWindow(date(2026, 10, 1), date(2026, 10, 1)))
    _, silver, rejects = land_and_build(spark, registry, store, tmp_path / "2", {"product_reviews": again.encode()},
                                        DayWindow(date(2026, 10, 3), date(2026, 10, 3)))
    assert "b" not in silver and rejects["b"]["reason"] == "duplicate_resubmission"


def test_ratings_from_any_scale_map_onto_one_to_five(spark, registry, store, tmp_path):
    surveys = "\n".join([
        "response_id;completed_local;tz;order_number;nps_score;comment;customer_ref;region",
        "S1;01.10.2026 10:00;Europe/Berlin;ORD-1;10;Great;C-1;eu",
        "S2;01.10.2026 10:00;Europe/Berlin;ORD-2;0;Awful;C-2;eu",
        "S3;01.10.2026 10:00;Europe/Berlin;ORD-3;eleven;Meh;C-3;eu",
    ])
    _, silver, _ = land_and_build(spark, registry, store, tmp_path, {"surveys": surveys.encode()}, lookback=0)
    assert {k: v["rating"] for k, v in silver.items()} == {"S1": 5.0, "S2": 1.0, "S3": None}


def test_spark_hmac_matches_the_standard_library(spark):
    for key in ["k", "x" * 100]:
        row = spark.range(1).select(hmac_sha256_hex(key, F.lit("customer-42")).alias("h")).first()
        assert row["h"] == hmac.new(key.encode(), b"customer-42", hashlib.sha256).hexdigest()
