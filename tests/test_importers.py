"""The real-export presets over the datasets in ../shared/data (skipped where the data is absent)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from feedback_assets import tables
from feedback_assets.landing.mapping import load_preset
from feedback_assets.landing.registry import DateOptions
from tests.conftest import SHARED_DATA

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not present"),
]
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_womens_clothing_reviews_land_spread_over_sixty_days(registry, store):
    mapping = load_preset("womens_clothing_reviews")
    staged = registry.stage(SHARED_DATA / "womens_clothing_ecommerce_reviews.csv", mapping)
    result = registry.register(staged, mapping, "test", DateOptions(anchor=date(2026, 11, 27)), now=NOW)
    assert (result.status, result.rows, result.rows_with_errors) == ("registered", 23_486, 0)
    assert result.days[0] == date(2026, 9, 29) and result.days[-1] == date(2026, 11, 27) and len(result.days) == 60
    assert "Age" in result.unknown_columns and "Division Name" in result.unknown_columns
    first = store.read_parts(tables.LANDED_FEEDBACK["product_reviews"], [date(2026, 11, 27)]).to_pylist()[0]
    assert (first["source_id"], first["sku"], first["rating"], first["date_origin"]) == ("0", "767", "4", "assigned")
    assert first["text"].startswith("Absolutely wonderful")


def test_datafiniti_reviews_need_a_replay_and_keep_their_spacing(registry):
    mapping = load_preset("datafiniti_amazon_reviews")
    staged = registry.stage(SHARED_DATA / "amazon_datafiniti_device_reviews_5k.csv", mapping)
    refused = registry.register(staged, mapping, "test", now=NOW)
    assert refused.status == "rejected" and "fall before the first partition" in refused.error
    registry.partitions_start = date(2020, 1, 1)
    replayed = registry.register(staged, mapping, "test", DateOptions(shift_to_end=date(2026, 11, 27)), now=NOW)
    assert (replayed.status, replayed.rows) == ("registered", 5_000)
    assert replayed.days[-1] == date(2026, 11, 27)
    # 2014-10-24 .. 2018-09-15 in the export: the same 1,422-day span after the replay
    assert (replayed.days[-1] - replayed.days[0]).days == (date(2018, 9, 15) - date(2014, 10, 24)).days


def test_real_reviews_are_not_mistaken_for_pii():
    """Body measurements (34-26-36), sizes, model numbers and trip lengths are not phones or addresses."""
    import csv

    from feedback_assets.transforms.pii import scrub_pii

    redactions = 0
    for name, column in [("womens_clothing_ecommerce_reviews.csv", "Review Text"),
                         ("amazon_datafiniti_device_reviews_5k.csv", "reviews.text")]:
        with (SHARED_DATA / name).open(encoding="utf-8-sig", newline="") as handle:
            redactions += sum(sum(scrub_pii(row[column]).redactions.values()) for row in csv.DictReader(handle))
    assert redactions <= 3  # of 28,486 reviews; 81 before the measurement and verb-suffix fixes
