"""Ticket resolutions read back from the ticket system: what each state means and how a cursor polls them.

A poll asks the ticket system for every ticket changed since a little before the cursor (JQL dates
have minute precision and Jira's search index lags behind its writes), so a poll sees some events
again; `new_events` drops those by their `dedupe_key` and `next_cursor` never moves backwards.
Events are observations of a ticket's state, not transitions: a comment on a resolved Jira issue
is observed again as "resolved" at its new `updated`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import yaml

__all__ = [
    "OPEN",
    "RESOLUTION_CODES",
    "ResolutionEvent",
    "ResolutionMapping",
    "ResolutionSource",
    "code_of",
    "latest_per_issue",
    "load_resolution_mapping",
    "new_events",
    "next_cursor",
    "parse_resolution_mapping",
    "poll_start",
]

RESOLUTION_CODES = ("resolved", "mitigated", "deferred", "invalid")
OPEN = "open"  # a ticket not (or no longer) resolved, e.g. reopened

_MAPPING_KEYS = frozenset({"by_resolution", "by_status", "done_default", "overlap_minutes"})


def _utc(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class ResolutionEvent:
    """One observed state of a ticket: who it is (immutable id), when the system last changed it, what it means."""

    issue_id: str  # Jira's immutable numeric issue id; the local store's immutable ticket id
    key: str  # FIT-3 (keys change when an issue moves project: never join on it alone)
    updated_at: datetime  # UTC, aware
    status: str  # status name as the system reports it
    status_category: str  # Jira statusCategory key: "new" | "indeterminate" | "done"
    resolution: str | None  # Jira resolution name (Done, Won't Do, Duplicate...) / local code
    code: str  # one of RESOLUTION_CODES or OPEN, mapped through ResolutionMapping
    note: str  # local: the note given; Jira: "" (comments are not fetched)
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        # One instant must give one dedupe key, whatever offset the caller wrote it in.
        object.__setattr__(self, "updated_at", _utc(self.updated_at, "updated_at"))
        if self.code not in (*RESOLUTION_CODES, OPEN):
            raise ValueError(f"code must be one of {', '.join((*RESOLUTION_CODES, OPEN))}, got {self.code!r}")

    def dedupe_key(self) -> str:
        """The event's identity across polls: the issue id and the instant it was last changed."""
        return f"{self.issue_id}@{self.updated_at.isoformat()}"


@dataclass(frozen=True)
class ResolutionMapping:
    """How ticket states map to resolution codes (names matched case-insensitively), and how far polls overlap."""

    by_resolution: Mapping[str, str]  # resolution name -> code, for done-category issues
    by_status: Mapping[str, str]  # status name -> code, for any category; wins over by_resolution
    done_default: str  # code for a done issue whose resolution is not listed
    overlap_minutes: int  # how far before the cursor each poll looks again
    version: str  # short sha of the file

    def __post_init__(self) -> None:
        for name in ("by_resolution", "by_status"):
            folded = {key.casefold(): code for key, code in getattr(self, name).items()}
            object.__setattr__(self, name, MappingProxyType(folded))


class ResolutionSource(Protocol):
    """A ticket system that reports what happened to its tickets (both ticket sinks are one)."""

    def resolution_events(self, since: datetime, mapping: ResolutionMapping) -> list[ResolutionEvent]:
        """Every observed ticket state changed at or after `since`."""
        ...


# ---- the mapping file -------------------------------------------------------------------------


def _checked_code(code: Any, where: str) -> str:
    if code not in RESOLUTION_CODES:
        raise ValueError(f"resolutions.yaml {where}: {code!r} is not one of {', '.join(RESOLUTION_CODES)}")
    return code


def _names_to_codes(document: dict[str, Any], section: str) -> dict[str, str]:
    entries = document.get(section) or {}
    if not isinstance(entries, dict):
        raise ValueError(f"resolutions.yaml {section} must map names to codes, got {type(entries).__name__}")
    codes: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for name, code in entries.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"resolutions.yaml {section}: {name!r} is not a name")
        folded = name.strip().casefold()
        if folded in spelled:
            raise ValueError(f"resolutions.yaml {section}: {name!r} repeats {spelled[folded]!r} (names ignore case)")
        spelled[folded] = name
        codes[folded] = _checked_code(code, f"{section}[{name!r}]")
    return codes


