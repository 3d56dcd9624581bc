"""Analyst corrections of the triage queue: the export, its validated import, applying them, and learning from them.

Analysts get the triage queue as a CSV that is safe to open in a spreadsheet, fill in
`corrected_label` and hand the file back. The import trusts nothing in the file: it knows only the
ids of the items it was given, the labels of the taxonomy and bounded notes, and every row ends
accepted, skipped or rejected with its line and why. Accepted corrections are ledger records; the
latest one of an item wins, applying it takes domain and owner from the taxonomy, and corrected
texts become the local classifier's memory of labelled wording and nearest-neighbour few-shot examples for the LLM.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel

from feedback_assets.enrichment.entities import one_line
from feedback_assets.enrichment.taxonomy import Taxonomy, content_version

EXPORT_COLUMNS = ("feedback_id", "feedback_date", "channel", "text", "model_label", "model_labels",
                  "confidence", "review_reason", "corrected_label", "note")
REQUIRED_COLUMNS = ("feedback_id", "corrected_label")
MAX_TEXT_CHARS = 2_000
MAX_FILE_BYTES = 5_000_000
MAX_ROWS = 20_000
MAX_NOTE_CHARS = 500
MAX_EXAMPLE_CHARS = 400
MAX_PROTOTYPES_PER_LABEL = 50
# What spreadsheets read as the start of a formula (OWASP's CSV injection list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

ANALYST = "analyst"
MODEL = "model"
CORRECTION_COLUMNS = ("label_source", "corrected_by", "corrected_at", "correction_note", "model_primary_label",
                      "correction_ignored")

LEDGER_SCHEMA = pa.schema([
    pa.field("feedback_id", pa.string(), nullable=False),
    pa.field("feedback_date", pa.string(), nullable=False),
    pa.field("label", pa.string(), nullable=False),
    pa.field("previous_label", pa.string()),
    pa.field("text", pa.string(), nullable=False),
    pa.field("note", pa.string()),
    pa.field("analyst", pa.string(), nullable=False),
    pa.field("corrected_at", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("source_sha256", pa.string(), nullable=False),
    pa.field("line", pa.int64(), nullable=False),
])

_SHOWN_CHARS = 60
_SUGGEST_AT = 0.6
_QUERY_CHUNK = 256


def neutralize_formula(cell: str) -> str:
    """The cell prefixed with an apostrophe when a spreadsheet would read it as a formula."""
    return "'" + cell if cell.startswith(FORMULA_PREFIXES) else cell


def spreadsheet_safe(value: str, limit: int | None = None) -> str:
    """A cell a spreadsheet shows as text: control characters other than newlines removed, bounded, formulas defused."""
    cleaned = _without_controls(value)
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return neutralize_formula(cleaned)


def export_rows(triage_rows: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Triage rows (classification rows plus the item's `text`) as rows of the analysts' file, by day then id."""
    ordered = sorted(triage_rows, key=lambda row: (_iso_day(row["feedback_date"]), str(row["feedback_id"])))
    return [{
        "feedback_id": _cell(row["feedback_id"]),
        "feedback_date": _iso_day(row["feedback_date"]),
        "channel": _cell(row.get("channel")),
        "text": spreadsheet_safe(str(row.get("text") or ""), MAX_TEXT_CHARS),
        "model_label": _cell(row.get("primary_label")),
        "model_labels": _cell(";".join(str(assignment["label"]) for assignment in row.get("labels") or [])),
        "confidence": "" if row.get("confidence") is None else f"{float(row['confidence']):.3f}",
        "review_reason": _cell(row.get("review_reason")),
        "corrected_label": "",
        "note": "",
    } for row in ordered]


def export_csv(rows: Iterable[Mapping[str, str]]) -> bytes:
    """Export rows as CSV bytes: UTF-8 with a BOM (so spreadsheets detect the encoding) and a header."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


class CorrectionFileError(ValueError):
    """A corrections file rejected as a whole: nothing in it is used."""


@dataclass(frozen=True)
class KnownItem:
    """What the import knows of an item an analyst may correct: its day, the model's primary label and its text."""

    feedback_date: date
    model_label: str | None
    text: str


