"""Slack sinks: the outbox file, and the Web API through the real slack-sdk against a loopback Slack."""

from __future__ import annotations

from datetime import date

import pytest

from feedback_assets.alerts.model import TicketRef
from resources.slack import EVENT_TYPE, SlackNotifierResource, SlackOutbox, SlackSinkError, SlackWebApiSink
from tests.alert_factory import make_alert
from tests.loopback_slack import LoopbackSlack

TICKET = TicketRef("FIT-1", "https://acme.atlassian.net/browse/FIT-1")
REPEAT = make_alert(day=date(2024, 3, 21), count=19)


# ---- the outbox ---------------------------------------------------------------------------------


@pytest.fixture
def outbox(tmp_path) -> SlackOutbox:
    return SlackOutbox(tmp_path / "slack" / "outbox.jsonl")


def test_outbox_round_trip(outbox):
    alert = make_alert()
    post = outbox.post("#fit-quality", alert, TICKET)
    reply = outbox.post(post.channel, REPEAT, TICKET, thread_ts=post.ts)

    first, second = outbox.messages()
    assert first["channel"] == "fit-quality" and first["ts"] == post.ts and first["thread_ts"] is None
    assert first["breach_key"] == alert.breach_key and first["posted_at"]
    assert first["text"].startswith("Complaint spike") and first["blocks"][0]["type"] == "header"
    assert second["thread_ts"] == post.ts and second["breach_key"] == REPEAT.breach_key
    assert outbox.find_post("fit-quality", alert.breach_key, oldest=0) == post
    assert outbox.find_post("#fit-quality", REPEAT.breach_key, oldest=0, thread_ts=post.ts) == reply


def test_outbox_find_post_matches_channel_thread_and_time(outbox):
    alert = make_alert()
    post = outbox.post("#fit-quality", alert, TICKET)
    outbox.post(post.channel, REPEAT, TICKET, thread_ts=post.ts)
    after = float(post.ts) + 1

    assert outbox.find_post("#general", alert.breach_key, oldest=0) is None
    assert outbox.find_post("#fit-quality", alert.breach_key, oldest=after) is None
    assert outbox.find_post("#fit-quality", REPEAT.breach_key, oldest=0) is None, "a reply lives in its thread"
    assert outbox.find_post("#fit-quality", alert.breach_key, oldest=float(post.ts)) == post


def test_outbox_ts_are_unique_and_increasing(outbox):
    stamps = [outbox.post("#fit-quality", make_alert(value=f"SKU-{i}"), TICKET).ts for i in range(25)]
    as_numbers = [tuple(map(int, ts.split("."))) for ts in stamps]
    assert as_numbers == sorted(set(as_numbers)) and all(len(ts.split(".")[1]) == 6 for ts in stamps)


# ---- the Web API against the loopback ----------------------------------------------------------


@pytest.fixture
def slack():
    with LoopbackSlack() as server:
        yield server


def web_sink(server: LoopbackSlack, **kwargs) -> SlackWebApiSink:
    return SlackWebApiSink(server.token, base_url=server.base_url, **kwargs)


def _posts(server: LoopbackSlack) -> list[dict]:
    return [r for r in server.requests if r["path"] == "/api/chat.postMessage"]


def test_post_sends_blocks_text_and_the_breach_key_as_metadata(slack):
    alert = make_alert()
    post = web_sink(slack).post("#fit-quality", alert, TICKET)

    [request] = _posts(slack)
    body = request["body"]
    assert body["channel"] == "#fit-quality" and body["text"].startswith("Complaint spike")
    assert body["blocks"][0]["type"] == "header" and body["unfurl_links"] is False and body["unfurl_media"] is False
    assert body["metadata"] == {"event_type": EVENT_TYPE, "event_payload": {"breach_key": alert.breach_key}}
    assert "thread_ts" not in body and request["headers"]["authorization"] == "***"
    [stored] = slack.messages("#fit-quality")
    assert post.channel == slack.channel_id("fit-quality") and post.ts == stored["ts"] and post.thread_ts is None


def test_rate_limited_post_is_retried_into_one_message(slack):
    slack.add_fault("ratelimited", retry_after=0)
    web_sink(slack).post("#fit-quality", make_alert(), TICKET)

    assert [r["status"] for r in _posts(slack)] == [429, 200]
    assert len(slack.messages("#fit-quality")) == 1


def test_rate_limit_retries_run_out(slack):
    slack.add_fault("ratelimited", retry_after=0)
    slack.add_fault("ratelimited", retry_after=0)
    with pytest.raises(SlackSinkError) as failure:
        web_sink(slack, rate_limit_retries=1).post("#fit-quality", make_alert(), TICKET)

    assert failure.value.error == "ratelimited" and [r["status"] for r in _posts(slack)] == [429, 429]
    assert slack.messages("#fit-quality") == []


