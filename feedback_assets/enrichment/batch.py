"""The Batch API backend: the realtime classifier's requests and strict validation, sent as asynchronous batches.

Large backfills may go through the OpenAI / Azure OpenAI Batch API instead of realtime calls: half
the price, results within the 24 h completion window. `BatchClassifier` keeps the realtime
contract: one result per item, in input order, and an item that cannot be classified comes back as
a dead letter with `error` set, never as a gap. Each round uploads a JSONL file of requests of K
items (exactly the realtime request bodies; more files only past the API's file limits), creates a
batch, polls it until it ends and maps the output lines back by custom_id, in whatever order they
come. Items a line could not classify (an HTTP error, an unusable body, invalid or missing answers)
are split in halves for the next round; items an expired or cancelled batch never ran go back
unchanged; a failed batch is resubmitted once. After `max_rounds`, whatever is still unfinished
becomes dead letters that say why. When most lines of the first round are unusable, the circuit
breaker stops the resubmitting.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from openai.types.chat import ChatCompletion
from pydantic import ValidationError

from feedback_assets.enrichment.entities import EntityCatalog
from feedback_assets.enrichment.llm import (
    PERMANENT_STATUSES,
    InvalidResponse,
    answer_guards,
    LLMSettings,
    Usage,
    completion_items,
    request_body,
    safe_message,
)
from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.enrichment.prompt import Prompt
from feedback_assets.enrichment.taxonomy import Taxonomy

# One input file holds at most 50,000 requests and 200 MB (OpenAI's limits; some headroom on the size).
MAX_LINES_PER_BATCH = 50_000
MAX_BATCH_FILE_BYTES = 190_000_000
# Longer output lines are not read: no answer to K bounded items comes near this.
MAX_OUTPUT_LINE_BYTES = 2_000_000
TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
# Error-file codes of requests the batch never ran: they go back unchanged, not split.
_NOT_RUN_CODES = frozenset({"batch_expired", "batch_cancelled"})
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")

# The items of one request, that is one JSONL line and one chat completion.
Request = tuple[FeedbackItem, ...]


@dataclass(frozen=True)
class BatchSettings:
    """How batches are waited for and how often unfinished items are resubmitted."""

    poll_interval_s: float = 60.0
    # The API expires a batch itself at the end of its 24 h window; this bounds the wait when it does not.
    max_wait_s: float = 25 * 3600.0
    # How long a batch cancelled for taking too long may settle (OpenAI: up to 10 minutes) before it is given up.
    cancel_wait_s: float = 900.0
    max_rounds: int = 3

    def __post_init__(self) -> None:
        if self.max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        if min(self.poll_interval_s, self.max_wait_s, self.cancel_wait_s) < 0:
            raise ValueError("poll_interval_s, max_wait_s and cancel_wait_s must not be negative")


@dataclass(frozen=True)
class _Ended:
    """How one submitted batch ended: its status, its answered lines by custom_id, and why it ended early."""

    status: str  # completed | expired | cancelled | failed | error (the Batch API itself failed)
    lines: dict[str, list[dict]] = field(default_factory=dict)
    reason: str = ""
    permanent: bool = False  # an API error that resubmitting will not change


def custom_id(round_number: int, index: int, request: Request) -> str:
    """A request's id in its batch: deterministic, unique within the round, free of customer text."""
    digest = hashlib.sha256("\x1f".join(item.id for item in request).encode()).hexdigest()[:12]
    return f"r{round_number}-b{index}-{digest}"


def pack_lines(sizes: Sequence[int], max_lines: int = MAX_LINES_PER_BATCH,
               max_bytes: int = MAX_BATCH_FILE_BYTES) -> list[range]:
    """Consecutive runs of JSONL lines (given their sizes in bytes) that each fit in one batch input file."""
    runs: list[range] = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        if index > start and (index - start >= max_lines or total + size > max_bytes):
            runs.append(range(start, index))
            start, total = index, 0
        total += size
    if sizes:
        runs.append(range(start, len(sizes)))
    return runs


