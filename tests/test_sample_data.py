"""The synthetic sample: deterministic, in each source's native shape, varied, with planted incidents."""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, timedelta
from pathlib import Path

import pytest

from feedback_assets.landing.mapping import FEEDBACK_CHANNELS, load_preset
from feedback_assets.landing.parse import SourceRecord, field_value, parse_timestamp, read_records
from feedback_assets.sample_data import SampleSummary, generate_sample
from feedback_assets.sample_data.generator import (
    CATALOG,
    MALFORMED_KINDS,
    SIZES,
    Context,
    TextComposer,
    malform,
    write_feedback_file,
)
from feedback_assets.sample_data.phrases import AGENT_LINES
from feedback_assets.transforms.language import detect_language
from feedback_assets.transforms.pii import scrub_pii

END = date(2026, 10, 31)
TAXONOMY = (
    "defect_or_damage", "poor_materials_or_durability", "missing_parts", "size_runs_small", "size_runs_large",
    "fit_cut_issue", "color_or_appearance_mismatch", "not_as_described", "feature_confusion", "delivery_delay",
    "damaged_in_transit", "wrong_or_missing_item", "tracking_communication", "checkout_payment_issue",
    "app_or_site_bug", "search_navigation_ux", "account_login_issue", "support_unhelpful",
    "refund_or_return_problem", "price_value_concern", "trust_concern", "feature_request", "praise_no_issue",
    "other_unclear",
)
COMMERCE = ("orders", "returns")
_FILE_DATE = re.compile(r"_(\d{4}-\d{2}-\d{2})\.")


def _generate(root: Path, **kwargs) -> SampleSummary:
    return generate_sample(root / "landing", root / "manifest.json", end_date=END, **kwargs)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, SampleSummary]:
    root = tmp_path_factory.mktemp("sample")
    return root, _generate(root, days=10, items_per_day=150)


def _records(landing: Path, name: str) -> Iterator[tuple[date, SourceRecord]]:
    mapping = load_preset(name)
    for path in sorted((landing / name).iterdir()):
        day = date.fromisoformat(_FILE_DATE.search(path.name)[1])
        for record in read_records(path, mapping):
            yield day, record


def _texts(landing: Path, name: str) -> Iterator[tuple[date, dict[str, object], str]]:
    paths = load_preset(name).source_paths("text")
    for day, record in _records(landing, name):
        if record.fields is not None and (text := field_value(record.fields, paths)):
            yield day, record.fields, text


def _all_texts(landing: Path) -> list[str]:
    return [text for channel in FEEDBACK_CHANNELS for _, _, text in _texts(landing, channel)]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_arguments_give_identical_bytes(tmp_path):
    first = _generate(tmp_path / "a", days=3, items_per_day=60)
    _generate(tmp_path / "b", days=3, items_per_day=60)
    _generate(tmp_path / "c", days=3, items_per_day=60, seed=8)

    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a") != _files(tmp_path / "c")
    assert first.orders > 0 and first.feedback_items > 0


def test_writes_a_file_per_mapping_and_day_and_one_catalog(sample):
    root, summary = sample
    landing = root / "landing"
    expected = {landing / "sku_catalog" / f"sku_catalog_{END.isoformat()}.csv"}
    for offset in range(10):
        day = (END - timedelta(days=offset)).isoformat()
        for name in (*FEEDBACK_CHANNELS, *COMMERCE):
            extension = load_preset(name).format
            expected.add(landing / name / f"{name}_{day}.{extension}")

    assert set(summary.files) == expected
    assert len(summary.files) == len(expected)
    assert {p for p in landing.rglob("*") if p.is_file()} == expected
    assert summary.manifest_path == root / "manifest.json"
    assert summary.orders == sum(1 for _, r in _records(landing, "orders") if r.fields)
    written = sum(1 for channel in FEEDBACK_CHANNELS for _ in _records(landing, channel))
    assert summary.feedback_items == written
    assert 0.8 * 1500 < written < 1.6 * 1500


def test_manifest_records_the_four_incidents_and_nothing_per_item(sample):
    root, _ = sample
    text = (root / "manifest.json").read_text()
    manifest = json.loads(text)

    assert text == json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    assert manifest["seed"] == 7 and manifest["days"] == 10 and manifest["items_per_day"] == 150
    assert manifest["start_date"] == "2026-10-22" and manifest["end_date"] == END.isoformat()
    incidents = {incident["id"]: incident for incident in manifest["incidents"]}
    assert set(incidents) == {"jacket_runs_small", "carrier_delay", "checkout_bug_android", "earbuds_defect"}
    assert incidents["jacket_runs_small"]["keys"] == {"sku": "JKT-1042", "region": "us_west"}
    assert incidents["carrier_delay"]["keys"] == {"carrier": "FedEx", "region": "us_east"}
    assert incidents["checkout_bug_android"]["keys"] == {"platform": "android", "app_version": "5.3.0"}
    assert incidents["earbuds_defect"]["keys"] == {"sku": "ELC-2207"}
    for incident in incidents.values():
        assert {"id", "kind", "label", "keys", "onset", "end", "channels", "extra_per_day"} <= set(incident)
        assert incident["label"] in TAXONOMY
        assert set(incident["channels"]) <= set(FEEDBACK_CHANNELS)
        assert incident["extra_per_day"] >= 3
        onset = date.fromisoformat(incident["onset"])
        assert date(2026, 10, 22) <= onset <= END
        assert incident["end"] is None or onset <= date.fromisoformat(incident["end"]) <= END


