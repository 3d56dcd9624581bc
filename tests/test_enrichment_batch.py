"""The Batch API classifier against the loopback: the realtime rows at half the price, rounds that lose nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from feedback_assets.enrichment.batch import BatchClassifier, BatchSettings, custom_id, pack_lines
from feedback_assets.enrichment.llm import LLMConnection, LLMSettings, Usage, client_factory
from feedback_assets.enrichment.models import FeedbackItem
from tests.loopback_openai import LoopbackOpenAI
from tests.test_enrichment_llm import (
    PROMPT,
    TAXONOMY,
    classification_responder,
    classifier,
    feedback,
    items_in,
    loopback_env,
    result_for,
)


class Ticks:
    """A clock that moves `step` seconds every time it is read, so waiting needs no wall-clock time."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def batch_classifier(server: LoopbackOpenAI, *, azure: bool = False, max_rounds: int = 3, max_wait_s: float = 3600.0,
                     clock: Callable[[], float] | None = None, **settings) -> BatchClassifier:
    env = loopback_env(server, azure)
    connection = LLMConnection.from_env(env)
    return BatchClassifier(
        client_factory(connection, env, timeout_s=10, max_retries=1), TAXONOMY, PROMPT,
        LLMSettings(model=connection.model, **settings), backend="azure_openai" if azure else "openai",
        batch_settings=BatchSettings(poll_interval_s=0, max_wait_s=max_wait_s, max_rounds=max_rounds),
        **({"clock": clock} if clock else {}),
    )


def without_time(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key != "classified_at"} for row in rows]


def input_lines(server: LoopbackOpenAI, batch_number: int) -> list[dict]:
    batch = server.batches[batch_number]
    return [json.loads(line) for line in server.file_content(batch["input_file_id"]).splitlines()]


def asked_ids(line: dict) -> list[str]:
    return [item["id"] for item in items_in(line["body"])]


def assert_every_item_once(results: list[dict], items: list[FeedbackItem]) -> None:
    assert [r["id"] for r in results] == [i.id for i in items]


def test_a_batch_round_trip_gives_the_realtime_rows_from_one_upload_and_one_batch():
    items = feedback(10)
    with LoopbackOpenAI(classification_responder) as realtime_server:
        realtime = classifier(realtime_server, batch_size=4).classify(items)
        realtime_bodies = [r["body"] for r in realtime_server.requests]
    with LoopbackOpenAI(classification_responder) as server:
        results = batch_classifier(server, batch_size=4).classify(items)
        [batch] = server.batches
        lines = input_lines(server, 0)
        answered_order = [json.loads(line)["custom_id"] for line in server.file_content(batch["output_file_id"]).splitlines()]
        counts = server.file_uploads, server.batches_created, server.batch_lines, server.calls
    assert without_time(results) == without_time(realtime)
    assert counts == (1, 1, 3, 0)  # one upload, one batch of three lines, no realtime call
    assert sorted(json.dumps(line["body"], sort_keys=True) for line in lines) == \
        sorted(json.dumps(body, sort_keys=True) for body in realtime_bodies)
    assert all(line["method"] == "POST" and line["url"] == "/v1/chat/completions" for line in lines)
    assert all(re.fullmatch(r"r1-b\d-[0-9a-f]{12}", line["custom_id"]) for line in lines)
    assert answered_order != [line["custom_id"] for line in lines]  # mapped back although shuffled
    assert batch["endpoint"] == "/v1/chat/completions" and batch["completion_window"] == "24h"


@pytest.mark.parametrize("fault", ["500", "malformed", "truncated"])
def test_the_items_of_a_failed_line_are_split_and_resubmitted_in_a_second_batch(fault):
    items = feedback(8)
    with LoopbackOpenAI(classification_responder, batch_line_faults=["ok", fault]) as server:
        llm = batch_classifier(server, batch_size=4)
        results = llm.classify(items)
        second = [asked_ids(line) for line in input_lines(server, 1)]
        batches = server.batches_created
    assert_every_item_once(results, items)
    assert not any(r.get("error") for r in results)
    assert batches == 2 and sorted(second) == [["f4", "f5"], ["f6", "f7"]]
    assert llm.usage.batch_rounds == 2 and llm.usage.batches_created == 2
    assert llm.usage.failed_calls + llm.usage.invalid_responses == 1


