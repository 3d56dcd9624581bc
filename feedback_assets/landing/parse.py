"""Reading export files record by record, keeping every record (good, malformed or mis-encoded).

Nothing a file holds may stop the file, or the files after it, from landing: whatever a record does
to the parsers (deep nesting, lone surrogates, huge numbers, duplicate keys, unterminated quotes)
becomes that record's `parse_error` or `encoding_error`, and the other records land. Only problems
of the file as a whole (no header, required columns missing, duplicate column names the mapping
reads) refuse it, with a `LandingError` that says why.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feedback_assets.landing.mapping import PATH_SEGMENT, LandingMapping, TimestampFormat, TimestampSpec

# The csv module refuses fields over 128 KiB; oversize text must reach silver to be rejected by size.
csv.field_size_limit(64 * 1024 * 1024)

# A record longer than this is refused on its own (its first characters are kept as its raw value);
# anything shorter reaches silver, which rejects text over FEEDBACK_MAX_TEXT_CHARS.
MAX_RECORD_CHARS = 2_000_000
RAW_PREFIX_CHARS = 2_000

_SURROGATE = re.compile("[\ud800-\udfff]")
# CSV lines end at CRLF, LF or CR, and nowhere else: U+2028, NEL or FF inside a field are text, not
# line breaks (str.splitlines would split records at them).
_PHYSICAL_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+\Z")
_UNDECODABLE = "feedback-undecodable"
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _mark_undecodable(error: UnicodeDecodeError) -> tuple[str, int]:
    """Like `surrogateescape`, for every codec: each undecodable byte becomes a lone surrogate, flagged later."""
    bad = error.object[error.start:error.end]
    return "".join(chr(0xDC00 + byte) for byte in bad), error.end


codecs.register_error(_UNDECODABLE, _mark_undecodable)


class LandingError(ValueError):
    """A file that cannot be landed as a whole (e.g. required columns missing), said in words."""


@dataclass(frozen=True)
class SourceRecord:
    """One record of an export: its fields, or why it could not be read."""

    line: int
    fields: dict[str, object] | None
    raw: str
    parse_error: str | None = None
    encoding_error: bool = False


def decode_export(raw: bytes) -> str:
    """The file's text: UTF-8 unless a byte-order mark says UTF-16 or UTF-32; bad bytes stay visible."""
    codec = next((name for bom, name in _BOMS if raw.startswith(bom)), "utf-8")
    return raw.decode(codec, errors=_UNDECODABLE)


def clean_text(text: str) -> tuple[str, bool]:
    """Replaces undecodable bytes and lone surrogates with U+FFFD; says whether there were any."""
    cleaned, count = _SURROGATE.subn("\ufffd", text)
    return cleaned, count > 0


def physical_lines(text: str) -> list[str]:
    """A CSV file's lines with their endings (CRLF, LF or CR only)."""
    return _PHYSICAL_LINE.findall(text)


def read_records(path: Path, mapping: LandingMapping) -> Iterator[SourceRecord]:
    """Every record of the file in order; raises LandingError if the file as a whole is unusable."""
    text = decode_export(path.read_bytes())
    if not text.strip():
        raise LandingError(f"{path.name}: the file is empty (no header and no records)")
    if mapping.format == "csv":
        return _read_csv(text, mapping, path.name)
    return _read_jsonl(text, mapping, path.name)


# ---- CSV ------------------------------------------------------------------------------------


