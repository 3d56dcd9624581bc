"""The loopback server speaks the Chat Completions contract to the real `openai` SDK.

Covers OpenAI / AsyncOpenAI / AzureOpenAI / AsyncAzureOpenAI, structured outputs, the SDK's own
retries (429 + Retry-After, 5xx), client timeouts, malformed/truncated content, usage accounting,
rate limits, seeded random faults and auth failures; and the Files and Batches endpoints: uploads,
batch progress, per-line faults, expiry, failure, cancellation and the Azure paths.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from enum import Enum
from typing import Any

import openai
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI, AzureOpenAI, OpenAI
from pydantic import BaseModel, Field

from tests.loopback_openai import (
    MALFORMED_CONTENT,
    LoopbackOpenAI,
    echo_schema_responder,
    minimal_json_instance,
)

MODEL = "gpt-4o-mini"
API_VERSION = "2024-10-21"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["bug", "praise", "question"]},
        "score": {"type": "number"},
        "count": {"type": "integer"},
        "urgent": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["label", "score", "count", "urgent", "tags", "note"],
    "additionalProperties": False,
}
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "triage", "strict": True, "schema": SCHEMA},
}
EXPECTED = {"label": "bug", "score": 0, "count": 0, "urgent": False, "tags": [], "note": ""}


def messages(system: str = "You triage feedback.", user: str = "The checkout button is broken.") -> list[dict]:
    """A system + user prompt."""
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@pytest.fixture
def server() -> Iterator[LoopbackOpenAI]:
    """A fresh loopback server per test."""
    with LoopbackOpenAI() as srv:
        yield srv


def sync_client(server: LoopbackOpenAI, **kwargs: Any) -> OpenAI:
    """An `OpenAI` client pointed at the loopback server."""
    return OpenAI(api_key=server.api_key, base_url=server.base_url, **kwargs)


def create(client: OpenAI, **kwargs: Any):
    """One structured-output chat completion."""
    params: dict[str, Any] = {"model": MODEL, "messages": messages(), "response_format": RESPONSE_FORMAT}
    return client.chat.completions.create(**(params | kwargs))


def test_sync_client_happy_path_with_json_schema(server):
    with sync_client(server) as client:
        completion = create(client, temperature=0.0)

    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert json.loads(choice.message.content) == EXPECTED
    assert server.calls == 1

    [entry] = server.requests
    assert entry["path"] == "/v1/chat/completions" and entry["status"] == 200 and entry["fault"] == "ok"
    assert entry["headers"]["authorization"] == "***"
    assert entry["body"]["response_format"] == RESPONSE_FORMAT and entry["body"]["temperature"] == 0.0


def test_parse_with_pydantic_model_round_trips(server):
    class Kind(str, Enum):
        bug = "bug"
        praise = "praise"

    class Evidence(BaseModel):
        quote: str
        weight: int = Field(ge=1)

    class Triage(BaseModel):
        kind: Kind
        evidence: list[Evidence]
        owner: str | None

    with sync_client(server) as client:
        completion = client.chat.completions.parse(model=MODEL, messages=messages(), response_format=Triage)

    parsed = completion.choices[0].message.parsed
    assert parsed == Triage(kind=Kind.bug, evidence=[], owner="")
    assert "$defs" in server.requests[0]["body"]["response_format"]["json_schema"]["schema"]


def test_async_clients_openai_and_azure(server):
    async def run() -> list[Any]:
        async with (
            AsyncOpenAI(api_key=server.api_key, base_url=server.base_url) as oai,
            AsyncAzureOpenAI(
                api_key=server.api_key,
                azure_endpoint=server.azure_endpoint,
                api_version=API_VERSION,
                azure_deployment=MODEL,
            ) as azure,
        ):
            params = {"model": MODEL, "messages": messages(), "response_format": RESPONSE_FORMAT}
            return await asyncio.gather(
                *(oai.chat.completions.create(**params) for _ in range(3)),
                azure.chat.completions.create(**params),
            )

    results = asyncio.run(run())
    assert [json.loads(r.choices[0].message.content) for r in results] == [EXPECTED] * 4
    assert server.calls == 4
    paths = sorted(entry["path"] for entry in server.requests)
    assert paths.count("/v1/chat/completions") == 3
    assert f"/openai/deployments/{MODEL}/chat/completions?api-version={API_VERSION}" in paths


def test_azure_client_hits_the_deployment_path(server):
    with AzureOpenAI(
        api_key=server.api_key, azure_endpoint=server.azure_endpoint, api_version=API_VERSION, azure_deployment=MODEL
    ) as client:
        completion = client.chat.completions.create(model=MODEL, messages=messages(), response_format=RESPONSE_FORMAT)

    assert json.loads(completion.choices[0].message.content) == EXPECTED
    [entry] = server.requests
    assert entry["path"] == f"/openai/deployments/{MODEL}/chat/completions?api-version={API_VERSION}"
    assert entry["headers"]["api-key"] == "***" and "authorization" not in entry["headers"]


def test_forced_429_is_retried_after_retry_after(server):
    server.faults = ["429"]
    with sync_client(server, max_retries=2) as client:
        started = time.monotonic()
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=messages(), response_format=RESPONSE_FORMAT
        )
        elapsed = time.monotonic() - started

    assert json.loads(raw.parse().choices[0].message.content) == EXPECTED
    assert elapsed >= 0.9, "the SDK waits Retry-After: 1 before retrying"
    log = server.requests
    assert [(e["status"], e["fault"]) for e in log] == [(429, "429"), (200, "ok")]
    assert [e["headers"]["x-stainless-retry-count"] for e in log] == ["0", "1"]
    assert server.calls == 1 and server.faults == []


def test_forced_429_error_shape_without_retries(server):
    server.add_faults("429")
    with sync_client(server, max_retries=0) as client, pytest.raises(openai.RateLimitError) as caught:
        create(client)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.body["type"] == "rate_limit_error" and caught.value.body["code"] == "rate_limit_exceeded"


def test_500_then_ok_via_sdk_retry(server):
    server.faults = ["500", "ok"]
    with sync_client(server, max_retries=2) as client:
        completion = create(client)

    assert json.loads(completion.choices[0].message.content) == EXPECTED
    assert [(e["status"], e["fault"]) for e in server.requests] == [(500, "500"), (200, "ok")]
    assert server.calls == 1


def test_503_surfaces_when_retries_are_disabled(server):
    server.faults = ["503"]
    with sync_client(server, max_retries=0) as client, pytest.raises(openai.InternalServerError) as caught:
        create(client)
    assert caught.value.status_code == 503 and server.calls == 0


def test_timeout_raises_api_timeout_error(server):
    server.faults = ["timeout"]  # server stalls timeout_sleep_s (default 5 s); close() aborts it
    with sync_client(server, timeout=0.5, max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError):
            create(client)
        assert time.monotonic() - started < 2
        # The threaded server still answers other requests while one is stalled.
        assert json.loads(create(client).choices[0].message.content) == EXPECTED

    stalled = server.requests[0]
    assert stalled["fault"] == "timeout" and stalled["status"] is None


def test_malformed_and_truncated_content(server):
    server.faults = ["malformed", "truncated"]
    full = echo_schema_responder({"response_format": RESPONSE_FORMAT})
    with sync_client(server, max_retries=0) as client:
        malformed = create(client).choices[0]
        truncated = create(client).choices[0]

    assert malformed.message.content == MALFORMED_CONTENT and malformed.finish_reason == "stop"
    assert truncated.finish_reason == "length"
    assert full.startswith(truncated.message.content) and len(truncated.message.content) < len(full)
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.message.content)
    assert server.calls == 2


def test_usage_estimates_and_prompt_cache(server):
    system = "You triage e-commerce customer feedback into owned fixes. " * 4
    with sync_client(server) as client:
        first = create(client, messages=messages(system=system, user="a" * 40))
        second = create(client, messages=messages(system=system, user="b" * 40))
        third = create(client, messages=messages(system="Different prompt.", user="c"))

    usage = first.usage
    assert usage.prompt_tokens == (len(system) + 40) // 4
    assert usage.completion_tokens == len(first.choices[0].message.content) // 4
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert second.usage.prompt_tokens_details.cached_tokens == len(system) // 4
    assert third.usage.prompt_tokens_details.cached_tokens == 0


def test_rpm_limit_429_with_headers(server):
    server.rpm_limit = 1
    with sync_client(server, max_retries=0) as client:
        ok = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages())
        with pytest.raises(openai.RateLimitError) as caught:
            create(client)

    assert ok.headers["x-ratelimit-limit-requests"] == "1" and ok.headers["x-ratelimit-remaining-requests"] == "0"
    headers = caught.value.response.headers
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert caught.value.body["code"] == "rate_limit_exceeded"
    assert [(e["status"], e["fault"]) for e in server.requests] == [(200, "ok"), (429, "rpm_limit")]


def test_rpm_limit_window_slides_and_sdk_retry_succeeds():
    with LoopbackOpenAI(rpm_limit=1, rate_window_s=0.5) as server, sync_client(server, max_retries=2) as client:
        create(client)
        create(client)  # 429 Retry-After: 1, then admitted once the 0.5 s window slid
    assert [e["status"] for e in server.requests] == [200, 429, 200]
    assert server.calls == 2


def test_tpm_limit(server):
    server.tpm_limit = 50
    with sync_client(server, max_retries=0) as client:
        create(client, messages=messages(user="x" * 100))  # ~35 tokens
        with pytest.raises(openai.RateLimitError) as caught:
            create(client, messages=messages(user="x" * 100))

    assert caught.value.response.headers["x-ratelimit-limit-tokens"] == "50"
    assert server.requests[-1]["fault"] == "tpm_limit"


def test_seeded_random_faults_are_reproducible():
    def fault_sequence() -> list[str]:
        with (
            LoopbackOpenAI(fault_rate=0.5, fault_kinds=["503", "malformed"], seed=7) as srv,
            sync_client(srv, max_retries=0) as client,
        ):
            for _ in range(12):
                try:
                    create(client)
                except openai.InternalServerError:
                    pass
            return [entry["fault"] for entry in srv.requests]

    first = fault_sequence()
    assert first == fault_sequence()
    assert {"ok", "503", "malformed"} <= set(first)


def test_custom_responder_and_runtime_changes(server):
    seen: list[dict] = []

    def responder(request: dict) -> str:
        seen.append(request)
        return json.dumps({"echo": request["messages"][-1]["content"]})

    server.responder = responder
    server.latency_s = 0.05
    with sync_client(server) as client:
        completion = client.chat.completions.create(model=MODEL, messages=messages(user="hello"))
    assert json.loads(completion.choices[0].message.content) == {"echo": "hello"}
    assert seen[0]["model"] == MODEL
    with pytest.raises(ValueError):
        server.faults = ["boom"]


def test_responder_failure_is_a_non_retryable_500(server):
    def broken(request: dict) -> str:
        raise RuntimeError("bad prompt")

    server.responder = broken
    with sync_client(server, max_retries=2) as client, pytest.raises(openai.InternalServerError) as caught:
        create(client)
    assert "bad prompt" in caught.value.message
    assert len(server.requests) == 1


def test_auth_failures(server):
    with OpenAI(api_key="sk-wrong-key-123456", base_url=server.base_url, max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            create(client)
    assert caught.value.status_code == 401 and caught.value.body["code"] == "invalid_api_key"

    with AzureOpenAI(
        api_key="wrong", azure_endpoint=server.azure_endpoint, api_version=API_VERSION, azure_deployment=MODEL,
        max_retries=0,
    ) as azure, pytest.raises(openai.AuthenticationError):
        azure.chat.completions.create(model=MODEL, messages=messages())

    assert [e["status"] for e in server.requests] == [401, 401]
    assert all(e["fault"] is None for e in server.requests)
    assert server.calls == 0


def test_minimal_json_instance_walks_refs_and_constraints():
    schema = {
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"n": {"type": "integer", "minimum": 3}, "at": {"type": "string", "format": "date"}},
                "required": ["n", "at"],
            }
        },
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 2},
            "maybe": {"anyOf": [{"$ref": "#/$defs/Item"}, {"type": "null"}]},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "flag": {"type": ["boolean", "null"]},
            "fixed": {"const": "v1"},
            "optional": {"type": "string"},
        },
        "required": ["items", "maybe", "ratio", "flag", "fixed"],
    }
    item = {"n": 3, "at": "1970-01-01"}
    expected = {"items": [item, item], "maybe": item, "ratio": 1, "flag": False, "fixed": "v1"}
    assert minimal_json_instance(schema) == expected
    assert echo_schema_responder({"response_format": {"type": "json_object"}}) == "{}"
    assert echo_schema_responder({}) == "ok"


# ---- Files and Batches ------------------------------------------------------------------------


def batch_input(count: int, url: str = "/v1/chat/completions", model: str = MODEL) -> bytes:
    """A batch input file of `count` structured-output requests, custom_ids c0, c1, ..."""
    lines = [{"custom_id": f"c{i}", "method": "POST", "url": url,
              "body": {"model": model, "messages": messages(user=f"request {i}"), "response_format": RESPONSE_FORMAT}}
             for i in range(count)]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def run_batch(client: OpenAI, content: bytes, endpoint: str = "/v1/chat/completions") -> tuple[list[str], Any]:
    """Upload, create and poll a batch to its end: the statuses seen, and the final batch."""
    upload = client.files.create(file=("input.jsonl", content), purpose="batch")
    batch = client.batches.create(input_file_id=upload.id, endpoint=endpoint, completion_window="24h")
    statuses = [batch.status]
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        batch = client.batches.retrieve(batch.id)
        statuses.append(batch.status)
    return statuses, batch


def file_lines(client: OpenAI, file_id: str | None) -> list[dict]:
    return [json.loads(line) for line in client.files.content(file_id).content.splitlines()] if file_id else []


def test_an_uploaded_file_can_be_retrieved_and_downloaded(server):
    content = batch_input(2)
    with sync_client(server) as client:
        upload = client.files.create(file=("input.jsonl", content), purpose="batch")
        retrieved = client.files.retrieve(upload.id)
        downloaded = client.files.content(upload.id).content
        with pytest.raises(openai.NotFoundError):
            client.files.retrieve("file-missing")

    assert upload.object == "file" and upload.purpose == "batch" and upload.status == "processed"
    assert upload.bytes == len(content) and upload.filename == "input.jsonl" and retrieved.id == upload.id
    assert downloaded == content == server.file_content(upload.id)
    assert server.file_uploads == 1 and server.calls == 0


def test_a_batch_advances_to_completed_and_the_responder_answers_each_line_with_its_body(server):
    seen: list[dict] = []

    def responder(request: dict) -> str:
        seen.append(request)
        return json.dumps({"echo": request["messages"][-1]["content"]})

    server.responder = responder
    content = batch_input(4)
    with sync_client(server) as client:
        statuses, batch = run_batch(client, content)
        output = file_lines(client, batch.output_file_id)

    assert statuses == ["validating", "in_progress", "completed"]
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (4, 4, 0)
    assert batch.error_file_id is None and batch.endpoint == "/v1/chat/completions"
    sent = [json.loads(line)["body"] for line in content.splitlines()]
    assert seen == sent  # the body of each line, exactly as realtime would get it
    assert [line["custom_id"] for line in output] != ["c0", "c1", "c2", "c3"]  # shuffled
    by_id = {line["custom_id"]: line["response"] for line in output}
    assert sorted(by_id) == ["c0", "c1", "c2", "c3"] and {r["status_code"] for r in by_id.values()} == {200}
    body = by_id["c2"]["body"]
    assert body["object"] == "chat.completion" and json.loads(body["choices"][0]["message"]["content"]) == {
        "echo": "request 2"}
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] > 0
    assert server.calls == 0 and server.batch_lines == 4 and server.batches_created == 1


def test_batch_line_faults_fill_the_error_file_mangle_content_or_leave_lines_out(server):
    server.batch_line_faults = ["500", "malformed", "truncated", "unfinished", "foreign"]
    with sync_client(server) as client:
        _, batch = run_batch(client, batch_input(6))
        output = {line["custom_id"]: line for line in file_lines(client, batch.output_file_id)}
        errors = {line["custom_id"]: line for line in file_lines(client, batch.error_file_id)}

    assert set(errors) == {"c0"} and errors["c0"]["response"]["status_code"] == 500
    assert set(output) == {"c1", "c2", "c4-foreign", "c5"}  # c3 is in neither file
    assert output["c1"]["response"]["body"]["choices"][0]["message"]["content"] == MALFORMED_CONTENT
    assert output["c2"]["response"]["body"]["choices"][0]["finish_reason"] == "length"
    assert server.batch_lines == 5 and server.batch_line_faults == []


def test_an_expiring_batch_runs_only_its_first_lines_and_reports_the_rest_as_expired(server):
    server.batch_outcomes = ["expire:2"]
    with sync_client(server) as client:
        statuses, batch = run_batch(client, batch_input(5))
        output = file_lines(client, batch.output_file_id)
        errors = file_lines(client, batch.error_file_id)

    assert statuses[-1] == "expired"
    assert sorted(line["custom_id"] for line in output) == ["c0", "c1"]
    assert sorted(line["custom_id"] for line in errors) == ["c2", "c3", "c4"]
    assert {line["error"]["code"] for line in errors} == {"batch_expired"}
    assert batch.request_counts.completed == 2 and server.batch_lines == 2


def test_a_failing_batch_and_a_bad_input_line_fail_the_batch_with_errors(server):
    server.batch_outcomes = ["fail"]
    bad_url = batch_input(1) + batch_input(1, url="/v1/embeddings").replace(b'"c0"', b'"c1"')
    with sync_client(server) as client:
        _, injected = run_batch(client, batch_input(2))
        _, invalid = run_batch(client, bad_url)

    assert injected.status == "failed" and injected.errors.data[0].code == "invalid_request"
    assert invalid.status == "failed" and invalid.output_file_id is None
    assert [(e.code, e.line) for e in invalid.errors.data] == [("invalid_url", 2)]
    assert server.batch_lines == 0


def test_a_stuck_batch_stays_in_progress_until_it_is_cancelled(server):
    server.batch_outcomes = ["stuck"]
    with sync_client(server) as client:
        upload = client.files.create(file=("input.jsonl", batch_input(2)), purpose="batch")
        batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
        polled = [client.batches.retrieve(batch.id).status for _ in range(4)]
        cancelling = client.batches.cancel(batch.id)
        cancelled = client.batches.retrieve(batch.id)
        errors = file_lines(client, cancelled.error_file_id)

    assert polled == ["in_progress"] * 4
    assert cancelling.status == "cancelling" and cancelled.status == "cancelled"
    assert {line["error"]["code"] for line in errors} == {"batch_cancelled"} and server.batch_lines == 0


def test_creating_a_batch_needs_an_uploaded_batch_file_and_a_supported_endpoint(server):
    with sync_client(server, max_retries=0) as client:
        upload = client.files.create(file=("input.jsonl", batch_input(1)), purpose="batch")
        notes = client.files.create(file=("notes.txt", b"hello"), purpose="user_data")
        for input_file_id, endpoint in [("file-missing", "/v1/chat/completions"), (notes.id, "/v1/chat/completions"),
                                        (upload.id, "/v1/embeddings")]:
            with pytest.raises(openai.BadRequestError):
                client.batches.create(input_file_id=input_file_id, endpoint=endpoint, completion_window="24h")
        with pytest.raises(openai.NotFoundError):
            client.batches.retrieve("batch_missing")
    assert server.batches_created == 0


def test_azure_files_and_batches_live_under_openai_with_an_api_version(server):
    with AzureOpenAI(
        api_key=server.api_key, azure_endpoint=server.azure_endpoint, api_version=API_VERSION, azure_deployment=MODEL
    ) as client:
        statuses, batch = run_batch(client, batch_input(2, url="/chat/completions"), endpoint="/chat/completions")
        output = file_lines(client, batch.output_file_id)
    unversioned = urllib.request.Request(f"{server.azure_endpoint}/openai/batches/{batch.id}",
                                         headers={"api-key": server.api_key})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unversioned, timeout=10)

    assert statuses[-1] == "completed" and batch.endpoint == "/chat/completions" and len(output) == 2
    paths = [entry["path"] for entry in server.requests]
    assert paths[:2] == [f"/openai/files?api-version={API_VERSION}", f"/openai/batches?api-version={API_VERSION}"]
    assert server.requests[0]["headers"]["api-key"] == "***"
    assert refused.value.code == 404
    refused.value.close()


def test_unknown_batch_schedule_entries_are_refused(server):
    with pytest.raises(ValueError):
        server.batch_line_faults = ["explode"]
    with pytest.raises(ValueError):
        server.batch_outcomes = ["expire:soon"]
    with pytest.raises(ValueError):
        LoopbackOpenAI(batch_outcomes=["vanish"])
