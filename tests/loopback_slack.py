"""A loopback Slack Web API for the real `slack_sdk.WebClient`.

    with LoopbackSlack() as slack:
        client = WebClient(token=slack.token, base_url=slack.base_url)

Methods (``POST /api/<method>``, parameters from the query string, a form body or a JSON body, as
slack-sdk sends them; Slack reports errors as HTTP 200 with ``{"ok": false, "error": ...}``):

- ``chat.postMessage``: channel by id or name (``#fit-quality`` / ``fit-quality``), ``text`` and/or
  ``blocks`` (checked against Block Kit's main limits), ``thread_ts``, ``metadata``
  (``event_type`` + ``event_payload``); answers ``ok``, the channel id, ``ts`` and the message.
- ``conversations.list``: ``limit`` + ``cursor`` paging.
- ``conversations.history``: top-level messages only (thread replies live in ``conversations.replies``),
  newest first, ``oldest``/``latest``/``inclusive``, ``limit`` + ``cursor``; message metadata only with
  ``include_all_metadata``.
- ``conversations.replies``: a thread (parent first), same filters.

Auth is ``Authorization: Bearer <token>`` (``not_authed`` / ``invalid_auth`` otherwise). Faults
(`add_fault`), each consumed by the next call of its method: ``"ratelimited"`` (HTTP 429 with
``Retry-After``), ``"500"``, ``"fail_after_post"`` (the message is stored, then HTTP 500) and
``"drop_after_post"`` (the message is stored, then the connection closes without an answer).
"""

from __future__ import annotations

import base64
import copy
import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from tests.loopback_http import Drop, LoopbackServer, Reply, Request

DEFAULT_TOKEN = "loopback-bot-token"
FAULT_KINDS = frozenset({"ratelimited", "500", "fail_after_post", "drop_after_post"})
METHODS = frozenset({"chat.postMessage", "conversations.list", "conversations.history", "conversations.replies"})
BOT_USER, BOT_ID = "U0LOOPBOT", "B0LOOPBOT"


@dataclass
class _Fault:
    kind: str
    method: str
    retry_after: int


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor).decode().removeprefix("offset:"))
    except ValueError:
        raise Reply(200, {"ok": False, "error": "invalid_cursor"}) from None


