"""Where alert tickets go: Jira when it is configured, else a ticket store of plain files.

Jira's create has no idempotency key, so a create is sent exactly once and a lost answer surfaces as
an error; the dispatcher then finds the ticket again by its breach label. Both sinks also report
what happened to their tickets (`resolution_events`), read back by a cursor that overlaps its polls.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from functools import cached_property, partial
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg
import requests
from jira import JIRA, JIRAError

from feedback_assets.alerts.model import Alert, TicketRef, TicketSink, short_hash
from feedback_assets.alerts.render import (
    jira_comment,
    jira_description,
    markdown_comment,
    markdown_ticket,
    ticket_summary,
)
from feedback_assets.alerts.resolutions import (
    OPEN,
    RESOLUTION_CODES,
    ResolutionEvent,
    ResolutionMapping,
    code_of,
)
from resources.file_lock import exclusive_lock

_log = logging.getLogger(__name__)

FEEDBACK_TO_FIX_LABEL = "feedback-to-fix"
# Labels are interpolated into JQL, so only the shape our own labels have is accepted.
_LABEL = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
_KEY_NUMBER = re.compile(r"^(?P<project>[A-Z][A-Z0-9_]*)-(?P<number>\d+)$")
_LOCAL_ID = re.compile(r"^L-(?P<number>\d+)$")
RESOLUTION_NOTE_LIMIT = 500
_WIDEST_WEST_OFFSET = timedelta(hours=12)

T = TypeVar("T")


class TicketSinkError(RuntimeError):
    """A ticket system call failed; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _labels(alert: Alert) -> tuple[str, ...]:
    return (alert.dedupe_label, alert.breach_label, FEEDBACK_TO_FIX_LABEL)


def _checked_label(label: str) -> str:
    if not _LABEL.match(label):
        raise ValueError(f"not a ticket label this project writes: {label!r}")
    return label


def _aware_utc(moment: datetime, what: str) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC)


# ---- the local ticket store -------------------------------------------------------------------


