"""The LLM backend: OpenAI, Azure OpenAI or any OpenAI-compatible server, strict JSON, nothing lost.

Items go in batches of K with their ids; batches run concurrently under a semaphore and an RPM/TPM
budget. The SDK retries 429/5xx/timeouts (honouring Retry-After). Answers are validated strictly
(no string numbers, no labels outside the enum, no label twice, the primary among the labels, one
answer per id). A response that is not valid JSON, is truncated, or misses or mangles items is split
in halves and retried, down to single items; an item that still fails becomes a dead letter: a
result row with `error` set and needs_review, never a missing row. When most responses of a run
are unusable, a circuit breaker stops the splitting and dead-letters the rest with one error.

The request body, the reading of a completion and the strict validation of its answers
(`request_body`, `completion_items`, `AnswerReader`) are shared with the Batch API classifier.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, ValidationError

from feedback_assets.enrichment.entities import EntityCatalog
from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.enrichment.prompt import Prompt
from feedback_assets.enrichment.rate_limit import RateBudget
from feedback_assets.enrichment.review import Producer, classification_record, dead_letter_record
from feedback_assets.enrichment.schema import response_models
from feedback_assets.enrichment.taxonomy import Taxonomy
from feedback_assets.enrichment.tokens import count_tokens

# USD per million tokens: (input, cached input, output). Unknown models are costed as gpt-4o-mini.
PRICES_PER_MILLION: dict[str, tuple[float, float, float]] = {
    "gpt-4o-mini": (0.15, 0.075, 0.60),
    "gpt-4o": (2.50, 1.25, 10.00),
    "gpt-4.1-mini": (0.40, 0.10, 1.60),
    "gpt-4.1-nano": (0.10, 0.025, 0.40),
}
# OpenAI's Batch API bills every token at half the realtime price.
BATCH_PRICE_SHARE = 0.5


@dataclass(frozen=True)
class LLMSettings:
    model: str = "gpt-4o-mini"
    batch_size: int = 8
    max_concurrency: int = 4
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_attempts: int = 2
    completion_tokens_per_item: int = 220
    review_below_confidence: float = 0.5
    # After this many judged responses, the circuit breaker may open; None turns it off.
    circuit_breaker_after: int | None = 8


@dataclass
class Usage:
    """What a classifier's run asked of the model: calls, tokens (realtime and batch), unusable answers."""

    calls: int = 0
    failed_calls: int = 0
    invalid_responses: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    invalid_items: int = 0  # answers for an asked item that failed validation, or contradicted each other
    unasked_items: int = 0  # answers for ids nobody asked about
    circuit_breaker: str | None = None  # why the run stopped asking the model, when it did
    # The part of the tokens above that went through the Batch API, billed at BATCH_PRICE_SHARE.
    batch_prompt_tokens: int = 0
    batch_cached_tokens: int = 0
    batch_completion_tokens: int = 0
    batches_created: int = 0
    batch_rounds: int = 0
    unknown_batch_lines: int = 0  # batch output lines that named no request of their batch, or could not be read

    def count_completion(self, usage: CompletionUsage | None, *, batch: bool = False) -> None:
        """Counts one answered request and its tokens, in the batch share too when it went through the Batch API."""
        self.calls += 1
        if not usage:
            return
        prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
        details = getattr(usage, "prompt_tokens_details", None)
        cached = (getattr(details, "cached_tokens", 0) or 0) if details else 0
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.cached_tokens += cached
        if batch:
            self.batch_prompt_tokens += prompt
            self.batch_completion_tokens += completion
            self.batch_cached_tokens += cached

    def cost_usd(self, model: str) -> float:
        """The estimated price in USD, batch tokens at BATCH_PRICE_SHARE of the realtime price."""
        prices = PRICES_PER_MILLION.get(model, PRICES_PER_MILLION["gpt-4o-mini"])
        realtime = _token_cost(prices, self.prompt_tokens - self.batch_prompt_tokens,
                               self.cached_tokens - self.batch_cached_tokens,
                               self.completion_tokens - self.batch_completion_tokens)
        batch = _token_cost(prices, self.batch_prompt_tokens, self.batch_cached_tokens, self.batch_completion_tokens)
        return realtime + BATCH_PRICE_SHARE * batch


