"""A loopback Jira that speaks enough of the REST v2 contract for the real `jira` client.

    with LoopbackJira() as jira:
        client = JIRA(server=jira.url, basic_auth=(jira.user, jira.api_token), get_server_info=False)

Endpoints (all behind HTTP basic auth, 401 otherwise):

- ``POST /rest/api/2/issue``: validates project, issue type, summary, labels, priority, due date;
  answers 201 ``{id, key, self}`` with keys numbered per project (``FIT-1``, ``FIT-2``…).
- ``GET /rest/api/2/issue/{key}``, ``GET|POST /rest/api/2/issue/{key}/comment`` (``startAt``, ``maxResults``).
- ``GET /rest/api/2/field``: the field list the client reads before a search.
- ``GET /rest/api/2/myself``: the bot user's profile, with ``timeZone`` (`time_zone`, omitted when None).
- ``GET /rest/api/2/search/jql`` (Cloud, ``nextPageToken`` paging) and, for ``deployment="server"``,
  ``GET /rest/api/2/search`` (``startAt`` paging); Cloud answers the latter with 410 Gone, as Jira Cloud
  does since 2025. A page holds at most `page_size` issues whatever ``maxResults`` asks. The JQL subset:
  ``labels = "x" [AND statusCategory != Done] [AND updated >= "YYYY-MM-DD HH:MM"]
  [ORDER BY created|updated ASC|DESC]``. As in Jira, the date literal is wall-clock time in the user's
  time zone (`time_zone`; UTC when None; in the hour a DST change repeats, the later instant) and
  ``updated`` is compared truncated to the minute.

Issues carry ``updated`` (bumped by every change: create, comment, attachment, transition) and
``resolution`` (``None`` or ``{"name": ...}``); `clock` (default: now) dates creates and changes.
`transition` moves an issue to any status, category and resolution, optionally at a given ``updated``
time; `mark_done` is a transition to status Done, category done, resolution Done.

Faults (`add_fault`), each consumed by the next request on its route: ``"429"`` and ``"503"`` (with
``Retry-After``), ``"500"``, ``"502"``; ``"fail_after_create"`` (the issue is created, then the answer
is a 5xx, 500 unless `status` says otherwise: the classic lost response) and ``"drop_after_create"``
(the issue is created, then the connection closes unanswered).

Jira's search index is eventually consistent: ``search_lag`` makes a new issue invisible to its first
N searches, and ``update_lag`` makes a change invisible to the first N searches after it (they still
return the issue's previous state). Changes reach the index in order, and only the first page of a
search counts as a search (later pages read the index without aging it).
"""

from __future__ import annotations

import base64
import copy
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tests.loopback_http import Drop, LoopbackServer, Reply, Request

DEFAULT_USER = "f2f-bot@example.com"
DEFAULT_TOKEN = "loopback-api-token"
FAULT_KINDS = frozenset({"429", "500", "502", "503", "fail_after_create", "drop_after_create"})
AFTER_CREATE = frozenset({"fail_after_create", "drop_after_create"})
ROUTES = frozenset({"any", "create", "get_issue", "search", "fields", "myself", "comments", "add_comment", "attach"})
STATUS_CATEGORIES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)

_API = "/rest/api/2"
_ISSUE = re.compile(rf"^{_API}/issue/(?P<key>[^/]+)$")
_COMMENTS = re.compile(rf"^{_API}/issue/(?P<key>[^/]+)/comment$")
_ATTACHMENTS = re.compile(rf"^{_API}/issue/(?P<key>[^/]+)/attachments$")
_MULTIPART_FILE = re.compile(rb'Content-Disposition: form-data; name="file"; filename="(?P<name>[^"]+)"\r\n'
                             rb"(?:[^\r\n]+\r\n)*\r\n(?P<body>.*)\r\n--", re.DOTALL)
