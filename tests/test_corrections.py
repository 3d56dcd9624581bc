"""Triage corrections: the analysts' export, its validated import, applying corrections, and learning from them."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from feedback_assets.enrichment.corrections import (
    ANALYST,
    CORRECTION_COLUMNS,
    EXPORT_COLUMNS,
    LEDGER_SCHEMA,
    MAX_EXAMPLE_CHARS,
    MAX_FILE_BYTES,
    MAX_NOTE_CHARS,
    MAX_ROWS,
    MAX_TEXT_CHARS,
    MODEL,
    Correction,
    CorrectionExamples,
    CorrectionFileError,
    KnownItem,
    LabelCountChange,
    apply_correction,
    apply_corrections,
    export_csv,
    export_rows,
    known_items_from,
    label_counts_delta,
    latest_corrections,
    model_row_as_label_row,
    neutralize_formula,
    parse_corrections,
    pool_version,
    prototypes_from,
)
from feedback_assets.enrichment.taxonomy import load_taxonomy

TAXONOMY = load_taxonomy()
LABELS = TAXONOMY.label_ids
NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
DAY = date(2026, 11, 20)


def assignment(label: str, severity: float, evidence: str, origin: str = "quote") -> dict:
    return {"label": label, "domain": TAXONOMY.domain_of(label), "severity": severity, "evidence": evidence,
            "evidence_origin": origin}


def triage_row(feedback_id: str, text: str, primary: str = "delivery_delay", *, day: date = DAY,
               labels: list[dict] | None = None, **extra) -> dict:
    """A classification row as the triage queue holds it, plus the item's text."""
    return {
        "feedback_id": feedback_id, "content_hash": f"h-{feedback_id}", "channel": "review", "text": text,
        "labels": labels if labels is not None else [assignment(primary, 0.6, text[:40])],
        "primary_label": primary, "domain": TAXONOMY.domain_of(primary), "sentiment": -0.4,
        "suggested_owner": TAXONOMY.labels[primary].owner.team, "confidence": 0.31, "needs_review": True,
        "review_reason": "low_confidence", "feedback_date": day, **extra,
    }


def correction(feedback_id: str = "fb-1", label: str = "size_runs_small", **overrides) -> Correction:
    fields = {"feedback_id": feedback_id, "feedback_date": DAY, "label": label, "previous_label": "delivery_delay",
              "text": f"text of {feedback_id}", "note": None, "analyst": "ana", "corrected_at": NOW,
              "source": "triage-2026-11-27.csv", "source_sha256": "0" * 64, "line": 2}
    return Correction(**{**fields, **overrides})


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


def parse(raw: bytes, known: dict[str, KnownItem], **overrides):
    arguments = {"known_items": known, "label_ids": LABELS, "analyst": "ana", "source": "triage.csv",
                 "corrected_at": NOW, **overrides}
    return parse_corrections(raw, **arguments)


KNOWN = {f"fb-{n}": KnownItem(DAY + timedelta(days=n), "delivery_delay", f"text of fb-{n}") for n in range(1, 8)}


