"""Where alerts are announced: Slack's Web API when a bot token is configured, else an outbox file.

Each post carries its breach key (message metadata on Slack, a field in the outbox) so a retried
dispatch finds the post an earlier attempt made instead of posting twice. Slack's
conversations.history lists only thread parents, so a reply is looked up in its thread: pass the
same `thread_ts` to `find_post` as to `post`.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from feedback_assets.alerts.model import Alert, PostRef, SlackSink, TicketRef
from feedback_assets.alerts.render import slack_message

EVENT_TYPE = "feedback_to_fix_alert"
T = TypeVar("T")


class SlackSinkError(RuntimeError):
    """A Slack call failed; `error` is Slack's error code when it answered one."""

    def __init__(self, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


def _channel_name(channel: str) -> str:
    return channel.removeprefix("#")


# ---- the outbox ---------------------------------------------------------------------------------


def _micros(ts: str) -> int:
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000 + int(fraction.ljust(6, "0")[:6])


def _ts(micros: int) -> str:
    seconds, rest = divmod(micros, 1_000_000)
    return f"{seconds}.{rest:06d}"


class SlackOutbox:
    """Posts as JSON lines in a file: what the demo prints when no Slack workspace is configured."""

    name = "outbox"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def messages(self) -> list[dict[str, Any]]:
        """Every post, oldest first (a line still being written is left out)."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.endswith("\n") and line.strip()]

    def post(self, channel: str, alert: Alert, ticket: TicketRef, thread_ts: str | None = None) -> PostRef:
        """Appends the message; its `ts` is unique and increasing, like Slack's."""
        message = slack_message(alert, ticket, reply=thread_ts is not None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a+", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.seek(0)
                last = max((_micros(json.loads(line)["ts"]) for line in handle if line.strip()), default=0)
                ts = _ts(max(time.time_ns() // 1000, last + 1))
                record = {
                    "channel": _channel_name(channel),
                    "ts": ts,
                    "thread_ts": thread_ts,
                    "breach_key": alert.breach_key,
                    "text": message["text"],
                    "blocks": message["blocks"],
                    "posted_at": datetime.now(UTC).isoformat(),
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return PostRef(record["channel"], ts, thread_ts)

    def find_post(
        self, channel: str, breach_key: str, oldest: float, thread_ts: str | None = None
    ) -> PostRef | None:
        """The post for `breach_key` since `oldest`: top-level, or in thread `thread_ts` when given."""
        for record in self.messages():
            if (
                record["channel"] == _channel_name(channel)
                and record["breach_key"] == breach_key
                and record["thread_ts"] == thread_ts
                and _micros(record["ts"]) >= oldest * 1_000_000
            ):
                return PostRef(record["channel"], record["ts"], record["thread_ts"])
        return None


# ---- the Web API --------------------------------------------------------------------------------


class SlackWebApiSink:
    """Slack's Web API through slack-sdk: rate limits are retried, a post is never sent twice."""

    name = "slack"
    PAGE = 200

    def __init__(
        self, token: str, *, base_url: str | None = None, rate_limit_retries: int = 3, timeout: int = 30
    ) -> None:
        self._token = token
        options: dict[str, Any] = {"token": token, "timeout": timeout}
        if base_url:
            options["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
        self._reads = WebClient(**options)
        # slack-sdk retries only connection errors by default; a 429 is safe to retry (Slack did nothing).
        self._reads.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries))
        # A connection dropped after Slack stored the message would be re-sent: posts retry only 429s.
        self._writes = WebClient(**options)
        self._writes.retry_handlers = [RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries)]
        self._channel_ids: dict[str, str] = {}

    def post(self, channel: str, alert: Alert, ticket: TicketRef, thread_ts: str | None = None) -> PostRef:
        """Posts the alert (or a reply in `thread_ts`) with its breach key as message metadata."""
        message = slack_message(alert, ticket, reply=thread_ts is not None)
        response = self._call(
            "chat.postMessage",
            lambda: self._writes.chat_postMessage(
                channel=channel,
                text=message["text"],
                blocks=message["blocks"],
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": EVENT_TYPE, "event_payload": {"breach_key": alert.breach_key}},
            ),
        )
        return PostRef(response["channel"], response["ts"], thread_ts)

    def find_post(
        self, channel: str, breach_key: str, oldest: float, thread_ts: str | None = None
    ) -> PostRef | None:
        """The post for `breach_key` since `oldest`: in the channel's history, or in thread `thread_ts` when given."""
        channel_id = self._channel_id(channel)
        params = {
            "channel": channel_id, "oldest": f"{oldest:.6f}", "inclusive": True, "include_all_metadata": True,
            "limit": self.PAGE,
        }
        if thread_ts is None:
            pages = self._pages("conversations.history", partial(self._reads.conversations_history, **params))
        else:
            replies = partial(self._reads.conversations_replies, ts=thread_ts, **params)
            pages = self._pages("conversations.replies", replies)
        for page in pages:
            for message in page.get("messages", []):
                metadata = message.get("metadata") or {}
                is_reply = message.get("thread_ts", message["ts"]) != message["ts"]
                if (
                    metadata.get("event_type") == EVENT_TYPE
                    and (metadata.get("event_payload") or {}).get("breach_key") == breach_key
                    and is_reply == (thread_ts is not None)
                ):
                    return PostRef(channel_id, message["ts"], thread_ts)
        return None

    def _channel_id(self, channel: str) -> str:
        """A channel id, from the id itself or a (#)name looked up in conversations.list (cached)."""
        name = _channel_name(channel)
        if name not in self._channel_ids:
            listing = partial(
                self._reads.conversations_list,
                types="public_channel,private_channel", exclude_archived=True, limit=self.PAGE,
            )
            for page in self._pages("conversations.list", listing):
                self._channel_ids.update({c["name"]: c["id"] for c in page.get("channels", [])})
            self._channel_ids.update({cid: cid for cid in self._channel_ids.values()})
        if name not in self._channel_ids:
            raise SlackSinkError(f"Slack channel {channel!r} not found (is the bot a member?)", "channel_not_found")
        return self._channel_ids[name]

    def _pages(self, method: str, first: Callable[[], Any]) -> Iterator[Any]:
        """Every page of a cursor-paginated method (slack-sdk follows `next_cursor` when iterated)."""
        pages = iter(self._call(method, first))
        while True:
            page = self._call(method, lambda: next(pages, None))
            if page is None:
                return
            yield page

    def _call(self, method: str, call: Callable[[], T]) -> T:
        """Runs one client call; failures become `SlackSinkError` without the request (it holds the token)."""
        try:
            return call()
        except SlackApiError as exc:
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            message = f"Slack {method} failed: HTTP {exc.response.status_code}, error {error!r}"
        except (SlackClientError, OSError) as exc:
            error, message = None, f"Slack {method} failed: {type(exc).__name__}"
        raise SlackSinkError(message.replace(self._token, "***"), error)


# ---- the resource -------------------------------------------------------------------------------


class SlackNotifierResource(dg.ConfigurableResource):
    """Slack's Web API when `bot_token` is set (via `dg.EnvVar("SLACK_BOT_TOKEN")`), else the outbox file."""

    outbox_path: str
    bot_token: str | None = None
    base_url: str | None = None
    rate_limit_retries: int = 3

    def sink(self) -> SlackSink:
        """The configured Slack sink."""
        if self.bot_token:
            return SlackWebApiSink(self.bot_token, base_url=self.base_url, rate_limit_retries=self.rate_limit_retries)
        return SlackOutbox(Path(self.outbox_path))