def _token_cost(prices: tuple[float, float, float], prompt: int, cached: int, completion: int) -> float:
    price_in, price_cached, price_out = prices
    return ((prompt - cached) * price_in + cached * price_cached + completion * price_out) / 1e6


class InvalidResponse(ValueError):
    """The model's answer for a batch could not be used as a whole."""


# 4xx answers that a retry will not change: the endpoint, the key or the request is wrong for this server.
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 415, 422})


@dataclass
class CircuitBreaker:
    """Stops asking a model whose answers are systematically unusable, instead of splitting forever.

    It judges the first answer to each batch (retries of single stubborn items would say more about
    those items than about the model): usable when at least half of the batch came back valid, not
    when the answer is invalid as a whole or mostly invalid; a permanent HTTP error (400, 401, 403,
    404...) on any request counts as unusable too. Once `min_responses` have been judged and more
    than `max_unusable_share` of them were unusable, the breaker opens: nothing more is sent in this
    run and the items left become dead letters with one error that names the likely cause.
    """

    min_responses: int = 8
    enabled: bool = True
    max_unusable_share: float = 0.5
    responses: int = 0
    unusable: int = 0
    examples: list[str] = field(default_factory=list)
    reason: str | None = None

    def record(self, usable: bool, problem: str | None = None) -> None:
        self.responses += 1
        if not usable:
            self.unusable += 1
            if problem and len(self.examples) < 3 and problem not in self.examples:
                self.examples.append(problem)
        if self.enabled and self.reason is None and self.responses >= self.min_responses \
                and self.unusable > self.max_unusable_share * self.responses:
            self.reason = self._explain()

    @property
    def open(self) -> bool:
        return self.reason is not None

    def _explain(self) -> str:
        seen = "; ".join(self.examples) or "no details"
        if any(e.startswith("HTTP 40") for e in self.examples):
            cause = "the endpoint refuses the requests (check the key, the model or deployment name, and that it accepts response_format json_schema)"
        else:
            cause = ("the model ignores the strict structured output it was asked for (response_format json_schema); "
                     "use a model or deployment that supports it")
        return (f"circuit breaker: {self.unusable} of {self.responses} responses were unusable ({seen}); {cause}. "
                "The remaining items were not sent; a re-run retries them.")


def request_body(prompt: Prompt, settings: LLMSettings, batch: Sequence[FeedbackItem]) -> dict[str, Any]:
    """The Chat Completions request for one batch of items: strict JSON schema, temperature 0, bounded output."""
    payload = [{"id": item.id, "text": item.text, **({"rating": item.rating} if item.rating is not None else {}),
                **({"channel": item.channel} if item.channel else {})} for item in batch]
    return {
        "model": settings.model,
        "messages": prompt.messages(payload),
        "temperature": 0,
        "max_completion_tokens": settings.completion_tokens_per_item * len(batch) + 50,
        "response_format": {"type": "json_schema",
                            "json_schema": {"name": "feedback_classifications", "strict": True, "schema": prompt.schema}},
    }


def completion_items(completion: ChatCompletion) -> list[Any]:
    """The raw `items` array of a completion's JSON answer; InvalidResponse when the answer cannot be used at all."""
    if not completion.choices:
        raise InvalidResponse("no choices")
    choice = completion.choices[0]
    if choice.finish_reason == "length":
        raise InvalidResponse("truncated (finish_reason=length)")
    try:
        document = json.loads(choice.message.content or "")
    except (json.JSONDecodeError, RecursionError) as error:
        raise InvalidResponse(f"not JSON ({getattr(error, 'msg', type(error).__name__)})") from None
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise InvalidResponse("no `items` array")
    return document["items"]