class TestExport:
    @pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
    def test_a_cell_a_spreadsheet_would_read_as_a_formula_is_prefixed_with_an_apostrophe(self, start):
        assert neutralize_formula(f"{start}HYPERLINK(\"http://x\")") == f"'{start}HYPERLINK(\"http://x\")"

    def test_ordinary_cells_are_left_as_they_are(self):
        assert neutralize_formula("Arrived 3 days late = bad") == "Arrived 3 days late = bad"

    def test_customer_text_is_defused_bounded_and_stripped_of_control_characters(self):
        hostile = triage_row("fb-1", "=cmd|' /C calc'!A0\x07\r\nsecond line\x1b[31m")
        long = triage_row("fb-2", "x" * (MAX_TEXT_CHARS + 500))
        exported = {row["feedback_id"]: row for row in export_rows([hostile, long])}
        assert exported["fb-1"]["text"] == "'=cmd|' /C calc'!A0\nsecond line[31m"
        assert len(exported["fb-2"]["text"]) == MAX_TEXT_CHARS and exported["fb-2"]["text"].endswith("…")

    def test_every_cell_is_defused_not_only_the_text(self):
        [row] = export_rows([triage_row("-1+1", "fine", channel="@mention")])
        assert (row["feedback_id"], row["channel"]) == ("'-1+1", "'@mention")

    def test_rows_are_ordered_by_day_then_id_and_leave_the_correction_columns_for_the_analyst(self):
        rows = [triage_row("fb-b", "b", day=date(2026, 11, 2)), triage_row("fb-c", "c", day=date(2026, 11, 1)),
                triage_row("fb-a", "a", day=date(2026, 11, 2))]
        exported = export_rows(rows)
        assert [r["feedback_id"] for r in exported] == ["fb-c", "fb-a", "fb-b"]
        assert all(tuple(r) == EXPORT_COLUMNS and r["corrected_label"] == "" and r["note"] == "" for r in exported)

    def test_the_model_labels_and_confidence_are_shown(self):
        [row] = export_rows([triage_row("fb-1", "late and no tracking", labels=[
            assignment("delivery_delay", 0.6, "late"), assignment("tracking_communication", 0.4, "no tracking")])])
        assert (row["model_label"], row["model_labels"], row["confidence"], row["feedback_date"]) == \
            ("delivery_delay", "delivery_delay;tracking_communication", "0.310", "2026-11-20")

    def test_the_file_is_utf8_csv_with_a_header(self):
        raw = export_csv(export_rows([triage_row("fb-1", 'Größe "M", zu klein,\nleider')]))
        assert raw.startswith(b"\xef\xbb\xbf")
        [header, row] = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        assert tuple(header) == EXPORT_COLUMNS and row[3] == 'Größe "M", zu klein,\nleider'

    def test_an_exported_file_filled_in_by_an_analyst_imports_back(self):
        items = [triage_row("fb-1", "Came a week late"), triage_row("=fb-2", "-- runs small, \"size up\"\nreally"),
                 triage_row("fb-3", "Love it")]
        exported = export_csv(export_rows(items))
        table = list(csv.DictReader(io.StringIO(exported.decode("utf-8-sig"), newline="")))
        by_id = {row["feedback_id"]: row for row in table}
        by_id["'=fb-2"]["corrected_label"], by_id["'=fb-2"]["note"] = "size_runs_small", "sizing, not shipping"
        by_id["fb-3"]["corrected_label"] = "praise_no_issue"
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(table)

        result = parse(buffer.getvalue().encode("utf-8"), known_items_from(items))

        assert [(c.feedback_id, c.label, c.note, c.text) for c in result.accepted] == [
            ("=fb-2", "size_runs_small", "sizing, not shipping", "-- runs small, \"size up\"\nreally"),
            ("fb-3", "praise_no_issue", None, "Love it"),
        ]
        assert (result.skipped, result.rejected) == (1, ())