class _LineFeed:
    """Feeds physical lines to csv.reader and counts how many it has taken."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.taken = 0

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        if self.taken >= len(self.lines):
            raise StopIteration
        self.taken += 1
        return self.lines[self.taken - 1]


def _csv_header(values: list[str], mapping: LandingMapping, file_name: str) -> list[str]:
    """Cleaned column names; unnamed columns become column_<n>, repeated unused ones get `#2`, `#3`."""
    if any("\x00" in value for value in values):
        raise LandingError(f"{file_name}: the header contains NUL bytes (a binary file, or UTF-16 without a "
                           "byte-order mark?)")
    # Unnamed columns (a pandas index, say) are called column_<n>, counting from 1.
    names = [clean_text(column)[0].strip() or f"column_{n}" for n, column in enumerate(values, start=1)]
    seen: dict[str, int] = {}
    repeated_mapped = []
    header = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        if seen[name] == 1:
            header.append(name)
            continue
        if name in mapping.mapped_columns():
            repeated_mapped.append(name)
        header.append(f"{name}#{seen[name]}")
    if repeated_mapped:
        raise LandingError(
            f"{file_name}: column(s) {', '.join(sorted(set(repeated_mapped)))} appear more than once in the header and "
            f"mapping {mapping.name!r} reads them; which one holds the data is ambiguous, so nothing was landed"
        )
    return header


def _read_csv(text: str, mapping: LandingMapping, file_name: str) -> Iterator[SourceRecord]:
    lines = physical_lines(text)
    feed = _LineFeed(lines)
    # strict: an unterminated quote is an error at the end of the data, not a field that swallows the file.
    reader = csv.reader(feed, delimiter=mapping.csv_delimiter, strict=True)
    try:
        header_values = next(reader)
    except csv.Error as error:
        raise LandingError(f"{file_name}: unreadable CSV header: {error}") from error
    header = _csv_header(header_values, mapping, file_name)
    check_columns(header, mapping, file_name)
    return _csv_records(reader, feed, header)


def _csv_records(reader, feed: _LineFeed, header: list[str]) -> Iterator[SourceRecord]:
    while True:
        start = feed.taken
        try:
            values, error = next(reader), None
        except StopIteration:
            return
        except csv.Error as failure:
            values, error = None, f"unreadable CSV row: {failure}"
        span = feed.lines[start:feed.taken]
        if values is not None and len(values) == len(header):
            yield _csv_record(start + 1, header, values)
        elif len(span) > 1:
            # A bad record over several lines (an unterminated quote, say) would hide every record it
            # swallowed: each of its physical lines is read again on its own.
            for offset, line in enumerate(span):
                yield from _csv_single_line(start + 1 + offset, line, header)
        elif values == [] or values == [""]:
            continue
        else:
            yield _csv_reject(start + 1, header, values, span, error)


def _csv_single_line(number: int, line: str, header: list[str]) -> Iterator[SourceRecord]:
    if not line.strip():
        return
    try:
        values, error = next(csv.reader([line], strict=True)), None
    except (csv.Error, StopIteration) as failure:
        values, error = None, f"unreadable CSV row: {failure or 'no data'}"
    if values is not None and len(values) == len(header):
        yield _csv_record(number, header, values)
    else:
        yield _csv_reject(number, header, values, [line], error)


def _csv_record(number: int, header: list[str], values: list[str]) -> SourceRecord:
    cleaned = [clean_text(v) for v in values]
    raw_values = [v for v, _ in cleaned]
    encoding_error = any(flag for _, flag in cleaned)
    raw = json.dumps(dict(zip(header, raw_values, strict=True)), ensure_ascii=False)
    if len(raw) > MAX_RECORD_CHARS:
        return _oversize(number, raw)
    if any("\x00" in v for v in raw_values):
        return SourceRecord(number, None, raw, parse_error=_NUL_ERROR, encoding_error=encoding_error)
    return SourceRecord(number, dict(zip(header, raw_values, strict=True)), raw, encoding_error=encoding_error)


def _csv_reject(number: int, header: list[str], values: list[str] | None, span: list[str], error: str | None) -> SourceRecord:
    raw, encoding_error = clean_text(json.dumps(values, ensure_ascii=False) if values is not None else "".join(span))
    if len(raw) > MAX_RECORD_CHARS:
        return _oversize(number, raw)
    detail = error or f"expected {len(header)} columns, found {len(values or [])}"
    return SourceRecord(number, None, raw, parse_error=detail, encoding_error=encoding_error)


_NUL_ERROR = "the record contains NUL bytes (a binary file, or UTF-16 without a byte-order mark?)"


def _oversize(number: int, raw: str) -> SourceRecord:
    return SourceRecord(number, None, raw[:RAW_PREFIX_CHARS] + "…",
                        parse_error=f"the record has {len(raw):,} characters; the limit is {MAX_RECORD_CHARS:,}")


# ---- JSON Lines -----------------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object whose keys are unique; a repeated key would silently overwrite a value."""
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        raise _DuplicateKey(next(key for key, _ in pairs if key in seen or seen.add(key)))
    return record