class LocalTicketStore:
    """Tickets as files: an index `tickets.jsonl` and one readable `<KEY>.md` per ticket, comments appended.

    Each row has an immutable `id` (`L-<n>`, store-wide; rows older than ids fall back to their key),
    `updated_at`, and a `history` of resolve and reopen events, which `resolution_events` reports.
    """

    name = "local"

    def __init__(self, root: Path, *, clock: Callable[[], datetime] = partial(datetime.now, UTC)) -> None:
        self.root = Path(root)
        self.index_path = self.root / "tickets.jsonl"
        self.clock = clock

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket's index row, in creation order."""
        if not self.index_path.exists():
            return []
        with self.index_path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def path_of(self, key: str) -> Path:
        """The markdown file of ticket `key`."""
        return self.root / f"{key}.md"

    def find_open(self, label: str) -> list[TicketRef]:
        """Open tickets carrying `label`, oldest first."""
        return [self._ref(row) for row in self._with_label(label) if row["status"] != "done"]

    def find_any(self, label: str) -> list[TicketRef]:
        """Tickets carrying `label` in any status, oldest first."""
        return [self._ref(row) for row in self._with_label(label)]

    def create(self, alert: Alert, due: date) -> TicketRef:
        """Opens ticket `<project>-<n>` with the next free number of the owner's project."""
        project = alert.owner.jira_project
        with self._locked():
            rows = self.tickets()
            key = f"{project}-{self._next_number(project, rows)}"
            created_at = self.clock().isoformat()
            body = markdown_ticket(alert, key, due)
            if alert.chart_png:
                self.path_of(key).with_suffix(".png").write_bytes(alert.chart_png)
                body += f"\n![Complaints against their 7- and 28-day means]({key}.png)\n"
            body = body.encode("utf-8")
            with self.path_of(key).open("xb") as handle:
                handle.write(body)
            row = {
                "id": f"L-{self._next_id(rows)}",
                "key": key,
                "project": project,
                "summary": ticket_summary(alert),
                "labels": list(_labels(alert)),
                "status": "open",
                "priority": alert.priority,
                "due": due.isoformat(),
                "created_at": created_at,
                "updated_at": created_at,
                "series_key": alert.series_key,
                "breach_key": alert.breach_key,
                "comments": 0,
                # Where the comments begin in the file: `has_comment` looks only there.
                "body_bytes": len(body),
                "history": [],
            }
            self._write_index([*rows, row])
        return self._ref(row)

    def has_comment(self, ticket_key: str, marker: str) -> bool:
        """Whether a comment on the ticket contains `marker`."""
        row = self._row(ticket_key, self.tickets())
        comments = self.path_of(ticket_key).read_bytes()[row["body_bytes"]:]
        return marker in comments.decode("utf-8")

    def comment(self, ticket_key: str, alert: Alert) -> None:
        """Appends the alert's evidence to the ticket file as the next comment."""
        with self._locked():
            rows = self.tickets()
            row = self._row(ticket_key, rows)
            row["comments"] += 1
            row["updated_at"] = self.clock().isoformat()
            with self.path_of(ticket_key).open("a", encoding="utf-8") as handle:
                handle.write(markdown_comment(alert, row["comments"]))
            self._write_index(rows)

    def close(self, ticket_key: str) -> None:
        """Marks the ticket done as resolved (what resolving it in Jira does)."""
        self.resolve(ticket_key, "resolved")

    def resolve(self, key: str, code: str, note: str = "", at: datetime | None = None) -> dict[str, Any]:
        """Resolves the ticket as `code` ("open" reopens it) at `at` (default now; may be past) and returns its row."""
        if code not in (*RESOLUTION_CODES, OPEN):
            raise ValueError(f"resolution code must be one of {', '.join((*RESOLUTION_CODES, OPEN))}, got {code!r}")
        recorded_at = _aware_utc(self.clock(), "clock")
        # The demo dates resolutions on simulated fix days, so `at` is rarely now.
        moment = recorded_at if at is None else _aware_utc(at, "at")
        note = " ".join(note.split())[:RESOLUTION_NOTE_LIMIT]
        resolved = code != OPEN
        event = {
            "at": moment.isoformat(),
            "recorded_at": recorded_at.isoformat(),
            "status": "done" if resolved else "open",
            "resolution": code if resolved else None,
            "code": code,
            "note": note,
        }
        with self._locked():
            rows = self.tickets()
            row = self._row(key, rows)
            row.update(
                status=event["status"],
                resolution=event["resolution"],
                resolution_note=note if resolved else "",
                resolved_at=event["at"] if resolved else None,
                updated_at=event["at"],
            )
            row.setdefault("history", []).append(event)
            with self.path_of(key).open("a", encoding="utf-8") as handle:
                handle.write(_resolution_line(event))
            self._write_index(rows)
        return row

    def resolution_events(self, since: datetime, mapping: ResolutionMapping) -> list[ResolutionEvent]:
        """Every resolve and reopen dated or recorded at or after `since`, oldest first, with the codes recorded."""
        since = _aware_utc(since, "since")
        events = []
        for row in self.tickets():
            for entry in row.get("history", []):
                at = datetime.fromisoformat(entry["at"])
                # A back-dated resolution recorded after the cursor passed its date is still news.
                recorded_at = datetime.fromisoformat(entry.get("recorded_at", entry["at"]))
                if max(at, recorded_at) < since:
                    continue
                events.append(ResolutionEvent(
                    issue_id=row.get("id") or row["key"],
                    key=row["key"],
                    updated_at=at,
                    status=entry["status"],
                    status_category="done" if entry["status"] == "done" else "new",
                    resolution=entry["resolution"],
                    code=entry["code"],
                    note=entry["note"],
                    labels=tuple(row["labels"]),
                ))
        return sorted(events, key=lambda event: (event.updated_at, event.issue_id))

    def _with_label(self, label: str) -> list[dict[str, Any]]:
        return [row for row in self.tickets() if label in row["labels"]]

    def _ref(self, row: dict[str, Any]) -> TicketRef:
        return TicketRef(row["key"], self.path_of(row["key"]).resolve().as_uri(), tuple(row["labels"]), row["status"])

    def _row(self, key: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        for row in rows:
            if row["key"] == key:
                return row
        raise TicketSinkError(f"no local ticket {key}", status=404)

    def _next_id(self, rows: list[dict[str, Any]]) -> int:
        """One past the highest local id handed out (ids live only in the index, written with their row)."""
        numbers = [int(m["number"]) for m in (_LOCAL_ID.match(row.get("id", "")) for row in rows) if m]
        return max(numbers, default=0) + 1

    def _next_number(self, project: str, rows: list[dict[str, Any]]) -> int:
        """One past the highest number the project has used, in the index or as a file."""
        keys = [row["key"] for row in rows] + [path.stem for path in self.root.glob(f"{project}-*.md")]
        numbers = [int(m["number"]) for m in map(_KEY_NUMBER.match, keys) if m and m["project"] == project]
        return max(numbers, default=0) + 1

    def _write_index(self, rows: list[dict[str, Any]]) -> None:
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=self.root, prefix=".tickets.", suffix=".tmp", delete=False
        ) as handle:
            handle.writelines(json.dumps(row, sort_keys=True) + "\n" for row in rows)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, self.index_path)

    def _locked(self) -> AbstractContextManager[None]:
        """An exclusive lock across processes, so two creates never hand out the same number."""
        return exclusive_lock(self.root / ".lock")