def test_an_expired_batch_keeps_its_completed_lines_and_resubmits_only_the_rest():
    items = feedback(12)
    with LoopbackOpenAI(classification_responder, batch_outcomes=["expire:1"]) as server:
        results = batch_classifier(server, batch_size=4).classify(items)
        first, second = input_lines(server, 0), input_lines(server, 1)
        statuses = [b["status"] for b in server.batches]
        lines_run = server.batch_lines
    assert statuses == ["expired", "completed"]
    assert_every_item_once(results, items)
    assert not any(r.get("error") for r in results)
    assert sorted(asked_ids(line) for line in second) == [asked_ids(line) for line in first[1:]]  # unchanged, not split
    assert lines_run == 3  # the line that completed is not asked again


def test_a_batch_that_fails_is_resubmitted_once_then_its_items_are_dead_letters():
    items = feedback(6)
    with LoopbackOpenAI(classification_responder, batch_outcomes=["fail", "fail", "complete"]) as server:
        llm = batch_classifier(server, batch_size=4, max_rounds=3)
        results = llm.classify(items)
        batches = server.batches_created
    assert batches == 2
    assert_every_item_once(results, items)
    assert {r["error"] for r in results} == {"batch failed twice (invalid_request)"}
    assert all(r["needs_review"] and r["primary_label"] is None for r in results)


def test_a_batch_that_keeps_expiring_ends_as_dead_letters_after_max_rounds_and_nothing_is_doubled():
    items = feedback(12)
    with LoopbackOpenAI(classification_responder, batch_outcomes=["expire:1", "expire"]) as server:
        results = batch_classifier(server, batch_size=4, max_rounds=2).classify(items)
        batches = server.batches_created
    assert batches == 2
    assert_every_item_once(results, items)
    classified = [r["id"] for r in results if not r.get("error")]
    failed = {r["id"]: r["error"] for r in results if r.get("error")}
    assert classified == ["f0", "f1", "f2", "f3"]
    assert set(failed) == {f"f{i}" for i in range(4, 12)} and set(failed.values()) == {"batch expired twice"}


def test_lines_for_unknown_custom_ids_are_ignored_and_counted_and_their_requests_asked_again():
    items = feedback(4)
    with LoopbackOpenAI(classification_responder, batch_line_faults=["foreign"]) as server:
        llm = batch_classifier(server, batch_size=4)
        results = llm.classify(items)
    assert not any(r.get("error") for r in results)
    assert llm.usage.unknown_batch_lines == 1 and llm.usage.batches_created == 2


def test_a_label_outside_the_enum_in_a_batch_answer_is_refused_as_in_realtime():
    def invents_a_label_for_f0(request: dict) -> str:
        return json.dumps({"items": [result_for(item, "escalate_to_ceo" if item["id"] == "f0" else None)
                                     for item in items_in(request)]})

    items = feedback(4)
    with LoopbackOpenAI(invents_a_label_for_f0) as server:
        realtime = classifier(server, batch_size=4).classify(items)
    with LoopbackOpenAI(invents_a_label_for_f0) as server:
        llm = batch_classifier(server, batch_size=4, max_rounds=2)
        results = llm.classify(items)
    assert results[0]["error"] == realtime[0]["error"]
    assert results[0]["error"].startswith("invalid answer: labels.0.label:") and results[0]["primary_label"] is None
    assert all(r["primary_label"] in TAXONOMY.labels for r in results[1:])
    assert llm.usage.invalid_items == 2  # once per round


def test_the_batch_costs_half_of_realtime_for_the_same_token_usage():
    items = feedback(10)
    with LoopbackOpenAI(classification_responder) as server:
        realtime = classifier(server, batch_size=4)
        realtime.classify(items)
    with LoopbackOpenAI(classification_responder) as server:
        batch = batch_classifier(server, batch_size=4)
        batch.classify(items)
    tokens = lambda usage: (usage.calls, usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens)  # noqa: E731
    assert tokens(batch.usage) == tokens(realtime.usage) and batch.usage.cached_tokens > 0
    assert batch.usage.batch_prompt_tokens == batch.usage.prompt_tokens
    assert batch.usage.cost_usd("gpt-4o-mini") == pytest.approx(realtime.usage.cost_usd("gpt-4o-mini") / 2)


def test_only_the_batch_share_of_the_tokens_is_priced_at_half():
    usage = Usage(prompt_tokens=3_000_000, cached_tokens=1_000_000, completion_tokens=1_000_000,
                  batch_prompt_tokens=2_000_000, batch_cached_tokens=1_000_000, batch_completion_tokens=0)
    realtime_part = 1 * 0.15 + 1 * 0.60  # 1M uncached prompt and 1M completion tokens, gpt-4o-mini prices
    batch_part = (1 * 0.15 + 1 * 0.075) / 2  # 1M uncached and 1M cached prompt tokens, at half
    assert usage.cost_usd("gpt-4o-mini") == pytest.approx(realtime_part + batch_part)


