"""Reading export files record by record, keeping every record (good, malformed or mis-encoded)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feedback_assets.landing.mapping import LandingMapping, TimestampFormat, TimestampSpec

# The csv module refuses fields over 128 KiB; oversize text must reach silver to be rejected by size.
csv.field_size_limit(64 * 1024 * 1024)

_SURROGATE = re.compile("[\udc80-\udcff]")
_SEGMENT = re.compile(r"^(?P<name>[^\[\]]+)(?:\[(?P<selector>\*|[^=\]]+=[^\]]*)\])?$")


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


def _decode(raw: bytes) -> str:
    # surrogateescape keeps undecodable bytes visible so each record can be flagged on its own.
    return raw.decode("utf-8-sig", errors="surrogateescape")


def _clean(text: str) -> tuple[str, bool]:
    """Replaces undecodable bytes with U+FFFD; says whether there were any."""
    cleaned, count = _SURROGATE.subn("\ufffd", text)
    return cleaned, count > 0


def read_records(path: Path, mapping: LandingMapping) -> Iterator[SourceRecord]:
    """Every record of the file in order; raises LandingError if the file as a whole is unusable."""
    text = _decode(path.read_bytes())
    if mapping.format == "csv":
        yield from _read_csv(text, mapping, path)
    else:
        yield from _read_jsonl(text)


def _read_csv(text: str, mapping: LandingMapping, path: Path) -> Iterator[SourceRecord]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=mapping.csv_delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as error:
        raise LandingError(f"{path.name}: unreadable CSV header: {error}") from error
    # Unnamed columns (a pandas index, say) are called column_<n>, counting from 1.
    header = [_clean(column)[0].strip() or f"column_{n}" for n, column in enumerate(header, start=1)]
    check_columns(header, mapping, path.name)
    previous_line = reader.line_num
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield SourceRecord(previous_line + 1, None, "", parse_error=f"unreadable CSV row: {error}")
            previous_line = reader.line_num
            continue
        line = previous_line + 1
        previous_line = reader.line_num
        if not values or values == [""]:
            continue
        cleaned = [_clean(v) for v in values]
        raw_values = [v for v, _ in cleaned]
        encoding_error = any(flag for _, flag in cleaned)
        raw = json.dumps(dict(zip(header, raw_values, strict=False)) if len(values) == len(header)
                         else raw_values, ensure_ascii=False)
        if len(values) != len(header):
            yield SourceRecord(line, None, raw, encoding_error=encoding_error,
                               parse_error=f"expected {len(header)} columns, found {len(values)}")
            continue
        yield SourceRecord(line, dict(zip(header, raw_values, strict=True)), raw,
                           encoding_error=encoding_error)


def _read_jsonl(text: str) -> Iterator[SourceRecord]:
    for number, raw_line in enumerate(text.splitlines(), start=1):
        if not raw_line.strip():
            continue
        line, encoding_error = _clean(raw_line)
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            yield SourceRecord(number, None, line, parse_error=f"invalid JSON: {error.msg}",
                               encoding_error=encoding_error)
            continue
        if not isinstance(value, dict):
            yield SourceRecord(number, None, line, parse_error="a JSON line must hold an object",
                               encoding_error=encoding_error)
            continue
        yield SourceRecord(number, value, line, encoding_error=encoding_error)


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
        match = _SEGMENT.match(segment)
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
    except (ZoneInfoNotFoundError, ValueError):
        return None, f"unknown time zone {zone_name!r}"
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
    except (ValueError, TypeError, OverflowError, OSError):
        return None, f"cannot read {raw[:40]!r} as {spec.format.value}"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC), None


def assigned_timestamp(row_index: int, anchor: datetime, span_days: int) -> datetime:
    """Deterministic time for undated exports: spread rows over span_days back from the anchor."""
    day = anchor - timedelta(days=row_index % span_days)
    seconds_into_day = (row_index * 7919) % 86_400
    return day.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(seconds=seconds_into_day)