def test_no_label_is_written_into_the_files(sample):
    root, _ = sample
    for channel in FEEDBACK_CHANNELS:
        for path in (root / "landing" / channel).iterdir():
            content = path.read_text(encoding="utf-8")
            assert not any(label in content for label in TAXONOMY), path.name


def test_every_file_lands_with_the_project_mappings(sample):
    root, _ = sample
    landing = root / "landing"
    problems: Counter[str] = Counter()
    for channel in FEEDBACK_CHANNELS:
        spec = load_preset(channel).timestamp
        days: Counter[int] = Counter()
        records = 0
        for day, record in _records(landing, channel):
            records += 1
            if record.fields is None:
                problems[f"{load_preset(channel).format}:unparseable"] += 1
                continue
            moment, error = parse_timestamp(record.fields, spec)
            if error:
                problems["bad_timestamp"] += 1
                continue
            assert moment.tzinfo is not None
            days[(day - moment.astimezone(UTC).date()).days] += 1
        parsed = sum(days.values())
        assert parsed >= 0.95 * records, channel
        # A duplicate re-exported in the next day's file keeps its own (previous-day) timestamp.
        assert set(days) <= {0, 1}, channel
        assert days[0] >= 0.97 * parsed, channel
    assert problems["csv:unparseable"] + problems["jsonl:unparseable"] > 0
    assert problems["bad_timestamp"] > 0
    for name in COMMERCE:
        spec = load_preset(name).timestamp
        for day, record in _records(landing, name):
            moment, error = parse_timestamp(record.fields, spec)
            assert error is None and moment.date() == day


@pytest.mark.parametrize("channel", FEEDBACK_CHANNELS)
def test_malformed_records_break_in_every_planted_way(sample, tmp_path, channel):
    mapping = load_preset(channel)
    good = next(record.fields for _, record in _records(sample[0] / "landing", channel) if record.fields)
    rng = random.Random(5)
    path = tmp_path / f"{channel}.{mapping.format}"
    write_feedback_file(path, channel, [malform(rng, channel, dict(good), MALFORMED_KINDS[n % len(MALFORMED_KINDS)]) for n in range(60)])

    outcomes: Counter[str] = Counter()
    for record in read_records(path, mapping):
        if record.fields is None:
            outcomes["unparseable"] += 1
        elif parse_timestamp(record.fields, mapping.timestamp)[1]:
            outcomes["bad_timestamp"] += 1
        elif not (field_value(record.fields, mapping.source_paths("text")) or "").strip():
            outcomes["empty_text"] += 1
        elif not (field_value(record.fields, mapping.source_paths("source_id")) or "").strip():
            outcomes["missing_id"] += 1
    assert set(outcomes) == {"unparseable", "bad_timestamp", "empty_text", "missing_id"}
    assert sum(outcomes.values()) == 60


def test_some_records_lack_text_or_an_id(sample):
    landing = sample[0] / "landing"
    missing: Counter[str] = Counter()
    for channel in FEEDBACK_CHANNELS:
        mapping = load_preset(channel)
        for _, record in _records(landing, channel):
            if record.fields is None:
                continue
            if not (field_value(record.fields, mapping.source_paths("source_id")) or "").strip():
                missing["id"] += 1
            if not (field_value(record.fields, mapping.source_paths("text")) or "").strip():
                missing["text"] += 1
    assert missing["id"] > 0 and missing["text"] > 0


def test_duplicates_and_resubmissions_are_planted(sample):
    landing = sample[0] / "landing"
    by_id: Counter[tuple[str, str]] = Counter()
    ids_by_text: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for channel in FEEDBACK_CHANNELS:
        mapping = load_preset(channel)
        for _, fields, text in _texts(landing, channel):
            source_id = field_value(fields, mapping.source_paths("source_id"))
            customer = field_value(fields, mapping.source_paths("customer_ref"))
            if source_id:
                by_id[channel, source_id] += 1
                ids_by_text[channel, customer or "", text].add(source_id)
    assert sum(1 for count in by_id.values() if count > 1) >= 3
    assert sum(1 for ids in ids_by_text.values() if len(ids) > 1) >= 3