def _resolution_line(event: dict[str, Any]) -> str:
    """The markdown line a resolve or reopen appends to the ticket file."""
    moment = datetime.fromisoformat(event["at"]).strftime("%Y-%m-%d %H:%M UTC")
    what = "Reopened" if event["code"] == OPEN else f"Resolved as {event['code']}"
    return f"\n**{what}** on {moment}" + (f": {event['note']}" if event["note"] else "") + "\n"


# ---- Jira ---------------------------------------------------------------------------------------


class JiraTicketSink:
    """Jira over REST v2 with the `jira` client: creates and comments are sent once, reads retry 429/503."""

    name = "jira"
    COMMENT_PAGE = 100
    # `id` and `key` come with every issue; comments are not fetched.
    RESOLUTION_FIELDS = ("status", "resolution", "labels", "updated")

    def __init__(
        self,
        url: str,
        user: str,
        api_token: str,
        *,
        issue_type: str = "Task",
        read_retries: int = 3,
        max_retry_delay: float = 60.0,
        timeout: float = 30.0,
        cloud: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.issue_type = issue_type
        self._secrets = (api_token, base64.b64encode(f"{user}:{api_token}".encode()).decode())
        self._reads = self._client(user, api_token, read_retries, max_retry_delay, timeout, cloud)
        # ResilientSession retries 429, 503 and connection errors for every method, POST included:
        # a create whose answer was lost would be sent twice, so writes go through a client that never retries.
        self._writes = self._client(user, api_token, 0, max_retry_delay, timeout, cloud)

    def _client(self, user: str, token: str, retries: int, max_delay: float, timeout: float, cloud: bool) -> JIRA:
        client = JIRA(
            server=self.url, basic_auth=(user, token), get_server_info=False, max_retries=retries, timeout=timeout
        )
        # Not exposed by JIRA(); the session waits at most this long (else 2 × Retry-After) before a retry.
        client._session.max_retry_delay = max_delay
        if cloud:
            # What get_server_info would learn with an extra request: on Cloud, search_issues must call
            # /search/jql (the older /search answers 410 Gone there since 2025).
            client.deploymentType = "Cloud"
        return client

    def find_open(self, label: str) -> list[TicketRef]:
        """Open issues carrying `label`, oldest first."""
        return self._search(f'labels = "{_checked_label(label)}" AND statusCategory != Done ORDER BY created ASC')

    def find_any(self, label: str) -> list[TicketRef]:
        """Issues carrying `label` in any status, oldest first (search lags behind creates)."""
        return self._search(f'labels = "{_checked_label(label)}" ORDER BY created ASC')

    def create(self, alert: Alert, due: date) -> TicketRef:
        """Creates the issue with one POST; a lost or failed answer raises `TicketSinkError`."""
        labels = _labels(alert)
        fields = {
            "project": {"key": alert.owner.jira_project},
            "issuetype": {"name": self.issue_type},
            "summary": ticket_summary(alert),
            "description": jira_description(alert, due),
            "labels": list(labels),
            "priority": {"name": alert.priority},
            "duedate": due.isoformat(),
        }
        issue = self._call("create issue", lambda: self._writes.create_issue(fields=fields, prefetch=False))
        if alert.chart_png:
            self._attach_chart(issue.key, alert)
        return TicketRef(issue.key, self._browse(issue.key), labels, "open")

    def _attach_chart(self, key: str, alert: Alert) -> None:
        """Attaches the series chart; the ticket stands without it, so a failure is logged, not raised."""
        name = f"{short_hash(alert.breach_key)}-velocity.png"
        try:
            self._call("attach chart", lambda: self._writes.add_attachment(key, io.BytesIO(alert.chart_png), name))
        except TicketSinkError as error:
            _log.warning("could not attach the chart to %s: %s", key, error)

    def has_comment(self, ticket_key: str, marker: str) -> bool:
        """Whether any comment on the issue contains `marker` (pages through all comments)."""
        start = 0
        while True:
            page = self._call(
                "list comments",
                partial(self._reads.comments, ticket_key, start_at=start, max_results=self.COMMENT_PAGE),
            )
            if any(marker in (comment.raw.get("body") or "") for comment in page):
                return True
            if len(page) < self.COMMENT_PAGE:
                return False
            start += len(page)

    def comment(self, ticket_key: str, alert: Alert) -> None:
        """Adds the repeat breach's evidence as a comment (sent once)."""
        self._call("add comment", lambda: self._writes.add_comment(ticket_key, jira_comment(alert)))

    def resolution_events(self, since: datetime, mapping: ResolutionMapping) -> list[ResolutionEvent]:
        """Every feedback-to-fix issue updated at or after `since`, as its current state, oldest first.

        One JQL search, paged through to the end by the client (`maxResults=0` follows `nextPageToken`
        on Cloud, `startAt` on Server). JQL dates are minute-precise wall-clock times in the searching
        user's time zone, so `since` is written in the bot user's profile zone, floored to the minute,
        and the issues before `since` that the floor lets in are dropped here.
        """
        since = _aware_utc(since, "since")
        jql = (f'labels = "{FEEDBACK_TO_FIX_LABEL}" AND updated >= "{self._jql_date(since)}" '
               "ORDER BY updated ASC")
        issues = self._call(
            "search", lambda: self._reads.search_issues(jql, maxResults=0, fields=list(self.RESOLUTION_FIELDS))
        )
        events = [self._resolution_event(issue.id, issue.key, issue.raw.get("fields") or {}, mapping)
                  for issue in issues]
        return [event for event in events if event.updated_at >= since]

    def _resolution_event(
        self, issue_id: str, key: str, fields: dict[str, Any], mapping: ResolutionMapping
    ) -> ResolutionEvent:
        status = fields.get("status") or {}
        name = status.get("name") or ""
        category = (status.get("statusCategory") or {}).get("key") or "new"
        resolution = (fields.get("resolution") or {}).get("name")
        return ResolutionEvent(
            issue_id=str(issue_id),
            key=key,
            updated_at=_jira_moment(fields.get("updated"), key),
            status=name,
            status_category=category,
            resolution=resolution,
            code=code_of(category, name, resolution, mapping),
            note="",
            labels=tuple(fields.get("labels") or ()),
        )

    def _jql_date(self, since: datetime) -> str:
        """`since` as a JQL date literal that Jira reads as no later than `since`."""
        zone = self._search_zone
        if zone is None:
            # Read in an unknown zone (UTC-12 to UTC+14), this literal still begins no later than `since`.
            return (since - _WIDEST_WEST_OFFSET).strftime("%Y-%m-%d %H:%M")
        wall = since.astimezone(zone)
        if wall.replace(fold=1 - wall.fold).utcoffset() != wall.utcoffset():
            # The hour a DST change repeats names two instants, and Jira may read the later one.
            wall -= timedelta(hours=1)
        return wall.strftime("%Y-%m-%d %H:%M")

    @cached_property
    def _search_zone(self) -> ZoneInfo | None:
        """The zone Jira reads JQL dates in: the bot user's profile zone (asked once per sink), None if unknown."""
        profile = self._call("read the bot user's profile", self._reads.myself)
        name = profile.get("timeZone")
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            _log.warning("Jira user time zone %r is unknown; resolution polls widen their window by 12 hours", name)
            return None

    def _search(self, jql: str) -> list[TicketRef]:
        issues = self._call(
            "search", lambda: self._reads.search_issues(jql, maxResults=0, fields=["labels", "status", "created"])
        )
        return [self._issue_ref(issue.key, issue.raw.get("fields") or {}) for issue in issues]

    def _issue_ref(self, key: str, fields: dict[str, Any]) -> TicketRef:
        category = ((fields.get("status") or {}).get("statusCategory") or {}).get("key")
        status = "done" if category == "done" else "open"
        return TicketRef(key, self._browse(key), tuple(fields.get("labels") or ()), status)

    def _browse(self, key: str) -> str:
        return f"{self.url}/browse/{key}"

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """Runs one client call; failures become `TicketSinkError` without the response (it holds the auth header)."""
        try:
            return call()
        except JIRAError as exc:
            detail = " ".join(str(exc.text or "").split())[:300]
            message, status = f"Jira {what} failed: HTTP {exc.status_code}: {detail}", exc.status_code
        except requests.RequestException as exc:
            message, status = f"Jira {what} failed: {type(exc).__name__}", None
        for secret in self._secrets:
            message = message.replace(secret, "***")
        raise TicketSinkError(message, status)


def _jira_moment(value: Any, key: str) -> datetime:
    """Jira's `2026-12-01T10:15:30.123+0000` as an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise TicketSinkError(f"Jira search gave {key} an unreadable updated time {value!r}")
    return moment.astimezone(UTC)


# ---- the resource -------------------------------------------------------------------------------


class TicketsResource(dg.ConfigurableResource):
    """Jira when its URL, user and API token are all set; otherwise the local ticket store in `ticket_dir`."""

    ticket_dir: str
    jira_url: str | None = None
    jira_user: str | None = None
    jira_api_token: str | None = None
    issue_type: str = "Task"

    def sink(self) -> TicketSink:
        """The configured ticket system."""
        if self.jira_url and self.jira_user and self.jira_api_token:
            return JiraTicketSink(self.jira_url, self.jira_user, self.jira_api_token, issue_type=self.issue_type)
        return LocalTicketStore(Path(self.ticket_dir))