def known_items_from(rows: Iterable[Mapping[str, Any]]) -> dict[str, KnownItem]:
    """Known items by feedback_id, from classification rows that carry the item's `text` (the export's input)."""
    return {str(row["feedback_id"]): KnownItem(_as_date(row["feedback_date"]), row.get("primary_label"),
                                               str(row.get("text") or ""))
            for row in rows}


@dataclass(frozen=True)
class Correction:
    """An analyst's label for one item, with who said so, when, and in which line of which file."""

    feedback_id: str
    feedback_date: date
    label: str
    previous_label: str | None
    text: str
    note: str | None
    analyst: str
    corrected_at: datetime
    source: str
    source_sha256: str
    line: int

    def to_record(self) -> dict[str, Any]:
        """A plain JSON-able ledger row (ISO dates) in LEDGER_SCHEMA's shape; `from_record` reads it back."""
        return {
            "feedback_id": self.feedback_id, "feedback_date": self.feedback_date.isoformat(), "label": self.label,
            "previous_label": self.previous_label, "text": self.text, "note": self.note, "analyst": self.analyst,
            "corrected_at": self.corrected_at.isoformat(), "source": self.source,
            "source_sha256": self.source_sha256, "line": self.line,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Correction:
        """The correction a ledger row holds."""
        corrected_at = datetime.fromisoformat(record["corrected_at"])
        if corrected_at.tzinfo is None:
            raise ValueError(f"corrected_at {record['corrected_at']!r} has no time zone")
        return cls(
            feedback_id=str(record["feedback_id"]), feedback_date=date.fromisoformat(record["feedback_date"]),
            label=str(record["label"]), previous_label=record.get("previous_label"), text=str(record["text"]),
            note=record.get("note"), analyst=str(record["analyst"]), corrected_at=corrected_at,
            source=str(record["source"]), source_sha256=str(record["source_sha256"]), line=int(record["line"]),
        )


@dataclass(frozen=True)
class RejectedRow:
    """A row of a corrections file that was not used, and why (`message` starts with its line)."""

    line: int
    feedback_id: str | None
    message: str


@dataclass(frozen=True)
class ImportResult:
    """What one corrections file said: accepted corrections, rows without one, and rejected rows with reasons."""

    source: str
    sha256: str
    accepted: tuple[Correction, ...]
    skipped: int
    rejected: tuple[RejectedRow, ...]

    def report(self) -> list[str]:
        """A summary line, then one line per rejected row."""
        summary = (f"{self.source} (sha256 {self.sha256[:12]}): {len(self.accepted)} accepted, "
                   f"{self.skipped} skipped (no corrected_label), {len(self.rejected)} rejected")
        return [summary, *(row.message for row in self.rejected)]


def parse_corrections(raw: bytes, *, known_items: Mapping[str, KnownItem], label_ids: Collection[str], analyst: str,
                      source: str, corrected_at: datetime) -> ImportResult:
    """Every row of an analyst's corrections file, judged: accepted, skipped (no corrected_label) or rejected.

    `label_ids` in taxonomy order: among equally close labels, the first is the one suggested for a typo.
    """
    if not analyst.strip() or not source.strip():
        raise ValueError("corrections need an analyst and a source")
    if corrected_at.tzinfo is None:
        raise ValueError("corrected_at must carry a time zone")
    if len(raw) > MAX_FILE_BYTES:
        raise CorrectionFileError(f"the file has {len(raw):,} bytes; at most {MAX_FILE_BYTES:,} are accepted")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise CorrectionFileError(f"the file is not UTF-8 text (byte {error.start} cannot be decoded); "
                                  "save it as CSV UTF-8") from None
    rows = _numbered_rows(csv.reader(io.StringIO(text, newline="")))
    width, columns = _header(next(rows, None))
    sha256 = hashlib.sha256(raw).hexdigest()
    accepted: list[Correction] = []
    rejected: list[RejectedRow] = []
    skipped = 0
    first_line_of: dict[str, int] = {}
    for count, (line, fields) in enumerate(rows, start=1):
        if count > MAX_ROWS:
            raise CorrectionFileError(f"the file has more than {MAX_ROWS:,} rows; split it into smaller files")
        if len(fields) != width:
            rejected.append(_rejection(line, None, f"expected {width} fields, found {len(fields)}"))
            continue
        label = fields[columns["corrected_label"]].strip().lower()
        if not label:
            skipped += 1
            continue
        feedback_id = _restored(fields[columns["feedback_id"]].strip())
        problem = _id_problem(feedback_id, known_items, first_line_of)
        if problem:
            rejected.append(_rejection(line, feedback_id or None, problem))
            continue
        first_line_of[feedback_id] = line
        if label not in label_ids:
            rejected.append(_rejection(line, feedback_id,
                                       f"unknown label {_shown(label)}{_did_you_mean(label, label_ids)}"))
            continue
        note = _without_controls(fields[columns["note"]]).strip() if "note" in columns else ""
        if len(note) > MAX_NOTE_CHARS:
            rejected.append(_rejection(line, feedback_id, f"note has {len(note)} characters; at most {MAX_NOTE_CHARS}"))
            continue
        item = known_items[feedback_id]
        accepted.append(Correction(
            feedback_id=feedback_id, feedback_date=item.feedback_date, label=label, previous_label=item.model_label,
            text=item.text[:MAX_TEXT_CHARS], note=note or None, analyst=analyst.strip(), corrected_at=corrected_at,
            source=source.strip(), source_sha256=sha256, line=line,
        ))
    return ImportResult(source.strip(), sha256, tuple(accepted), skipped, tuple(rejected))


def latest_corrections(corrections: Iterable[Correction]) -> dict[str, Correction]:
    """The correction that counts for each item: the latest, equal times decided by source, then line."""
    latest: dict[str, Correction] = {}
    for correction in corrections:
        current = latest.get(correction.feedback_id)
        if current is None or _recency(correction) > _recency(current):
            latest[correction.feedback_id] = correction
    return dict(sorted(latest.items()))


def apply_correction(row: Mapping[str, Any], correction: Correction, taxonomy: Taxonomy) -> dict[str, Any]:
    """A new classification row in which the analyst's label is primary, its domain and owner from the taxonomy."""
    if row["feedback_id"] != correction.feedback_id:
        raise ValueError(f"the correction of {correction.feedback_id!r} cannot apply to {row['feedback_id']!r}")
    label = correction.label
    if label not in taxonomy.labels:
        return {**model_row_as_label_row(row),
                "correction_ignored": f"the analyst label {_shown(label)} ({correction.analyst}, "
                                      f"{correction.corrected_at.isoformat()}) is no longer in the taxonomy"}
    model_primary = row.get("primary_label")
    assignments = [dict(assignment) for assignment in row.get("labels") or []]
    # The model's own assignment of the label when it had one, else the replaced primary's severity and evidence.
    basis = next((a for a in assignments if a["label"] == label), None) \
        or next((a for a in assignments if a["label"] == model_primary), {})
    corrected = {"label": label, "domain": taxonomy.domain_of(label), "severity": basis.get("severity"),
                 "evidence": basis.get("evidence"), "evidence_origin": basis.get("evidence_origin")}
    return {
        **row,
        "labels": [corrected, *(a for a in assignments if a["label"] not in (label, model_primary))],
        "primary_label": label,
        "domain": taxonomy.domain_of(label),
        "suggested_owner": taxonomy.labels[label].owner.team,
        "needs_review": False,
        "review_reason": None,
        "label_source": ANALYST,
        "corrected_by": correction.analyst,
        "corrected_at": correction.corrected_at.isoformat(),
        "correction_note": correction.note,
        "model_primary_label": model_primary,
        "correction_ignored": None,
    }


def model_row_as_label_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A classification row without a correction, in the shape of a corrected one (label_source "model")."""
    return {**row, **dict.fromkeys(CORRECTION_COLUMNS), "label_source": MODEL}


def apply_corrections(rows: Iterable[Mapping[str, Any]], corrections: Mapping[str, Correction],
                      taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """Every row with its item's correction applied when it has one (`corrections` from `latest_corrections`)."""
    return [apply_correction(row, corrections[row["feedback_id"]], taxonomy) if row["feedback_id"] in corrections
            else model_row_as_label_row(row) for row in rows]


def prototypes_from(corrections: Iterable[Correction],
                    per_label: int = MAX_PROTOTYPES_PER_LABEL) -> list[tuple[str, str]]:
    """(label, text) pairs for the local classifier's memory: one per distinct text, at most `per_label`, newest first."""
    taken: Counter[str] = Counter()
    prototypes = []
    for correction in sorted(_latest_per_text(corrections).values(), key=_recency, reverse=True):
        if taken[correction.label] < per_label:
            taken[correction.label] += 1
            prototypes.append((correction.label, correction.text))
    return prototypes


def pool_version(corrections: Iterable[Correction]) -> str:
    """A short content hash of the corrected (label, text) pool, whatever its order; "" for an empty pool."""
    pool = sorted((c.label, c.text) for c in _latest_per_text(corrections).values())
    return content_version(*(f"{label}\t{text}".encode() for label, text in pool)) if pool else ""


@dataclass(frozen=True)
class Example:
    """A corrected item to show the model: its bounded text, the analyst's label, and its similarity to the item."""

    text: str
    label: str
    similarity: float


class CorrectionExamples:
    """The corrected texts most like each item to classify (character n-gram TF-IDF cosine), as few-shot examples."""

    def __init__(self, corrections: Iterable[Correction]):
        latest = _latest_per_text(corrections)
        self._keys = sorted(latest)
        self._pool = [latest[key] for key in self._keys]
        self._position = {key: index for index, key in enumerate(self._keys)}
        self.version = pool_version(self._pool)
        self._vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
        self._matrix = self._vectorizer.fit_transform([c.text for c in self._pool]) if self._pool else None

    def nearest(self, texts: Sequence[str], k: int = 3, min_similarity: float = 0.2) -> list[list[Example]]:
        """For each text, up to k pool items at least `min_similarity` alike, most similar first, never itself."""
        if k < 0:
            raise ValueError("k must not be negative")
        if self._matrix is None or k == 0:
            return [[] for _ in texts]
        examples = []
        for offset in range(0, len(texts), _QUERY_CHUNK):
            chunk = texts[offset: offset + _QUERY_CHUNK]
            # TF-IDF rows are L2-normalized, so the dot product is the cosine.
            queries = self._vectorizer.transform([text[:MAX_TEXT_CHARS] for text in chunk])
            similarities = linear_kernel(queries, self._matrix)
            examples += [self._best(text, row, k, min_similarity)
                         for text, row in zip(chunk, similarities, strict=True)]
        return examples

    def _best(self, text: str, similarities: np.ndarray, k: int, min_similarity: float) -> list[Example]:
        candidates = np.flatnonzero(similarities >= min_similarity)
        own = self._position.get(_text_key(text))
        candidates = candidates[candidates != own] if own is not None else candidates
        # Most similar first; equal similarities in the pool's (text) order.
        ranked = candidates[np.lexsort((candidates, -similarities[candidates]))][:k]
        return [Example(self._pool[i].text[:MAX_EXAMPLE_CHARS], self._pool[i].label, round(float(similarities[i]), 4))
                for i in ranked]


@dataclass(frozen=True)
class LabelCountChange:
    """How many items had a primary label before corrections and after."""

    before: int
    after: int

    @property
    def change(self) -> int:
        """After minus before: how many items corrections moved into (positive) or out of (negative) the label."""
        return self.after - self.before


def label_counts_delta(model_rows: Iterable[Mapping[str, Any]],
                       corrected_rows: Iterable[Mapping[str, Any]]) -> dict[str, LabelCountChange]:
    """Per primary label (sorted), the count among the model's rows and among the corrected rows."""
    before = Counter(row["primary_label"] for row in model_rows if row.get("primary_label"))
    after = Counter(row["primary_label"] for row in corrected_rows if row.get("primary_label"))
    return {label: LabelCountChange(before[label], after[label]) for label in sorted(before.keys() | after.keys())}


def _numbered_rows(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """CSV records with the line each starts on; blank lines are not records."""
    start = 1
    try:
        for fields in reader:
            if fields:
                yield start, fields
            start = reader.line_num + 1
    except csv.Error as error:
        raise CorrectionFileError(f"line {start}: not valid CSV ({error})") from None


def _header(first: tuple[int, list[str]] | None) -> tuple[int, dict[str, int]]:
    """The header's width and where the columns the import reads are; a header that will not do rejects the file."""
    if first is None:
        raise CorrectionFileError("the file is empty; expected a header with feedback_id and corrected_label")
    names = [name.strip().lower() for name in first[1]]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise CorrectionFileError(f"the header has no {' or '.join(missing)} column; "
                                  f"a corrections file needs {' and '.join(REQUIRED_COLUMNS)}")
    read = (*REQUIRED_COLUMNS, "note")
    doubled = [name for name in read if names.count(name) > 1]
    if doubled:
        raise CorrectionFileError(f"the header names {', '.join(doubled)} more than once")
    return len(names), {name: names.index(name) for name in read if name in names}


def _id_problem(feedback_id: str, known_items: Mapping[str, KnownItem], first_line_of: Mapping[str, int]) -> str | None:
    if not feedback_id:
        return "missing feedback_id"
    if not feedback_id.isprintable():
        return f"feedback_id {_shown(feedback_id)} contains control characters"
    if feedback_id not in known_items:
        return f"unknown feedback_id {_shown(feedback_id)}"
    if feedback_id in first_line_of:
        return f"duplicate: feedback_id {_shown(feedback_id)} is already corrected on line {first_line_of[feedback_id]}"
    return None


def _did_you_mean(label: str, label_ids: Collection[str]) -> str:
    """' (did you mean …?)' naming the label closest to a mistyped one, as a whole or by one of its words.

    A word only counts when it starts like the typed label ('sizing' is nearer 'missing' than 'size'
    letter by letter, but nobody means missing_parts by it).
    """
    if not label or len(label) > _SHOWN_CHARS:
        return ""

    def closeness(candidate: str) -> float:
        words = [word for word in candidate.split("_") if len(word) >= 3 and word[0] == label[0]]
        return max(difflib.SequenceMatcher(None, label, part).ratio() for part in [candidate, *words])

    best = max(label_ids, key=closeness, default=None)
    return f" (did you mean {best!r}?)" if best is not None and closeness(best) >= _SUGGEST_AT else ""


def _rejection(line: int, feedback_id: str | None, reason: str) -> RejectedRow:
    return RejectedRow(line, one_line(feedback_id) if feedback_id else None, f"line {line}: {reason}")


def _restored(cell: str) -> str:
    """The cell as it was before `neutralize_formula`, so exported ids come back as they went out."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_PREFIXES) else cell


def _without_controls(text: str) -> str:
    return "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch) != "Cc")


def _shown(value: str) -> str:
    """Untrusted text as it may appear in a message: one line, bounded, quoted."""
    return repr(one_line(value, _SHOWN_CHARS))


def _cell(value: object) -> str:
    return "" if value is None else spreadsheet_safe(str(value))


def _as_date(value: date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(value)


def _iso_day(value: date | str) -> str:
    return _as_date(value).isoformat()


def _recency(correction: Correction) -> tuple[datetime, str, int, str]:
    return correction.corrected_at, correction.source, correction.line, correction.feedback_id


def _text_key(text: str) -> str:
    """Texts that differ only in case or spacing are the same text."""
    return " ".join(text.split()).casefold()


def _latest_per_text(corrections: Iterable[Correction]) -> dict[str, Correction]:
    """The latest correction of each distinct non-empty text, by its `_text_key`."""
    latest: dict[str, Correction] = {}
    for correction in corrections:
        key = _text_key(correction.text)
        if key and (key not in latest or _recency(correction) > _recency(latest[key])):
            latest[key] = correction
    return latest