class TestImport:
    def test_exactly_the_good_rows_are_accepted_and_each_bad_row_is_reported_with_its_line_and_reason(self):
        raw = csv_bytes(
            "feedback_id,corrected_label,note",
            "fb-1,size_runs_small,runs small",                    # 2 accepted
            "fb-2,,",                                             # 3 skipped: no correction
            "fb-3,sizing,",                                       # 4 unknown label, with a suggestion
            "fb-999,delivery_delay,",                             # 5 unknown item
            "fb-1,delivery_delay,",                               # 6 duplicate of line 2
            "fb-4,delivery_delay",                                # 7 a field short
            "fb-\x1b5,delivery_delay,",                           # 8 control character in the id
            f"fb-6,delivery_delay,{'n' * (MAX_NOTE_CHARS + 1)}",  # 9 note too long
            "  fb-7 ,  Delivery_Delay  ,  late again  ",          # 10 accepted, normalized
        )
        result = parse(raw, KNOWN)

        assert [(c.feedback_id, c.label, c.note, c.line) for c in result.accepted] == [
            ("fb-1", "size_runs_small", "runs small", 2), ("fb-7", "delivery_delay", "late again", 10)]
        assert result.skipped == 1
        assert [(r.line, r.feedback_id, r.message) for r in result.rejected] == [
            (4, "fb-3", "line 4: unknown label 'sizing' (did you mean 'size_runs_small'?)"),
            (5, "fb-999", "line 5: unknown feedback_id 'fb-999'"),
            (6, "fb-1", "line 6: duplicate: feedback_id 'fb-1' is already corrected on line 2"),
            (7, None, "line 7: expected 3 fields, found 2"),
            (8, "fb- 5", "line 8: feedback_id 'fb- 5' contains control characters"),
            (9, "fb-6", f"line 9: note has {MAX_NOTE_CHARS + 1} characters; at most {MAX_NOTE_CHARS}"),
        ]

    def test_an_accepted_correction_records_who_when_where_and_what_it_replaces(self):
        raw = csv_bytes("feedback_id,corrected_label", "fb-3,size_runs_small")
        [accepted] = parse(raw, KNOWN, analyst="ana", source="triage-week-47.csv").accepted
        assert accepted == Correction(
            feedback_id="fb-3", feedback_date=DAY + timedelta(days=3), label="size_runs_small",
            previous_label="delivery_delay", text="text of fb-3", note=None, analyst="ana", corrected_at=NOW,
            source="triage-week-47.csv", source_sha256=hashlib.sha256(raw).hexdigest(), line=2)

    def test_a_label_nothing_like_the_taxonomy_is_rejected_without_a_suggestion(self):
        result = parse(csv_bytes("feedback_id,corrected_label", "fb-1,escalate_to_ceo_now"), KNOWN)
        assert [r.message for r in result.rejected] == ["line 2: unknown label 'escalate_to_ceo_now'"]

    def test_rejection_messages_bound_and_flatten_what_the_file_says(self):
        result = parse(csv_bytes("feedback_id,corrected_label", f"fb-1,\"{'x' * 5000}\nrm -rf\""), KNOWN)
        [rejection] = result.rejected
        assert len(rejection.message) < 120 and "\n" not in rejection.message

    def test_columns_are_found_by_name_and_unknown_columns_are_ignored(self):
        raw = csv_bytes("Corrected_Label ,whatever, FEEDBACK_ID", "tracking_communication,=1+1,fb-2")
        [accepted] = parse(raw, KNOWN).accepted
        assert (accepted.feedback_id, accepted.label, accepted.note) == ("fb-2", "tracking_communication", None)

    def test_a_utf8_byte_order_mark_is_accepted(self):
        raw = b"\xef\xbb\xbf" + csv_bytes("feedback_id,corrected_label", "fb-1,delivery_delay")
        assert [c.feedback_id for c in parse(raw, KNOWN).accepted] == ["fb-1"]

    def test_the_row_of_a_multi_line_field_is_named_by_the_line_it_starts_on(self):
        raw = csv_bytes("feedback_id,corrected_label,note", 'fb-1,delivery_delay,"two\nlines"', "fb-2,nope,")
        result = parse(raw, KNOWN)
        assert result.accepted[0].note == "two\nlines"
        assert [r.line for r in result.rejected] == [4]

    def test_the_report_summarizes_the_file_and_lists_every_rejection(self):
        raw = csv_bytes("feedback_id,corrected_label", "fb-1,delivery_delay", "fb-2,", "fb-999,delivery_delay")
        result = parse(raw, KNOWN, source="week-47.csv")
        assert result.report() == [
            f"week-47.csv (sha256 {hashlib.sha256(raw).hexdigest()[:12]}): 1 accepted, "
            "1 skipped (no corrected_label), 1 rejected",
            "line 4: unknown feedback_id 'fb-999'",
        ]

    @pytest.mark.parametrize("raw, message", [
        (csv_bytes("feedback_id,label", "fb-1,delivery_delay"), "no corrected_label column"),
        (csv_bytes("id,corrected_label", "fb-1,delivery_delay"), "no feedback_id column"),
        ("feedback_id,corrected_label,note\nfb-1,delivery_delay,trop tardé\n".encode("latin-1"), "not UTF-8"),
        (b"feedback_id,corrected_label\n" + b"x" * MAX_FILE_BYTES, "at most 5,000,000 are accepted"),
        (csv_bytes("feedback_id,corrected_label", *["fb-1,"] * (MAX_ROWS + 1)), "more than 20,000 rows"),
        (b"", "the file is empty"),
        (csv_bytes("feedback_id,corrected_label,corrected_label", "fb-1,a,b"), "corrected_label more than once"),
    ], ids=["no-label-column", "no-id-column", "not-utf8", "too-large", "too-many-rows", "empty", "doubled-column"])
    def test_a_file_that_will_not_do_is_rejected_as_a_whole_with_one_message(self, raw, message):
        with pytest.raises(CorrectionFileError, match=message):
            parse(raw, KNOWN)

    def test_a_file_with_exactly_the_row_limit_is_read(self):
        result = parse(csv_bytes("feedback_id,corrected_label", *["fb-1,"] * MAX_ROWS), KNOWN)
        assert result.skipped == MAX_ROWS

    def test_a_time_without_a_zone_is_refused(self):
        with pytest.raises(ValueError, match="time zone"):
            parse(csv_bytes("feedback_id,corrected_label"), KNOWN, corrected_at=datetime(2026, 11, 27))

    def test_a_correction_comes_back_from_its_ledger_row(self):
        original = correction(note="sizing, not shipping", previous_label=None)
        stored = pa.Table.from_pylist([json.loads(json.dumps(original.to_record()))], schema=LEDGER_SCHEMA)
        assert [Correction.from_record(record) for record in stored.to_pylist()] == [original]