# A JSON escape of a UTF-16 surrogate: the only way a decoded value can hold a lone one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _sanitized(value: object) -> tuple[object, bool]:
    """The value with lone surrogates in every string replaced by U+FFFD (iteratively: no depth limit)."""
    dirty = False

    def clean(item: object) -> object:
        nonlocal dirty
        if isinstance(item, str):
            text, flagged = clean_text(item)
            dirty = dirty or flagged
            return text
        return item

    root = [clean(value)]
    stack: list[object] = [root[0]]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in list(node):
                child = clean(node.pop(key))
                node[clean(key)] = child
                stack.append(child)
        elif isinstance(node, list):
            for index, child in enumerate(node):
                node[index] = clean(child)
                stack.append(node[index])
    return root[0], dirty


def parse_json_record(number: int, content: str) -> SourceRecord:
    """One JSON object, or the reason it is not one; never raises."""
    raw, encoding_error = clean_text(content)
    if len(content) > MAX_RECORD_CHARS:
        return _oversize(number, raw)
    if "\x00" in content:
        return SourceRecord(number, None, raw, parse_error=_NUL_ERROR, encoding_error=encoding_error)
    try:
        # strict=False: raw tabs and other control characters inside strings are common in exports.
        value = json.loads(content, object_pairs_hook=_unique_keys, strict=False)
    except json.JSONDecodeError as error:
        return SourceRecord(number, None, raw, parse_error=f"invalid JSON: {error.msg}", encoding_error=encoding_error)
    except _DuplicateKey as error:
        return SourceRecord(number, None, raw, encoding_error=encoding_error,
                            parse_error=f"duplicate key {clean_text(str(error))[0][:80]!r}: one value would overwrite the other")
    except RecursionError:
        return SourceRecord(number, None, raw, parse_error="the JSON is nested too deeply", encoding_error=encoding_error)
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        return SourceRecord(number, None, raw, parse_error=f"unreadable JSON: {str(error)[:160]}",
                            encoding_error=encoding_error)
    if not isinstance(value, dict):
        kind = "an array" if isinstance(value, list) else "a single value"
        return SourceRecord(number, None, raw, parse_error=f"a JSON line must hold an object, not {kind}",
                            encoding_error=encoding_error)
    if encoding_error or _SURROGATE_ESCAPE.search(content):
        value, dirty = _sanitized(value)
        encoding_error = encoding_error or dirty
    return SourceRecord(number, value, raw, encoding_error=encoding_error)


def _read_jsonl(text: str, mapping: LandingMapping, file_name: str) -> Iterator[SourceRecord]:
    # JSON Lines end at LF (CRLF tolerated) only: a CR, U+2028, NEL or FF inside a string is text.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    records = _json_array_records(text) or [
        parse_json_record(number, line.removesuffix("\r"))
        for number, line in enumerate(lines, start=1) if line.strip()
    ]
    present = {key for record in records if record.fields for key in record.fields}
    if any(record.fields for record in records):
        missing = sorted(column for column in mapping.required_columns() if column not in present)
        if missing:
            raise LandingError(
                f"{file_name}: no record has the required field(s) {', '.join(missing)} of mapping {mapping.name!r}; "
                f"the records have: {', '.join(sorted(present)[:20])}"
            )
    return iter(records)