def test_the_max_wait_cancels_a_stuck_batch_and_resubmits_its_items():
    items = feedback(4)
    with LoopbackOpenAI(classification_responder, batch_outcomes=["stuck"]) as server:
        results = batch_classifier(server, batch_size=4, max_wait_s=60, clock=Ticks(10)).classify(items)
        cancels = [r["path"] for r in server.requests if r["path"].endswith("/cancel")]
        stuck_id = server.batches[0]["id"]
        statuses = [b["status"] for b in server.batches]
    assert cancels == [f"/v1/batches/{stuck_id}/cancel"]
    assert statuses == ["cancelled", "completed"]
    assert not any(r.get("error") for r in results)


def test_a_batch_stuck_in_the_last_round_leaves_dead_letters_that_name_the_max_wait():
    items = feedback(3)
    with LoopbackOpenAI(classification_responder, batch_outcomes=["stuck"]) as server:
        results = batch_classifier(server, batch_size=4, max_rounds=1, max_wait_s=60, clock=Ticks(10)).classify(items)
    assert {r["error"] for r in results} == {"batch cancelled once (not finished within the 60 s max wait)"}


def test_azure_batch_lines_use_the_deployment_and_the_chat_completions_url():
    items = feedback(3)
    with LoopbackOpenAI(classification_responder) as server:
        results = batch_classifier(server, azure=True, batch_size=8).classify(items)
        [line] = input_lines(server, 0)
        [batch] = server.batches
        paths = [r["path"] for r in server.requests]
    assert line["url"] == "/chat/completions" and line["body"]["model"] == "feedback-gpt4o-mini"
    assert batch["endpoint"] == "/chat/completions"
    assert paths[:2] == ["/openai/files?api-version=2024-10-21", "/openai/batches?api-version=2024-10-21"]
    assert not any(r.get("error") for r in results) and {r["backend"] for r in results} == {"azure_openai"}


def test_a_model_that_ignores_structured_output_trips_the_breaker_after_the_first_round():
    items = [FeedbackItem(f"f{i}", f"Complaint number {i} about a late parcel.") for i in range(80)]
    with LoopbackOpenAI(lambda request: "Sure! Here are the classifications you asked for: ...") as server:
        llm = batch_classifier(server, batch_size=8)
        results = llm.classify(items)
        batches = server.batches_created
    assert batches == 1
    assert "circuit breaker" in llm.usage.circuit_breaker and "structured output" in llm.usage.circuit_breaker
    assert {r["error"] for r in results} == {llm.usage.circuit_breaker}


def test_a_refused_upload_ends_the_run_with_dead_letters_that_name_the_http_status():
    items = feedback(4)
    with LoopbackOpenAI(classification_responder, api_key="another-key") as server:
        llm = batch_classifier(server, batch_size=4)
        results = llm.classify(items)
        uploads = [r for r in server.requests if r["path"] == "/v1/files"]
    assert len(uploads) == 1  # a permanent refusal is not retried round after round
    assert {r["error"] for r in results} == {"batch API call failed: HTTP 401"}


def test_custom_ids_are_deterministic_unique_per_round_and_free_of_item_text():
    request = (FeedbackItem("secret-customer-id", "my card number"), FeedbackItem("f2", "late"))
    assert custom_id(1, 0, request) == custom_id(1, 0, request)
    assert len({custom_id(1, 0, request), custom_id(2, 0, request), custom_id(1, 1, request),
                custom_id(1, 0, request[:1])}) == 4
    assert "secret" not in custom_id(1, 0, request) and "card" not in custom_id(1, 0, request)


def test_lines_are_packed_into_files_under_the_line_and_byte_limits():
    assert pack_lines([5, 5, 5, 5], max_lines=3, max_bytes=100) == [range(0, 3), range(3, 4)]
    assert pack_lines([5, 5, 5, 5], max_lines=10, max_bytes=12) == [range(0, 2), range(2, 4)]
    assert pack_lines([50, 5], max_lines=10, max_bytes=12) == [range(0, 1), range(1, 2)]  # an oversized line goes alone
    assert pack_lines([], max_lines=3, max_bytes=100) == []