@dataclass
class AnswerReader:
    """Turns the model's raw answers for a batch into classification rows, strictly, or says what was wrong."""

    producer: Producer
    catalog: EntityCatalog
    review_below_confidence: float

    def __post_init__(self) -> None:
        self._item_model: type[BaseModel] = response_models(self.producer.taxonomy)[0]

    def answers(self, batch: Sequence[FeedbackItem], raw_items: list[Any],
                usage: Usage) -> tuple[dict[str, dict], dict[str, str]]:
        """Rows of the valid answers by item id, and problems by id; an id answered twice counts as neither."""
        wanted = {item.id: item for item in batch}
        ids = Counter(raw.get("id") for raw in raw_items if isinstance(raw, dict) and isinstance(raw.get("id"), str))
        answered: dict[str, dict] = {}
        problems: dict[str, str] = {}
        for raw in raw_items:
            item_id = raw.get("id") if isinstance(raw, dict) else None
            if not isinstance(item_id, str) or item_id not in wanted:
                usage.unasked_items += 1
                continue
            if ids[item_id] > 1:
                problems[item_id] = f"the response answered the item {ids[item_id]} times"
                continue
            try:
                parsed = self._item_model.model_validate(raw)
            except ValidationError as error:
                problems[item_id] = f"invalid answer: {_first_error(error)}"
                continue
            answered[item_id] = self.record(wanted[item_id], parsed)
        usage.invalid_items += len(problems)
        return answered, problems

    def record(self, item: FeedbackItem, parsed: Any) -> dict:
        """The classification row of one validated answer."""
        return classification_record(
            self.producer, item, self.catalog,
            labels=[(str(l.label), l.severity, l.evidence) for l in parsed.labels], primary_label=str(parsed.primary_label),
            sentiment=parsed.sentiment, churn_intent=parsed.churn_intent, proposed_entities=parsed.entities.model_dump(),
            summary=parsed.summary, confidence=parsed.confidence,
            review_below_confidence=self.review_below_confidence,
        )

    def dead_letter(self, item: FeedbackItem, error: str) -> dict:
        """The row of an item that could not be classified, with why."""
        return dead_letter_record(self.producer, item.id, item.text, error)


def answer_guards(settings: LLMSettings, prompt: Prompt, backend: str, taxonomy: Taxonomy,
                  catalog: EntityCatalog) -> tuple[AnswerReader, CircuitBreaker]:
    """The strict reader of a classifier's answers, and its circuit breaker (one for the classifier's life, i.e. one
    asset run: once open, later chunks are not sent either)."""
    reader = AnswerReader(Producer(backend, settings.model, prompt.version, taxonomy), catalog, settings.review_below_confidence)
    return reader, CircuitBreaker(settings.circuit_breaker_after or 0, enabled=settings.circuit_breaker_after is not None)


@dataclass
class LLMClassifier:
    # A fresh client per classify() call: async clients are bound to the event loop that made them.
    client_factory: Callable[[], openai.AsyncOpenAI]
    taxonomy: Taxonomy
    prompt: Prompt
    settings: LLMSettings = field(default_factory=LLMSettings)
    backend: str = "openai"
    usage: Usage = field(default_factory=Usage)
    catalog: EntityCatalog = field(default_factory=EntityCatalog)

    def __post_init__(self) -> None:
        self._budget = RateBudget(self.settings.rpm_limit, self.settings.tpm_limit)
        self._prefix_tokens = count_tokens(self.prompt.system)
        self._reader, self._breaker = answer_guards(self.settings, self.prompt, self.backend, self.taxonomy, self.catalog)

    def classify(self, items: Sequence[FeedbackItem]) -> list[dict]:
        return asyncio.run(self.classify_async(items))

    async def classify_async(self, items: Sequence[FeedbackItem]) -> list[dict]:
        """One result per item, in input order; failures come back as dead-letter rows."""
        semaphore = asyncio.Semaphore(self.settings.max_concurrency)
        results: dict[str, dict] = {}
        size = self.settings.batch_size
        batches = [list(items[i: i + size]) for i in range(0, len(items), size)]
        async with self.client_factory() as client:
            self._client = client
            await asyncio.gather(*(self._settle(batch, results, semaphore) for batch in batches))
        self.usage.circuit_breaker = self._breaker.reason
        return [results[item.id] for item in items]

    async def _settle(self, batch: list[FeedbackItem], results: dict[str, dict], semaphore: asyncio.Semaphore,
                      first: bool = True) -> None:
        """Transport failures retry the batch; an unusable answer splits it; what is left becomes dead letters."""
        error = ""
        problems: dict[str, str] = {}
        for attempt in range(self.settings.max_attempts):
            judged = first and attempt == 0
            async with semaphore:
                if self._breaker.open:
                    break
                try:
                    answered, problems = await self._call(batch)
                    error = "the response left the item out"
                    if judged:
                        self._breaker.record(2 * len(answered) >= len(batch),
                                             next(iter(problems.values()), "items left out"))
                except openai.APIStatusError as failure:
                    self.usage.failed_calls += 1
                    error = f"{type(failure).__name__}: {safe_message(failure)}"
                    if failure.status_code in PERMANENT_STATUSES:
                        self._breaker.record(False, safe_message(failure))
                    continue
                except openai.APIConnectionError as failure:
                    self.usage.failed_calls += 1
                    error = f"{type(failure).__name__}: {safe_message(failure)}"
                    continue
                except InvalidResponse as failure:
                    self.usage.invalid_responses += 1
                    answered, error = {}, f"invalid response: {failure}"
                    if judged:
                        self._breaker.record(False, str(failure))
            results.update(answered)
            batch = [item for item in batch if item.id not in answered]
            if not batch:
                return
            if len(batch) > 1 and not self._breaker.open:
                middle = len(batch) // 2
                await asyncio.gather(self._settle(batch[:middle], results, semaphore, first=False),
                                     self._settle(batch[middle:], results, semaphore, first=False))
                return
        for item in batch:
            reason = self._breaker.reason or problems.get(item.id, error) or "not classified"
            results[item.id] = self._reader.dead_letter(item, reason)

    async def _call(self, batch: list[FeedbackItem]) -> tuple[dict[str, dict], dict[str, str]]:
        """The usable answers of one request by item id, and what was wrong with the others."""
        body = request_body(self.prompt, self.settings, batch)
        await self._budget.acquire(self._prefix_tokens + count_tokens(body["messages"][1]["content"])
                                   + body["max_completion_tokens"])
        completion = await self._client.chat.completions.create(**body)
        self.usage.count_completion(completion.usage)
        return self._reader.answers(batch, completion_items(completion), self.usage)