def test_failed_answer_after_post_raises_and_find_post_finds_the_message(slack):
    sink, alert = web_sink(slack), make_alert()
    slack.add_fault("fail_after_post")

    with pytest.raises(SlackSinkError) as failure:
        sink.post("#fit-quality", alert, TICKET)
    found = sink.find_post("#fit-quality", alert.breach_key, oldest=0)

    assert failure.value.error == "fatal_error" and len(_posts(slack)) == 1, "a post is never re-sent"
    [stored] = slack.messages("fit-quality")
    assert found is not None and found.ts == stored["ts"] and found.channel == slack.channel_id("fit-quality")
    history = [r for r in slack.requests if r["path"] == "/api/conversations.history"]
    assert history[0]["body"]["include_all_metadata"] == ["1"] and history[0]["body"]["inclusive"] == ["1"]


def test_connection_dropped_after_post_is_not_retried(slack):
    slack.add_fault("drop_after_post")

    with pytest.raises(SlackSinkError) as failure:
        web_sink(slack).post("#fit-quality", make_alert(), TICKET)

    assert failure.value.error is None and len(_posts(slack)) == 1
    assert len(slack.messages("#fit-quality")) == 1


def test_thread_reply_carries_thread_ts_and_is_found_in_its_thread(slack):
    sink = web_sink(slack)
    parent = sink.post("#fit-quality", make_alert(), TICKET)
    reply = sink.post(parent.channel, REPEAT, TICKET, thread_ts=parent.ts)

    assert _posts(slack)[1]["body"]["thread_ts"] == parent.ts
    assert reply.thread_ts == parent.ts and slack.messages("fit-quality")[1]["thread_ts"] == parent.ts
    assert sink.find_post("#fit-quality", REPEAT.breach_key, oldest=0) is None, "history lists thread parents only"
    assert sink.find_post("#fit-quality", REPEAT.breach_key, oldest=0, thread_ts=parent.ts) == reply
    assert sink.find_post("#fit-quality", make_alert().breach_key, oldest=0, thread_ts=parent.ts) is None


def test_find_post_pages_through_history_and_respects_oldest(slack, monkeypatch):
    monkeypatch.setattr(SlackWebApiSink, "PAGE", 2)
    sink, first = web_sink(slack), make_alert(value="SKU-0")
    posts = [sink.post("#fit-quality", make_alert(value=f"SKU-{i}"), TICKET) for i in range(5)]

    assert sink.find_post("#fit-quality", first.breach_key, oldest=0) == posts[0]
    history = [r for r in slack.requests if r["path"] == "/api/conversations.history"]
    assert len(history) == 3 and "cursor" in history[2]["body"]
    assert sink.find_post("#fit-quality", first.breach_key, oldest=float(posts[1].ts)) is None


def test_channel_names_resolve_through_paginated_list_once(monkeypatch):
    monkeypatch.setattr(SlackWebApiSink, "PAGE", 2)
    channels = ("general", "random", "ops-alerts", "fit-quality", "returns")
    with LoopbackSlack(channels=channels) as server:
        sink, alert = web_sink(server), make_alert()
        post = sink.post("fit-quality", alert, TICKET)

        assert sink.find_post("#fit-quality", alert.breach_key, oldest=0) == post
        assert sink.find_post("fit-quality", alert.breach_key, oldest=0) == post
        assert sink.find_post(post.channel, alert.breach_key, oldest=0) == post
        listed = [r for r in server.requests if r["path"] == "/api/conversations.list"]
        assert len(listed) == 3, "three pages, fetched once"
        with pytest.raises(SlackSinkError) as missing:
            sink.find_post("#no-such-channel", alert.breach_key, oldest=0)
        assert missing.value.error == "channel_not_found"


def test_the_bot_token_never_appears_in_errors(slack):
    wrong = "wrong-bot-token"
    with pytest.raises(SlackSinkError) as unauthorized:
        SlackWebApiSink(wrong, base_url=slack.base_url).post("#fit-quality", make_alert(), TICKET)
    slack.add_fault("fail_after_post")
    with pytest.raises(SlackSinkError) as lost:
        web_sink(slack).post("#fit-quality", make_alert(), TICKET)

    assert unauthorized.value.error == "invalid_auth"
    for error in (unauthorized.value, lost.value):
        text = f"{error} {error!r}"
        assert slack.token not in text and wrong not in text
        assert error.__cause__ is None and error.__context__ is None, "no chained response holding the token"


def test_unknown_channel_is_an_error_slack_answers_with_http_200(slack):
    with pytest.raises(SlackSinkError) as unknown:
        web_sink(slack).post("#nowhere", make_alert(), TICKET)

    assert unknown.value.error == "channel_not_found"
    assert [r["status"] for r in _posts(slack)] == [200] and slack.messages("#fit-quality") == []


# ---- the resource -------------------------------------------------------------------------------


def test_resource_uses_the_web_api_only_with_a_token(tmp_path):
    outbox = SlackNotifierResource(outbox_path=str(tmp_path / "outbox.jsonl")).sink()
    web = SlackNotifierResource(outbox_path=str(tmp_path / "outbox.jsonl"), bot_token="test-bot-token").sink()

    assert isinstance(outbox, SlackOutbox) and outbox.path == tmp_path / "outbox.jsonl"
    assert isinstance(web, SlackWebApiSink) and web.name == "slack"