def parse_resolution_mapping(raw: bytes) -> ResolutionMapping:
    """The mapping in `raw` (resolutions.yaml), rejecting unknown keys, codes and repeated names."""
    document = yaml.safe_load(raw)
    if not isinstance(document, dict):
        raise ValueError("resolutions.yaml must be a mapping")
    unknown = sorted(set(document) - _MAPPING_KEYS)
    if unknown:
        raise ValueError(f"resolutions.yaml has unknown keys {unknown}; expected {sorted(_MAPPING_KEYS)}")
    overlap = document.get("overlap_minutes")
    if not isinstance(overlap, int) or isinstance(overlap, bool) or overlap < 1:
        raise ValueError(f"resolutions.yaml overlap_minutes must be a whole number of minutes ≥ 1, got {overlap!r}")
    return ResolutionMapping(
        by_resolution=_names_to_codes(document, "by_resolution"),
        by_status=_names_to_codes(document, "by_status"),
        done_default=_checked_code(document.get("done_default"), "done_default"),
        overlap_minutes=overlap,
        version=hashlib.sha256(raw).hexdigest()[:12],
    )


@cache
def load_resolution_mapping(path: Path) -> ResolutionMapping:
    """The mapping in the file at `path`, read once per process."""
    return parse_resolution_mapping(path.read_bytes())


# ---- meaning and polling ----------------------------------------------------------------------


def code_of(status_category: str, status: str, resolution: str | None, mapping: ResolutionMapping) -> str:
    """The code of a ticket state: its status if mapped, else its resolution when done, else open."""
    by_status = mapping.by_status.get(status.strip().casefold())
    if by_status is not None:
        return by_status
    # Only the status category says whether an issue is done: workflows that reopen without
    # clearing the resolution leave a stale one (and a resolutiondate) on open issues.
    if status_category != "done":
        return OPEN
    if resolution is None:
        return mapping.done_default
    return mapping.by_resolution.get(resolution.strip().casefold(), mapping.done_default)


def poll_start(cursor: datetime | None, overlap_minutes: int, floor: datetime) -> datetime:
    """Where a poll begins: `overlap_minutes` before the cursor, or `floor` on the first poll."""
    if overlap_minutes < 0:
        raise ValueError(f"overlap_minutes must not be negative, got {overlap_minutes}")
    if cursor is None:
        return _utc(floor, "floor")
    return _utc(cursor, "cursor") - timedelta(minutes=overlap_minutes)


def new_events(events: Iterable[ResolutionEvent], seen: Collection[str]) -> list[ResolutionEvent]:
    """The events not in `seen` (by dedupe key), each once, oldest first."""
    fresh: dict[str, ResolutionEvent] = {}
    for event in events:
        dedupe_key = event.dedupe_key()
        if dedupe_key not in seen and dedupe_key not in fresh:
            fresh[dedupe_key] = event
    return sorted(fresh.values(), key=lambda event: (event.updated_at, event.issue_id))


def next_cursor(events: Iterable[ResolutionEvent], previous: datetime | None) -> datetime | None:
    """The newest `updated_at` among the events and the previous cursor: a cursor never moves backwards."""
    moments = [event.updated_at for event in events]
    if previous is not None:
        moments.append(_utc(previous, "previous"))
    return max(moments, default=None)


def latest_per_issue(events: Iterable[ResolutionEvent]) -> dict[str, ResolutionEvent]:
    """Each issue's newest event by `updated_at`; of equally new ones, the later in `events`."""
    latest: dict[str, ResolutionEvent] = {}
    for event in events:
        current = latest.get(event.issue_id)
        if current is None or event.updated_at >= current.updated_at:
            latest[event.issue_id] = event
    return latest