def _blocks_error(blocks: Any) -> str | None:
    """Why Slack would reject these blocks (``invalid_blocks``), checking the limits alerts can hit."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "blocks must be a list of at most 50 blocks"
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            return "every block is an object with a type"
        text = (block.get("text") or {}).get("text", "")
        if block["type"] == "header" and (block["text"].get("type") != "plain_text" or len(text) > 150):
            return "a header is plain_text of at most 150 characters"
        fields = block.get("fields") or []
        if len(text) > 3000 or len(fields) > 10 or any(len(f.get("text", "")) > 2000 for f in fields):
            return "section text ≤ 3000 characters, at most 10 fields of ≤ 2000"
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            label, url = element.get("text", {}).get("text", ""), str(element.get("url", "https://"))
            if len(label) > 75 or not url.startswith(("http://", "https://")):
                return "a button has text ≤ 75 characters and an http(s) url"
    return None


class LoopbackSlack(LoopbackServer):
    """Loopback Slack Web API with channels, threads, message metadata, fault injection and a request log."""

    thread_name = "loopback-slack"

    def __init__(
        self, *, token: str = DEFAULT_TOKEN, channels: tuple[str, ...] = ("general", "fit-quality", "ops-alerts")
    ) -> None:
        super().__init__()
        self.token = token
        self._channels = {name: f"C{index:08d}" for index, name in enumerate(channels, start=1)}
        self._messages: dict[str, list[dict[str, Any]]] = {cid: [] for cid in self._channels.values()}
        self._faults: deque[_Fault] = deque()
        self._last_micros = 0

    # ---- test controls ----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The Web API root to give `WebClient(base_url=...)`."""
        return f"{self.origin}/api/"

    def add_fault(self, kind: str, *, method: str = "chat.postMessage", retry_after: int = 0) -> None:
        """Queue one fault for the next call of `method`."""
        if kind not in FAULT_KINDS or method not in METHODS:
            raise ValueError(f"unknown fault {kind!r} for method {method!r}")
        with self._lock:
            self._faults.append(_Fault(kind, method, retry_after))

    def channel_id(self, channel: str) -> str:
        """The id of a channel given by id, name or #name."""
        name = channel.removeprefix("#")
        if name in self._channels:
            return self._channels[name]
        if channel in self._messages:
            return channel
        raise KeyError(channel)

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Every message of the channel, replies included, oldest first, as stored."""
        with self._lock:
            return copy.deepcopy(self._messages[self.channel_id(channel)])

    # ---- request handling -------------------------------------------------------------------

    def respond(self, request: Request) -> tuple[int, Any, dict[str, str]]:
        method = request.path.removeprefix("/api/")
        if method not in METHODS:
            raise Reply(404, {"ok": False, "error": "unknown_method"})
        self._check_auth(request)
        params = self._params(request)
        fault = self._take_fault(method)
        if fault is not None and fault.kind == "ratelimited":
            raise Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(fault.retry_after)})
        if fault is not None and fault.kind == "500":
            raise Reply(500, {"ok": False, "error": "fatal_error"})
        if method == "chat.postMessage":
            answer = self._post(params)
            if fault is not None and fault.kind == "drop_after_post":
                raise Drop
            if fault is not None:
                raise Reply(500, {"ok": False, "error": "fatal_error"})
            return 200, answer, {}
        if method == "conversations.list":
            return 200, self._list(params), {}
        return 200, self._read(method, params), {}

    def _check_auth(self, request: Request) -> None:
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            raise Reply(200, {"ok": False, "error": "not_authed"})
        if authorization.removeprefix("Bearer ") != self.token:
            raise Reply(200, {"ok": False, "error": "invalid_auth"})

    def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = {name: values[0] for name, values in {**request.query, **request.form}.items()}
        if isinstance(request.json, dict):
            params.update(request.json)
        return params

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method:
                    self._faults.remove(fault)
                    return fault
        return None

    def _next_ts(self) -> str:
        with self._lock:
            self._last_micros = max(time.time_ns() // 1000, self._last_micros + 1)
            seconds, micros = divmod(self._last_micros, 1_000_000)
        return f"{seconds}.{micros:06d}"

    def _channel(self, params: dict[str, Any], *, by_name: bool) -> str:
        channel = str(params.get("channel") or "")
        try:
            cid = self.channel_id(channel) if by_name else channel
        except KeyError:
            cid = ""
        if cid not in self._messages:
            raise Reply(200, {"ok": False, "error": "channel_not_found"})
        return cid

    def _post(self, params: dict[str, Any]) -> dict[str, Any]:
        cid = self._channel(params, by_name=True)
        blocks, metadata = params.get("blocks"), params.get("metadata")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        if not params.get("text") and not blocks:
            raise Reply(200, {"ok": False, "error": "no_text"})
        if blocks is not None and (problem := _blocks_error(blocks)):
            raise Reply(200, {"ok": False, "error": "invalid_blocks", "errors": [problem]})
        if metadata is not None and not (
            isinstance(metadata, dict) and isinstance(metadata.get("event_type"), str)
            and isinstance(metadata.get("event_payload"), dict)
        ):
            raise Reply(200, {"ok": False, "error": "invalid_metadata_format"})
        message: dict[str, Any] = {
            "type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": params.get("text") or "",
            "ts": self._next_ts(),
        }
        if blocks is not None:
            message["blocks"] = blocks
        if metadata is not None:
            message["metadata"] = metadata
        thread_ts = params.get("thread_ts")
        with self._lock:
            if thread_ts:
                message["thread_ts"] = str(thread_ts)
                message["parent_user_id"] = BOT_USER
                for parent in self._messages[cid]:
                    if parent["ts"] == thread_ts:
                        parent.update(thread_ts=parent["ts"], latest_reply=message["ts"],
                                      reply_count=parent.get("reply_count", 0) + 1)
            self._messages[cid].append(message)
        return {"ok": True, "channel": cid, "ts": message["ts"], "message": copy.deepcopy(message)}

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        channels = [
            {"id": cid, "name": name, "is_channel": True, "is_private": False, "is_archived": False, "is_member": True}
            for name, cid in self._channels.items()
        ]
        start, limit = _offset(params.get("cursor")), int(params.get("limit") or 100)
        page, more = channels[start:start + limit], start + limit < len(channels)
        next_cursor = _cursor(start + limit) if more else ""
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": next_cursor}}

    def _read(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        cid = self._channel(params, by_name=False)
        with self._lock:
            stored = copy.deepcopy(self._messages[cid])
        if method == "conversations.history":
            messages = [m for m in reversed(stored) if m.get("thread_ts", m["ts"]) == m["ts"]]
        else:
            thread = str(params.get("ts") or "")
            if not any(m["ts"] == thread for m in stored):
                raise Reply(200, {"ok": False, "error": "thread_not_found"})
            messages = [m for m in stored if m["ts"] == thread or m.get("thread_ts") == thread]
        inclusive = _truthy(params.get("inclusive"))
        oldest, latest = float(params.get("oldest") or 0), float(params.get("latest") or "inf")
        messages = [
            m for m in messages
            if (oldest <= float(m["ts"]) <= latest if inclusive else oldest < float(m["ts"]) < latest)
        ]
        if not _truthy(params.get("include_all_metadata")):
            for message in messages:
                message.pop("metadata", None)
        start, limit = _offset(params.get("cursor")), int(params.get("limit") or 100)
        page, more = messages[start:start + limit], start + limit < len(messages)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": _cursor(start + limit) if more else ""},
        }