_JQL = re.compile(
    r'^\s*labels\s*=\s*"?(?P<label>[^"\s]+)"?'
    r"(?P<open>\s+AND\s+statusCategory\s*!=\s*\"?Done\"?)?"
    r'(?:\s+AND\s+updated\s*>=\s*"(?P<updated>[^"]*)")?'
    r"(?:\s+ORDER\s+BY\s+(?P<order>created|updated)(?:\s+(?P<direction>ASC|DESC))?)?\s*$",
    re.IGNORECASE,
)
_FIELDS = [
    {"id": field_id, "key": field_id, "name": name, "custom": False, "navigable": True, "searchable": True,
     "clauseNames": [field_id]}
    for field_id, name in [
        ("summary", "Summary"), ("description", "Description"), ("labels", "Labels"), ("status", "Status"),
        ("priority", "Priority"), ("duedate", "Due date"), ("created", "Created"), ("issuetype", "Issue Type"),
        ("project", "Project"), ("resolution", "Resolution"), ("updated", "Updated"),
    ]
]


@dataclass
class _Fault:
    kind: str
    route: str
    status: int | None
    retry_after: int


@dataclass
class _Version:
    """One state of an issue on its way into the search index: invisible to the next `hidden_for` searches."""

    snapshot: dict[str, Any]
    hidden_for: int


def _errors(messages: list[str] | None = None, errors: dict[str, str] | None = None) -> dict[str, Any]:
    return {"errorMessages": messages or [], "errors": errors or {}}


def _shaped(issue: dict[str, Any], wanted: list[str], cloud: bool) -> dict[str, Any]:
    """The issue with the requested fields; without a `fields` parameter Cloud's /search/jql returns only ids."""
    if not wanted:
        return {"id": issue["id"]} if cloud else issue
    if "*all" in wanted:
        return issue
    return {**issue, "fields": {name: issue["fields"].get(name) for name in wanted}}