class TestLatestCorrection:
    def test_the_latest_of_two_corrections_of_an_item_wins_whatever_their_order(self):
        earlier = correction(label="delivery_delay", corrected_at=NOW - timedelta(hours=1))
        later = correction(label="size_runs_small")
        other = correction("fb-2", label="praise_no_issue")
        for order in ([earlier, later, other], [other, later, earlier]):
            assert latest_corrections(order) == {"fb-1": later, "fb-2": other}

    def test_equal_times_are_decided_by_source_then_line(self):
        a_line_9 = correction(label="delivery_delay", source="a.csv", line=9)
        b_line_2 = correction(label="size_runs_small", source="b.csv", line=2)
        b_line_3 = correction(label="fit_cut_issue", source="b.csv", line=3)
        assert latest_corrections([b_line_3, a_line_9, b_line_2])["fb-1"] == b_line_3
        assert latest_corrections([a_line_9, b_line_2])["fb-1"] == b_line_2


class TestApplying:
    MODEL_ROW = triage_row("fb-1", "Came late, and it runs a full size small. No tracking either.", labels=[
        assignment("delivery_delay", 0.62, "Came late"),
        assignment("tracking_communication", 0.4, "No tracking either."),
    ])

    def test_the_corrected_label_takes_primary_label_domain_and_owner_from_the_taxonomy(self):
        corrected = apply_correction(self.MODEL_ROW, correction(note="fit, not shipping"), TAXONOMY)
        assert (corrected["primary_label"], corrected["domain"], corrected["suggested_owner"]) == \
            ("size_runs_small", "product_fit_expectations", "merchandising")
        assert (corrected["needs_review"], corrected["review_reason"]) == (False, None)
        assert {name: corrected[name] for name in CORRECTION_COLUMNS} == {
            "label_source": ANALYST, "corrected_by": "ana", "corrected_at": NOW.isoformat(),
            "correction_note": "fit, not shipping", "model_primary_label": "delivery_delay",
            "correction_ignored": None}

    def test_the_replaced_primary_gives_its_severity_and_evidence_to_the_corrected_label(self):
        corrected = apply_correction(self.MODEL_ROW, correction(), TAXONOMY)
        assert corrected["labels"] == [
            assignment("size_runs_small", 0.62, "Came late"),
            assignment("tracking_communication", 0.4, "No tracking either."),
        ]

    def test_a_label_the_model_also_gave_keeps_its_own_severity_and_evidence(self):
        corrected = apply_correction(self.MODEL_ROW, correction(label="tracking_communication"), TAXONOMY)
        assert corrected["labels"] == [assignment("tracking_communication", 0.4, "No tracking either.")]
        assert corrected["suggested_owner"] == "logistics"

    def test_confirming_the_model_keeps_its_labels_and_clears_the_review(self):
        corrected = apply_correction(self.MODEL_ROW, correction(label="delivery_delay"), TAXONOMY)
        assert corrected["labels"] == self.MODEL_ROW["labels"]
        assert (corrected["needs_review"], corrected["label_source"]) == (False, ANALYST)

    def test_the_model_row_is_left_unchanged(self):
        before = json.dumps(self.MODEL_ROW, default=str, sort_keys=True)
        apply_correction(self.MODEL_ROW, correction(), TAXONOMY)
        assert json.dumps(self.MODEL_ROW, default=str, sort_keys=True) == before

    def test_a_correction_to_a_label_no_longer_in_the_taxonomy_is_ignored_with_a_reason(self):
        kept = apply_correction(self.MODEL_ROW, correction(label="gift_wrapping_issue"), TAXONOMY)
        assert {name: kept[name] for name in ("labels", "primary_label", "domain", "suggested_owner", "needs_review")} \
            == {name: self.MODEL_ROW[name] for name in ("labels", "primary_label", "domain", "suggested_owner",
                                                        "needs_review")}
        assert kept["label_source"] == MODEL and kept["corrected_by"] is None
        assert "'gift_wrapping_issue'" in kept["correction_ignored"] and "no longer in the taxonomy" in \
            kept["correction_ignored"]

    def test_a_correction_of_another_item_is_refused(self):
        with pytest.raises(ValueError, match="cannot apply"):
            apply_correction(self.MODEL_ROW, correction("fb-2"), TAXONOMY)

    def test_model_rows_and_corrected_rows_have_one_shape(self):
        as_model = model_row_as_label_row(self.MODEL_ROW)
        assert set(as_model) == set(apply_correction(self.MODEL_ROW, correction(), TAXONOMY)) \
            == set(self.MODEL_ROW) | set(CORRECTION_COLUMNS)
        assert as_model["label_source"] == MODEL
        assert all(as_model[name] is None for name in CORRECTION_COLUMNS if name != "label_source")

    def test_only_items_with_a_correction_are_corrected(self):
        rows = [self.MODEL_ROW, triage_row("fb-2", "late")]
        applied = apply_corrections(rows, latest_corrections([correction()]), TAXONOMY)
        assert [(r["feedback_id"], r["primary_label"], r["label_source"]) for r in applied] == [
            ("fb-1", "size_runs_small", ANALYST), ("fb-2", "delivery_delay", MODEL)]

    def test_label_counts_are_given_before_and_after_corrections(self):
        model_rows = [self.MODEL_ROW, triage_row("fb-2", "late"), triage_row("fb-3", "fine", "praise_no_issue")]
        corrected = apply_corrections(model_rows, latest_corrections([correction()]), TAXONOMY)
        assert label_counts_delta(model_rows, corrected) == {
            "delivery_delay": LabelCountChange(2, 1), "praise_no_issue": LabelCountChange(1, 1),
            "size_runs_small": LabelCountChange(0, 1)}
        assert label_counts_delta(model_rows, corrected)["delivery_delay"].change == -1