@dataclass
class BatchClassifier:
    """The LLM classifier over the Batch API: the same rows as `LLMClassifier`, at half the price, within 24 h.

    `client_factory` makes ASYNC clients (`openai.AsyncOpenAI` or `openai.AsyncAzureOpenAI`), the
    same factory the realtime classifier takes (`llm.client_factory`); a fresh client per classify()
    call, since async clients are bound to the event loop that made them. With an Azure client the
    batch lines use `/chat/completions` and `settings.model` names the (Global Batch) deployment.
    `clock` measures the wait for a batch against `batch_settings.max_wait_s`.
    """

    client_factory: Callable[[], openai.AsyncOpenAI]
    taxonomy: Taxonomy
    prompt: Prompt
    settings: LLMSettings = field(default_factory=LLMSettings)
    backend: str = "openai"
    usage: Usage = field(default_factory=Usage)
    catalog: EntityCatalog = field(default_factory=EntityCatalog)
    batch_settings: BatchSettings = field(default_factory=BatchSettings)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._reader, self._breaker = answer_guards(self.settings, self.prompt, self.backend, self.taxonomy, self.catalog)

    def classify(self, items: Sequence[FeedbackItem]) -> list[dict]:
        """One result per item, in input order; failures come back as dead-letter rows."""
        return asyncio.run(self.classify_async(items))

    async def classify_async(self, items: Sequence[FeedbackItem]) -> list[dict]:
        """One result per item, in input order; failures come back as dead-letter rows."""
        size = self.settings.batch_size
        pending: list[Request] = [tuple(items[i: i + size]) for i in range(0, len(items), size)]
        results: dict[str, dict] = {}
        reasons: dict[str, str] = {}
        if pending and not self._breaker.open:
            async with self.client_factory() as client:
                pending = await self._rounds(client, pending, results, reasons)
        for request in pending:
            for item in request:
                reason = self._breaker.reason or reasons.get(item.id) or "not classified"
                results[item.id] = self._reader.dead_letter(item, reason)
        self.usage.circuit_breaker = self._breaker.reason
        return [results[item.id] for item in items]

    async def _rounds(self, client: openai.AsyncOpenAI, pending: list[Request], results: dict[str, dict],
                      reasons: dict[str, str]) -> list[Request]:
        """Runs rounds until nothing is pending, the rounds are used up or resubmitting is pointless; returns the rest."""
        endpoint = "/chat/completions" if isinstance(client, openai.AsyncAzureOpenAI) else "/v1/chat/completions"
        endings: Counter[tuple[str, str]] = Counter()  # (item id, batch status) → how often that batch ended so
        failed_rounds = 0
        for round_number in range(1, self.batch_settings.max_rounds + 1):
            self.usage.batch_rounds += 1
            submitted = await self._submit_round(client, round_number, endpoint, pending)
            pending = []
            for requests, ended in submitted:
                pending += self._settle(requests, ended, round_number == 1, results, reasons, endings)
            failed = [ended for _, ended in submitted if ended.status in ("failed", "error")]
            failed_rounds += bool(failed)
            if not pending or self._breaker.open or failed_rounds >= 2 or any(ended.permanent for ended in failed):
                break
        return pending

    async def _submit_round(self, client: openai.AsyncOpenAI, round_number: int, endpoint: str,
                            pending: list[Request]) -> list[tuple[dict[str, Request], _Ended]]:
        """Every pending request as one JSONL line; as many batches as the file limits need, run concurrently."""
        ids = [custom_id(round_number, index, request) for index, request in enumerate(pending)]
        lines = [json.dumps({"custom_id": request_id, "method": "POST", "url": endpoint,
                             "body": request_body(self.prompt, self.settings, request)},
                            ensure_ascii=False).encode() + b"\n"
                 for request_id, request in zip(ids, pending, strict=True)]
        runs = pack_lines([len(line) for line in lines])
        groups = [{ids[i]: pending[i] for i in run} for run in runs]
        endings = await asyncio.gather(*(
            self._submit(client, f"feedback-r{round_number}-{part}.jsonl", b"".join(lines[i] for i in run), endpoint,
                         group, round_number)
            for part, (run, group) in enumerate(zip(runs, groups, strict=True))))
        return list(zip(groups, endings, strict=True))

    async def _submit(self, client: openai.AsyncOpenAI, filename: str, payload: bytes, endpoint: str,
                      requests: dict[str, Request], round_number: int) -> _Ended:
        """Uploads one input file, creates its batch, waits for it to end and reads its lines."""
        batch_id = None
        try:
            uploaded = await client.files.create(file=(filename, payload), purpose="batch")
            # The SDK types `endpoint` with OpenAI's paths only; Azure's /chat/completions is sent as is.
            batch = await client.batches.create(
                input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h",  # type: ignore[arg-type]
                metadata={"purpose": "feedback_classification", "prompt_version": self.prompt.version,
                          "round": str(round_number)},
            )
            self.usage.batches_created += 1
            batch_id = batch.id
            batch, timed_out = await self._wait(client, batch)
            if batch.status == "failed":
                return _Ended("failed", reason=_batch_errors(batch))
            lines = await self._lines(client, batch, requests) if batch.status in TERMINAL_STATUSES else {}
            reason = f"not finished within the {self.batch_settings.max_wait_s:g} s max wait" if timed_out else ""
            return _Ended(batch.status if batch.status in TERMINAL_STATUSES else "cancelled", lines, reason)
        except (openai.APIStatusError, openai.APIConnectionError) as failure:
            self.usage.failed_calls += 1
            if batch_id:
                await _cancel_quietly(client, batch_id)
            return _Ended("error", reason=f"batch API call failed: {safe_message(failure)}",
                          permanent=getattr(failure, "status_code", None) in PERMANENT_STATUSES)

    async def _wait(self, client: openai.AsyncOpenAI, batch: Any) -> tuple[Any, bool]:
        """Polls until the batch ends; past max_wait_s it is cancelled and waited for at most cancel_wait_s more."""
        deadline = self.clock() + self.batch_settings.max_wait_s
        cancelled = False
        while batch.status not in TERMINAL_STATUSES:
            if self.clock() >= deadline:
                if cancelled:
                    break
                batch = await client.batches.cancel(batch.id)
                cancelled = True
                deadline = self.clock() + self.batch_settings.cancel_wait_s
                continue
            await asyncio.sleep(self.batch_settings.poll_interval_s)
            batch = await client.batches.retrieve(batch.id)
        return batch, cancelled

    async def _lines(self, client: openai.AsyncOpenAI, batch: Any, requests: dict[str, Request]) -> dict[str, list[dict]]:
        """The output and error lines of the requests the batch ran, by custom_id; foreign or unreadable lines are counted."""
        lines: dict[str, list[dict]] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = (await client.files.content(file_id)).content
            for raw in content.splitlines():
                if not raw.strip():
                    continue
                line = _parse_line(raw)
                request_id = line.get("custom_id") if line else None
                if not isinstance(request_id, str) or request_id not in requests:
                    self.usage.unknown_batch_lines += 1
                elif not _not_run(line):
                    lines.setdefault(request_id, []).append(line)
        return lines

    def _settle(self, requests: dict[str, Request], ended: _Ended, judged: bool, results: dict[str, dict],
                reasons: dict[str, str], endings: Counter[tuple[str, str]]) -> list[Request]:
        """Keeps what one batch classified, notes why the rest is not, and returns the next round's requests."""
        next_round: list[Request] = []
        for request_id, request in requests.items():
            answer = ended.lines.get(request_id) if ended.status not in ("failed", "error") else None
            if not answer:
                for item in request:
                    reasons[item.id] = _not_run_reason(item, ended, endings)
                next_round.append(request)
                continue
            answered, problems, error = self._read(request, answer, judged)
            results.update(answered)
            left = [item for item in request if item.id not in answered]
            for item in left:
                reasons[item.id] = problems.get(item.id, error)
            middle = len(left) // 2
            next_round += [tuple(half) for half in (left[:middle], left[middle:]) if half]
        return next_round

    def _read(self, request: Request, answer: list[dict], judged: bool) -> tuple[dict[str, dict], dict[str, str], str]:
        """The rows one output line classified, problems by item id, and what was wrong with the line as a whole."""
        if len(answer) > 1:
            return {}, {}, f"the batch answered the request {len(answer)} times"
        line = answer[0]
        if isinstance(line.get("error"), dict):
            self.usage.failed_calls += 1
            return {}, {}, f"batch line error: {_error_code(line['error'].get('code'))}"
        response = line.get("response")
        status = response.get("status_code") if isinstance(response, dict) else None
        if type(status) is not int:
            self.usage.invalid_responses += 1
            if judged:
                self._breaker.record(False, "invalid batch line")
            return {}, {}, "invalid batch line"
        if status != 200:
            self.usage.failed_calls += 1
            if judged and status in PERMANENT_STATUSES:
                self._breaker.record(False, f"HTTP {status}")
            return {}, {}, f"HTTP {status} in batch line"
        try:
            completion = _chat_completion(response.get("body"))
            self.usage.count_completion(completion.usage, batch=True)
            raw_items = completion_items(completion)
        except InvalidResponse as failure:
            self.usage.invalid_responses += 1
            if judged:
                self._breaker.record(False, str(failure))
            return {}, {}, f"invalid response: {failure}"
        answered, problems = self._reader.answers(request, raw_items, self.usage)
        if judged:
            self._breaker.record(2 * len(answered) >= len(request), next(iter(problems.values()), "items left out"))
        return answered, problems, "the response left the item out"