def _jira_time(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _parsed_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


def _jql_date(literal: str, zone: ZoneInfo) -> datetime:
    """A JQL date literal (``YYYY-MM-DD HH:MM``, ``YYYY-MM-DD``) as wall-clock time in `zone`, the later if repeated."""
    for layout in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            wall = datetime.strptime(literal, layout)
        except ValueError:
            continue
        return wall.replace(tzinfo=zone, fold=1)
    raise Reply(400, _errors([
        f"Date value '{literal}' for field 'updated' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
        "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
    ]))


class LoopbackJira(LoopbackServer):
    """Loopback Jira REST v2 with issues, comments, a JQL subset, fault injection and a request log."""

    thread_name = "loopback-jira"

    def __init__(
        self,
        *,
        user: str = DEFAULT_USER,
        api_token: str = DEFAULT_TOKEN,
        projects: tuple[str, ...] = ("FIT", "OPS", "CX"),
        issue_types: tuple[str, ...] = ("Task", "Bug", "Story"),
        deployment: str = "cloud",
        search_lag: int = 0,
        update_lag: int = 0,
        page_size: int = 100,
        time_zone: str | None = "UTC",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        if deployment not in ("cloud", "server"):
            raise ValueError(f"deployment must be 'cloud' or 'server', got {deployment!r}")
        self.user, self.api_token = user, api_token
        self.projects, self.issue_types, self.deployment = projects, issue_types, deployment
        self.search_lag, self.update_lag, self.page_size, self.time_zone = search_lag, update_lag, page_size, time_zone
        self.clock = clock
        self._faults: deque[_Fault] = deque()
        self._issues: dict[str, dict[str, Any]] = {}
        # What the search index holds of each issue, oldest first: the state it shows, then pending ones.
        self._index: dict[str, list[_Version]] = {}
        self._attachments: dict[str, list[dict[str, Any]]] = {}
        self._counters: dict[str, int] = {}
        self._next_id = 10000

    # ---- test controls ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server URL to give `JIRA(server=...)`."""
        return self.origin

    def add_fault(self, kind: str, *, route: str = "any", status: int | None = None, retry_after: int = 0) -> None:
        """Queue one fault for the next request on `route` (the ``*_after_create`` kinds are always a create)."""
        if kind not in FAULT_KINDS or route not in ROUTES:
            raise ValueError(f"unknown fault {kind!r} on route {route!r}")
        route = "create" if kind in AFTER_CREATE else route
        with self._lock:
            self._faults.append(_Fault(kind, route, status, retry_after))

    def mark_done(self, key: str) -> None:
        """Resolve the issue (status Done, status category done, resolution Done)."""
        self.transition(key, "Done", "done", "Done")

    def transition(
        self, key: str, status: str, category: str, resolution: str | None, at: datetime | None = None
    ) -> None:
        """Move the issue to `status` in `category` with `resolution` (None clears it), updated `at` or now."""
        if category not in STATUS_CATEGORIES:
            raise ValueError(f"category must be one of {sorted(STATUS_CATEGORIES)}, got {category!r}")
        with self._lock:
            fields = self._issues[key]["fields"]
            category_field = {"key": category, "name": STATUS_CATEGORIES[category]}
            fields["status"] = {"name": status, "statusCategory": category_field}
            fields["resolution"] = None if resolution is None else {"name": resolution}
            self._changed(key, at)

    @property
    def issues(self) -> list[dict[str, Any]]:
        """Every issue as Jira would return it, in creation order."""
        with self._lock:
            return copy.deepcopy(list(self._issues.values()))

    def comments_of(self, key: str) -> list[dict[str, Any]]:
        """The issue's comments, oldest first."""
        with self._lock:
            return copy.deepcopy(self._issues[key]["fields"]["comment"]["comments"])

    # ---- request handling -------------------------------------------------------------------

    def respond(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        self._check_auth(request)
        route, key = self._route(request)
        fault = self._take_fault(route)
        if fault is not None:
            status = fault.status or (int(fault.kind) if fault.kind.isdigit() else 500)
            headers = {"Retry-After": str(fault.retry_after)} if status in (429, 503) else {}
            if fault.kind not in AFTER_CREATE:
                raise Reply(status, _errors([f"Injected {status}"]), headers)
        if route == "create":
            created = self._create(request)
            if fault is not None and fault.kind == "drop_after_create":
                raise Drop
            if fault is not None:
                raise Reply(status, _errors(["Internal server error"]), headers)
            return 201, created, {}
        if route == "get_issue":
            return 200, self._issue(key), {}
        if route == "comments":
            return 200, self._list_comments(key, request), {}
        if route == "add_comment":
            return 201, self._add_comment(key, request), {}
        if route == "fields":
            return 200, _FIELDS, {}
        if route == "myself":
            return 200, self._myself(), {}
        if route == "attach":
            return 200, self._attach(key, request), {}
        return 200, self._search(request), {}

    def _check_auth(self, request: Request) -> None:
        expected = base64.b64encode(f"{self.user}:{self.api_token}".encode()).decode()
        if request.headers.get("authorization", "") != f"Basic {expected}":
            raise Reply(401, _errors(["You are not authenticated. Authentication required to perform this operation."]))

    def _route(self, request: Request) -> tuple[str, str | None]:
        method, path = request.method, request.path
        if method == "POST" and path == f"{_API}/issue":
            return "create", None
        if method == "GET" and path == f"{_API}/field":
            return "fields", None
        if method == "GET" and path == f"{_API}/myself":
            return "myself", None
        if method == "GET" and path == f"{_API}/search/jql":
            if self.deployment != "cloud":
                raise Reply(404, _errors(["null for uri: " + path]))
            return "search", None
        if method == "GET" and path == f"{_API}/search":
            if self.deployment == "cloud":
                raise Reply(410, _errors([GONE]))
            return "search", None
        if (match := _ATTACHMENTS.match(path)) and method == "POST":
            return "attach", self._known(match["key"])
        if (match := _COMMENTS.match(path)) and method in ("GET", "POST"):
            return ("comments" if method == "GET" else "add_comment"), self._known(match["key"])
        if (match := _ISSUE.match(path)) and method == "GET":
            return "get_issue", self._known(match["key"])
        raise Reply(404, _errors([f"No route for {method} {path}"]))

    def attachments_of(self, key: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(a) for a in self._attachments.get(key, [])]

    def _attach(self, key: str, request: Request) -> list[dict[str, Any]]:
        """Jira's attachment contract: the XSRF opt-out header, one multipart `file` part, a list back."""
        if request.headers.get("x-atlassian-token") != "no-check":
            raise Reply(403, _errors(["XSRF check failed"]))
        match = _MULTIPART_FILE.search(request.raw_body)
        if match is None or not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise Reply(400, _errors(["Expected a multipart body with a 'file' part"]))
        with self._lock:
            self._next_id += 1
            attachment = {"id": str(self._next_id), "filename": match["name"].decode(), "size": len(match["body"]),
                          "mimeType": "application/octet-stream", "content": match["body"]}
            self._attachments.setdefault(key, []).append(attachment)
            self._changed(key)
        return [{k: v for k, v in attachment.items() if k != "content"}
                | {"self": f"{self.origin}{_API}/attachment/{attachment['id']}"}]

    def _known(self, key: str) -> str:
        with self._lock:
            if key in self._issues:
                return key
            for issue in self._issues.values():
                if issue["id"] == key:
                    return issue["key"]
        raise Reply(404, _errors(["Issue does not exist or you do not have permission to see it."]))

    def _take_fault(self, route: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.route in (route, "any"):
                    self._faults.remove(fault)
                    return fault
        return None

    def _create(self, request: Request) -> dict[str, Any]:
        body = request.json if isinstance(request.json, dict) else {}
        fields = body.get("fields")
        if not isinstance(fields, dict):
            raise Reply(400, _errors(["Request body must contain 'fields'."]))
        errors = self._field_errors(fields)
        if errors:
            raise Reply(400, _errors(errors=errors))
        now = self.clock()
        with self._lock:
            project = fields["project"]["key"]
            self._counters[project] = self._counters.get(project, 0) + 1
            key, issue_id = f"{project}-{self._counters[project]}", str(self._next_id)
            self._next_id += 1
            self._issues[key] = {
                "id": issue_id,
                "key": key,
                "self": f"{self.origin}{_API}/issue/{issue_id}",
                "fields": {
                    "project": {"key": project},
                    "issuetype": {"name": fields["issuetype"]["name"]},
                    "summary": fields["summary"],
                    "description": fields.get("description"),
                    "labels": list(fields.get("labels") or []),
                    "priority": fields.get("priority") or {"name": "Medium"},
                    "duedate": fields.get("duedate"),
                    "status": {"name": "To Do", "statusCategory": {"key": "new", "name": "To Do"}},
                    "resolution": None,
                    "created": _jira_time(now),
                    "updated": _jira_time(now),
                    "comment": {"comments": [], "startAt": 0, "maxResults": 0, "total": 0},
                },
            }
            self._index[key] = [_Version(copy.deepcopy(self._issues[key]), self.search_lag)]
        return {"id": issue_id, "key": key, "self": f"{self.origin}{_API}/issue/{issue_id}"}

    def _field_errors(self, fields: dict[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        known = {"project", "issuetype", "summary", "description", "labels", "priority", "duedate"}
        for name in sorted(set(fields) - known):
            errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
        if (fields.get("project") or {}).get("key") not in self.projects:
            errors["project"] = "valid project is required"
        if (fields.get("issuetype") or {}).get("name") not in self.issue_types:
            errors["issuetype"] = "Specify a valid issue type"
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            errors["summary"] = "You must specify a summary of the issue."
        elif len(summary) > 255:
            errors["summary"] = "Summary must be less than 255 characters."
        elif "\n" in summary or "\r" in summary:
            errors["summary"] = "The summary is invalid because it contains newline characters."
        if not isinstance(fields.get("description", ""), str | None):
            errors["description"] = "Operation value must be a string"
        labels = fields.get("labels", [])
        if not isinstance(labels, list) or any(not isinstance(x, str) or not x or " " in x for x in labels):
            errors["labels"] = "Labels must be non-empty strings without spaces."
        if "priority" in fields and (fields["priority"] or {}).get("name") not in PRIORITIES:
            errors["priority"] = "Specify a valid priority"
        if "duedate" in fields:
            try:
                date.fromisoformat(str(fields["duedate"]))
            except ValueError:
                errors["duedate"] = f"Error parsing date string: {fields['duedate']}"
        return errors

    def _issue(self, key: str | None) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._issues[key])

    def _list_comments(self, key: str | None, request: Request) -> dict[str, Any]:
        start, size = int(request.param("startAt", "0")), int(request.param("maxResults", "5000"))
        with self._lock:
            comments = copy.deepcopy(self._issues[key]["fields"]["comment"]["comments"])
        return {"startAt": start, "maxResults": size, "total": len(comments), "comments": comments[start:start + size]}

    def _add_comment(self, key: str | None, request: Request) -> dict[str, Any]:
        body = (request.json or {}).get("body") if isinstance(request.json, dict) else None
        if not isinstance(body, str) or not body.strip():
            raise Reply(400, _errors(errors={"comment": "Comment body can not be empty!"}))
        now = _jira_time(self.clock())
        with self._lock:
            thread = self._issues[key]["fields"]["comment"]
            comment_id = str(self._next_id)
            self._next_id += 1
            comment = {
                "id": comment_id,
                "self": f"{self.origin}{_API}/issue/{key}/comment/{comment_id}",
                "author": {"emailAddress": self.user, "displayName": "Feedback-to-Fix"},
                "body": body,
                "created": now,
                "updated": now,
            }
            thread["comments"].append(comment)
            thread["total"] = thread["maxResults"] = len(thread["comments"])
            self._changed(key)
        return copy.deepcopy(comment)

    def _myself(self) -> dict[str, Any]:
        profile = {"self": f"{self.origin}{_API}/myself", "accountId": "loopback-bot", "emailAddress": self.user,
                   "displayName": "Feedback-to-Fix", "active": True}
        return profile if self.time_zone is None else {**profile, "timeZone": self.time_zone}

    def _changed(self, key: str, at: datetime | None = None) -> None:
        """Bumps `updated` and queues the new state for the index (after any state still pending). Holds the lock."""
        issue = self._issues[key]
        issue["fields"]["updated"] = _jira_time(at or self.clock())
        versions = self._index[key]
        versions.append(_Version(copy.deepcopy(issue), max(self.update_lag, versions[-1].hidden_for)))

    def _indexed(self, key: str, *, age: bool) -> dict[str, Any] | None:
        """The issue as the search index has it (None before it is indexed); `age` counts a search. Holds the lock."""
        versions = self._index[key]
        visible = [version for version in versions if version.hidden_for == 0]
        if age:
            for version in versions:
                version.hidden_for = max(0, version.hidden_for - 1)
        if not visible:
            return None
        del versions[: versions.index(visible[-1])]
        return visible[-1].snapshot

    def _search(self, request: Request) -> dict[str, Any]:
        match = _JQL.match(request.param("jql", "") or "")
        if match is None:
            raise Reply(400, _errors([f"Error in the JQL Query: unsupported query {request.param('jql')!r}"]))
        zone = ZoneInfo(self.time_zone or "UTC")
        updated_from = None if match["updated"] is None else _jql_date(match["updated"], zone)
        wanted = [f for value in request.query.get("fields", []) for f in value.split(",") if f]
        cloud = request.path.endswith("/jql")
        token = request.param("nextPageToken") if cloud else request.param("startAt", "0")
        start = int(token or 0)
        with self._lock:
            found = []
            for key in self._issues:
                issue = self._indexed(key, age=start == 0)
                if issue is None:
                    continue
                fields = issue["fields"]
                if match["label"] not in fields["labels"]:
                    continue
                if match["open"] and fields["status"]["statusCategory"]["key"] == "done":
                    continue
                minute = _parsed_time(fields["updated"]).replace(second=0, microsecond=0)
                if updated_from is not None and minute < updated_from:
                    continue
                found.append(copy.deepcopy(issue))
        order = match["order"] or "created"
        found.sort(key=lambda issue: _parsed_time(issue["fields"][order]),
                   reverse=(match["direction"] or "").upper() == "DESC")
        issues = [_shaped(issue, wanted, cloud) for issue in found]
        size = min(int(request.param("maxResults", "50") or 50), self.page_size)
        if cloud:
            page = {"issues": issues[start:start + size], "isLast": start + size >= len(issues)}
            if not page["isLast"]:
                page["nextPageToken"] = str(start + size)
            return page
        return {"startAt": start, "maxResults": size, "total": len(issues), "issues": issues[start:start + size]}