class TestPrototypes:
    def test_a_text_gives_one_prototype_and_its_latest_correction_wins(self):
        older = correction("fb-1", "delivery_delay", text="Runs small", corrected_at=NOW - timedelta(days=1))
        newer = correction("fb-2", "size_runs_small", text="runs  SMALL")
        assert prototypes_from([newer, older]) == [("size_runs_small", "runs  SMALL")]

    def test_prototypes_are_bounded_per_label_and_most_recent_first(self):
        sizing = [correction(f"s{n}", "size_runs_small", text=f"small {n}", corrected_at=NOW + timedelta(minutes=n))
                  for n in range(5)]
        late = correction("d", "delivery_delay", text="late", corrected_at=NOW + timedelta(minutes=2, seconds=30))
        assert prototypes_from([*sizing, late], per_label=3) == [
            ("size_runs_small", "small 4"), ("size_runs_small", "small 3"), ("delivery_delay", "late"),
            ("size_runs_small", "small 2")]


POOL = [
    correction("p1", "size_runs_small", text="These jeans run really small, I had to size up twice."),
    correction("p2", "delivery_delay", text="The parcel arrived ten days after the promised delivery date."),
    correction("p3", "checkout_payment_issue", text="My card was charged twice at checkout."),
    correction("p4", "size_runs_small", text="Runs small, order one size up."),
    correction("p5", "delivery_delay", text="Delivery took two weeks longer than promised."),
]