def _json_array_records(text: str) -> list[SourceRecord] | None:
    """A file holding one JSON array (a common export) is read element by element, element k as line k."""
    if not text.lstrip().startswith("["):
        return None
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, strict=False)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, list):
        return None
    records = []
    for number, element in enumerate(document, start=1):
        try:
            records.append(parse_json_record(number, json.dumps(element, ensure_ascii=False)))
        except (ValueError, RecursionError) as error:
            records.append(SourceRecord(number, None, "", parse_error=f"unreadable JSON element: {type(error).__name__}"))
    return records


def check_columns(columns: list[str], mapping: LandingMapping, file_name: str) -> list[str]:
    """Raises for missing required columns; returns the columns the mapping does not use."""
    present = set(columns)
    if missing := sorted(mapping.required_columns() - present):
        raise LandingError(
            f"{file_name}: missing required column(s) {', '.join(missing)} for mapping "
            f"{mapping.name!r}; the file has: {', '.join(columns)}"
        )
    unknown = sorted(present - mapping.mapped_columns())
    if unknown and not mapping.allow_unknown_columns:
        raise LandingError(
            f"{file_name}: unknown column(s) {', '.join(unknown)} (mapping {mapping.name!r} "
            "sets allow_unknown_columns: false)"
        )
    return unknown


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def extract(record: object, path: str) -> list[object]:
    """Values at a path such as `a.b`, `items[*].text` or `transcript[role=customer].text`.

    A key that itself contains dots (flat CSV columns such as `reviews.text`) is matched whole first.
    """
    if isinstance(record, dict) and path in record:
        return [record[path]]
    values = [record]
    for segment in path.split("."):
        match = PATH_SEGMENT.match(segment)
        if not match:
            raise ValueError(f"bad path segment {segment!r} in {path!r}")
        name, selector = match["name"], match["selector"]
        found: list[object] = []
        for value in values:
            if not isinstance(value, dict) or name not in value:
                continue
            child = value[name]
            if selector is None:
                found.append(child)
            elif isinstance(child, list):
                if selector == "*":
                    found.extend(child)
                else:
                    key, expected = selector.split("=", 1)
                    found.extend(c for c in child if isinstance(c, dict) and _as_text(c.get(key)) == expected)
        values = found
    return values


def field_value(record: dict[str, object], paths: list[str], separator: str = "\n") -> str | None:
    """The text at the given paths, several values joined by the separator; None when nothing is there."""
    parts = [text for path in paths for v in extract(record, path) if (text := _as_text(v)) is not None]
    if not parts:
        return None
    return separator.join(p for p in parts if p.strip())


def parse_timestamp(record: dict[str, object], spec: TimestampSpec) -> tuple[datetime | None, str | None]:
    """The UTC instant of a record, or None with the reason it could not be read."""
    raw = field_value(record, [spec.field])
    if raw is None or not raw.strip():
        return None, f"no value in {spec.field!r}"
    raw = raw.strip()
    try:
        zone_name = field_value(record, [spec.timezone_field]) if spec.timezone_field else None
        zone = ZoneInfo((zone_name or spec.default_timezone).strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None, f"unknown time zone {(zone_name or '')[:40]!r}"
    try:
        match spec.format:
            case TimestampFormat.iso8601:
                moment = datetime.fromisoformat(raw)
            case TimestampFormat.epoch_seconds:
                moment = datetime.fromtimestamp(float(raw), UTC)
            case TimestampFormat.epoch_millis:
                moment = datetime.fromtimestamp(float(raw) / 1000, UTC)
            case TimestampFormat.strptime:
                moment = datetime.strptime(raw, spec.pattern or "")
            case TimestampFormat.rfc2822:
                moment = parsedate_to_datetime(raw)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(UTC), None
    except (ValueError, TypeError, OverflowError, OSError):
        return None, f"cannot read {raw[:40]!r} as {spec.format.value}"


def assigned_timestamp(row_index: int, anchor: datetime, span_days: int) -> datetime:
    """Deterministic time for undated exports: spread rows over span_days back from the anchor."""
    day = anchor - timedelta(days=row_index % span_days)
    seconds_into_day = (row_index * 7919) % 86_400
    return day.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(seconds=seconds_into_day)