def _not_run_reason(item: FeedbackItem, ended: _Ended, endings: Counter[tuple[str, str]]) -> str:
    """Why an item whose request the batch did not answer is unfinished (counting how often its batches ended so)."""
    if ended.status == "error":
        return ended.reason
    if ended.status == "completed":
        return "the batch returned no answer for the request"
    endings[(item.id, ended.status)] += 1
    count = endings[(item.id, ended.status)]
    times = {1: "once", 2: "twice"}.get(count, f"{count} times")
    return f"batch {ended.status} {times}" + (f" ({ended.reason})" if ended.reason else "")


def _parse_line(raw: bytes) -> dict | None:
    """One output line as a JSON object, or None when it is too long or not one."""
    if len(raw) > MAX_OUTPUT_LINE_BYTES:
        return None
    try:
        line = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return line if isinstance(line, dict) else None


def _not_run(line: dict) -> bool:
    """An error line of a request that never ran because its batch expired or was cancelled."""
    error = line.get("error")
    return isinstance(error, dict) and error.get("code") in _NOT_RUN_CODES


def _chat_completion(body: Any) -> ChatCompletion:
    try:
        return ChatCompletion.model_validate(body)
    except ValidationError:
        raise InvalidResponse("not a chat completion") from None


def _error_code(code: Any) -> str:
    """A provider's error code when it looks like one; never free text."""
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else "unknown"


def _batch_errors(batch: Any) -> str:
    """The codes of a failed batch's errors (their messages may quote the input, so they are left out)."""
    data = batch.errors.data if batch.errors and batch.errors.data else []
    codes = Counter(_error_code(error.code) for error in data)
    return ", ".join(f"{code} ×{count}" if count > 1 else code for code, count in codes.most_common(3)) or "no details"


async def _cancel_quietly(client: openai.AsyncOpenAI, batch_id: str) -> None:
    """Cancels a batch this run gives up on, so it costs nothing more; a batch that cannot be cancelled is left."""
    try:
        await client.batches.cancel(batch_id)
    except (openai.APIStatusError, openai.APIConnectionError):
        pass