class TestFewShotExamples:
    def test_the_nearest_examples_are_the_similar_texts_not_unrelated_ones(self):
        [for_sizing, for_delivery] = CorrectionExamples(POOL).nearest(
            ["The dress runs small, size up.", "My delivery arrived days after the promised date."], k=2)
        assert {e.label for e in for_sizing} == {"size_runs_small"}
        assert {e.label for e in for_delivery} == {"delivery_delay"}
        assert for_sizing[0].similarity >= for_sizing[1].similarity > 0.2

    def test_an_item_is_never_its_own_example(self):
        own = POOL[3].text
        [examples] = CorrectionExamples(POOL).nearest([f"  {own.upper()} "], k=5, min_similarity=0.0)
        assert own not in [e.text for e in examples] and len(examples) == 4

    def test_nothing_is_an_example_below_the_minimum_similarity(self):
        assert CorrectionExamples(POOL).nearest(["zzzz qqqq"], k=3) == [[]]

    def test_at_most_k_examples_come_back_and_their_texts_are_bounded(self):
        long_pool = [correction(f"l{n}", "delivery_delay", text=f"late parcel {n} " + "wait " * 200) for n in range(6)]
        [examples] = CorrectionExamples(long_pool).nearest(["late parcel, still waiting"], k=3, min_similarity=0.0)
        assert len(examples) == 3 and all(len(e.text) == MAX_EXAMPLE_CHARS for e in examples)

    def test_the_examples_do_not_depend_on_the_order_of_the_pool(self):
        texts = ["runs small", "late parcel", "charged twice"]
        assert CorrectionExamples(POOL).nearest(texts) == CorrectionExamples(POOL[::-1]).nearest(texts)

    def test_an_empty_pool_has_no_examples_and_no_version(self):
        examples = CorrectionExamples([])
        assert examples.nearest(["runs small", "late"]) == [[], []]
        assert examples.version == pool_version([]) == ""

    def test_the_pool_version_changes_with_a_correction_and_not_with_the_order(self):
        version = pool_version(POOL)
        assert version and version == pool_version(POOL[::-1]) == CorrectionExamples(POOL).version
        assert pool_version([*POOL[:4], replace(POOL[4], label="tracking_communication")]) != version
        assert pool_version(POOL[:4]) != version