def _first_error(error: ValidationError) -> str:
    """The first validation problem, in a line that holds no model output beyond its location."""
    first = error.errors(include_url=False, include_input=False)[0]
    location = ".".join(str(part) for part in first["loc"]) or "item"
    return f"{location}: {first['msg']}"[:200]


def safe_message(error: Exception) -> str:
    """The error without anything that could hold a secret (status and type only for HTTP errors)."""
    status = getattr(error, "status_code", None)
    return f"HTTP {status}" if status else type(error).__name__


@dataclass(frozen=True)
class LLMConnection:
    """Which provider the environment configures, if any."""

    provider: str  # openai | azure
    model: str

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> LLMConnection | None:
        env = dict(os.environ if environ is None else environ)
        if env.get("AZURE_OPENAI_ENDPOINT") and env.get("AZURE_OPENAI_API_KEY"):
            return cls("azure", env.get("AZURE_OPENAI_DEPLOYMENT", "gpt-4o-mini"))
        if env.get("OPENAI_API_KEY"):
            return cls("openai", env.get("OPENAI_MODEL", "gpt-4o-mini"))
        return None


def client_factory(connection: LLMConnection, environ: dict[str, str] | None = None, *,
                   timeout_s: float = 60.0, max_retries: int = 4) -> Callable[[], openai.AsyncOpenAI]:
    """Makes SDK clients for the configured provider; OPENAI_BASE_URL points them at any compatible server."""
    env = dict(os.environ if environ is None else environ)
    return lambda: _make_client(connection, env, timeout_s, max_retries)


def _make_client(connection: LLMConnection, env: dict[str, str], timeout_s: float, max_retries: int) -> openai.AsyncOpenAI:
    if connection.provider == "azure":
        return openai.AsyncAzureOpenAI(
            azure_endpoint=env["AZURE_OPENAI_ENDPOINT"], api_key=env["AZURE_OPENAI_API_KEY"],
            api_version=env.get("OPENAI_API_VERSION", "2024-10-21"), azure_deployment=connection.model,
            timeout=timeout_s, max_retries=max_retries,
        )
    return openai.AsyncOpenAI(api_key=env["OPENAI_API_KEY"], base_url=env.get("OPENAI_BASE_URL") or None,
                              timeout=timeout_s, max_retries=max_retries)