def test_feedback_refers_to_generated_orders(sample):
    landing = sample[0] / "landing"
    orders: dict[str, tuple[str, set[str], str]] = {}
    for _, record in _records(landing, "orders"):
        fields = record.fields
        customer, skus, region = orders.get(fields["order_id"], (fields["customer_id"], set(), fields["region"]))
        orders[fields["order_id"]] = (customer, skus | {fields["sku"]}, region)
    assert all(re.fullmatch(r"ORD-[A-Z][0-9A-Z]{5}", order_id) for order_id in orders)

    checked = 0
    for channel in ("product_reviews", "support_tickets", "surveys", "return_reasons", "marketplace_messages"):
        mapping = load_preset(channel)
        for _, fields, _ in _texts(landing, channel):
            order_id = field_value(fields, mapping.source_paths("order_id"))
            if not order_id:
                continue
            customer, skus, region = orders[order_id]
            assert field_value(fields, mapping.source_paths("customer_ref")) == customer
            assert field_value(fields, mapping.source_paths("region")) == region
            if sku := field_value(fields, mapping.source_paths("sku")):
                assert sku in skus
            checked += 1
    assert checked > 500

    returns = [record.fields for _, record in _records(landing, "returns")]
    assert all(row["order_id"] in orders and row["sku"] in orders[row["order_id"]][1] for row in returns)


def test_support_text_keeps_only_the_customer_turns(sample):
    texts = [text for _, _, text in _texts(sample[0] / "landing", "support_tickets")]
    assert texts
    assert not any(line in text for text in texts for line in AGENT_LINES)


def test_texts_are_varied_multilingual_and_carry_pii_and_markup(sample):
    texts = _all_texts(sample[0] / "landing")
    sample_texts = random.Random(1).sample(texts, 1000)
    assert len(set(sample_texts)) > 700

    languages = Counter(detect_language(text)[0] for text in sample_texts)
    assert sum(languages[code] for code in ("es", "pt", "de")) >= 20

    with_pii = sum(1 for text in sample_texts if any(scrub_pii(text).redactions.values()))
    assert 10 <= with_pii <= 100
    assert any("<p>" in text for text in texts) and any("&amp;" in text for text in texts)
    assert any(re.search("[\U0001f300-\U0001faff]", text) for text in texts)
    assert any(re.search(r"\b[A-Z]{3}-\d{4}\b", text) for text in texts)


def test_composed_text_without_planted_pii_survives_scrubbing_untouched():
    rng = random.Random(3)
    composer = TextComposer(rng, pii_rate=0.0)
    for n in range(3000):
        sku = CATALOG[n % len(CATALOG)]
        sizes = SIZES.get(sku.subcategory)
        ctx = Context(
            sku=sku, size=rng.randint(1, len(sizes) - 2) if sizes else None,
            color=sku.colors[0] if sku.colors else None, carrier=rng.choice(("UPS", "FedEx", "DHL")),
            region=rng.choice(("us_west", "eu", "uk")), day=END, order_id="ORD-4829K3",
            order_day=END - timedelta(days=5), platform=rng.choice(("ios", "android")), version="5.3.0",
            language=rng.choice(("en", "en", "es", "de", "pt")),
        )
        channel = FEEDBACK_CHANNELS[n % len(FEEDBACK_CHANNELS)]
        draft = composer.draft(channel, (TAXONOMY[n % len(TAXONOMY)],), ctx)
        text = " ".join([draft.title, *draft.sentences])
        scrubbed = scrub_pii(text)
        assert not any(scrubbed.redactions.values()), text
        assert scrubbed.text == text


def test_jacket_incident_stands_out_after_onset(tmp_path):
    summary = _generate(tmp_path, days=20, items_per_day=100)
    manifest = json.loads(summary.manifest_path.read_text())
    onset = date.fromisoformat(next(i for i in manifest["incidents"] if i["id"] == "jacket_runs_small")["onset"])
    start = date.fromisoformat(manifest["start_date"])
    landing = tmp_path / "landing"

    mentions: Counter[bool] = Counter()
    for channel in ("product_reviews", "return_reasons", "support_tickets"):
        mapping = load_preset(channel)
        for day, fields, _ in _texts(landing, channel):
            if (field_value(fields, mapping.source_paths("sku")) == "JKT-1042"
                    and field_value(fields, mapping.source_paths("region")) == "us_west"):
                mentions[day >= onset] += 1
    too_small: Counter[bool] = Counter()
    for day, record in _records(landing, "returns"):
        if record.fields["sku"] == "JKT-1042" and record.fields["reason_code"] == "too_small":
            too_small[day >= onset] += 1

    days_before, days_after = (onset - start).days, (END - onset).days + 1
    assert mentions[True] / days_after > 3 * mentions[False] / days_before
    assert too_small[True] / days_after > 2 * too_small[False] / days_before


def test_tiny_and_single_day_windows_work(tmp_path):
    summary = _generate(tmp_path, days=1, items_per_day=5)
    manifest = json.loads(summary.manifest_path.read_text())
    assert all(incident["onset"] == END.isoformat() for incident in manifest["incidents"])
    assert len(summary.files) == 1 + len(FEEDBACK_CHANNELS) + len(COMMERCE)
