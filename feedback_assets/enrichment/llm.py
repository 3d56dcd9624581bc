"""The LLM backend: OpenAI, Azure OpenAI or any OpenAI-compatible server, strict JSON, nothing lost.

Items go in batches of K with their ids; batches run concurrently under a semaphore and an RPM/TPM
budget. The SDK retries 429/5xx/timeouts (honouring Retry-After). A response that is not valid JSON,
is truncated, or misses or mangles items is split in halves and retried, down to single items; an
item that still fails becomes a dead letter: a result row with `error` set and needs_review, never
a missing row.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from pydantic import ValidationError

from feedback_assets.enrichment.local import FeedbackItem
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


@dataclass
class Usage:
    calls: int = 0
    failed_calls: int = 0
    invalid_responses: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0

    def cost_usd(self, model: str) -> float:
        price_in, price_cached, price_out = PRICES_PER_MILLION.get(model, PRICES_PER_MILLION["gpt-4o-mini"])
        uncached = self.prompt_tokens - self.cached_tokens
        return (uncached * price_in + self.cached_tokens * price_cached + self.completion_tokens * price_out) / 1e6


class InvalidResponse(ValueError):
    """The model's answer for a batch could not be used as a whole."""


@dataclass
class LLMClassifier:
    # A fresh client per classify() call: async clients are bound to the event loop that made them.
    client_factory: Callable[[], openai.AsyncOpenAI]
    taxonomy: Taxonomy
    prompt: Prompt
    settings: LLMSettings = field(default_factory=LLMSettings)
    backend: str = "openai"
    usage: Usage = field(default_factory=Usage)

    def __post_init__(self) -> None:
        self._item_model, self._batch_model = response_models(self.taxonomy)
        self._budget = RateBudget(self.settings.rpm_limit, self.settings.tpm_limit)
        self._prefix_tokens = count_tokens(self.prompt.system)
        self._producer = Producer(self.backend, self.settings.model, self.prompt.version, self.taxonomy)

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
        return [results[item.id] for item in items]

    async def _settle(self, batch: list[FeedbackItem], results: dict[str, dict], semaphore: asyncio.Semaphore) -> None:
        """Transport failures retry the batch; an unusable answer splits it; what is left becomes dead letters."""
        error = ""
        for _ in range(self.settings.max_attempts):
            try:
                async with semaphore:
                    answered = await self._call(batch)
                error = "the response left the item out or returned it invalid"
            except (openai.APIConnectionError, openai.APIStatusError) as failure:
                self.usage.failed_calls += 1
                error = f"{type(failure).__name__}: {_safe_message(failure)}"
                continue
            except InvalidResponse as failure:
                self.usage.invalid_responses += 1
                answered, error = {}, f"invalid response: {failure}"
            results.update(answered)
            batch = [item for item in batch if item.id not in answered]
            if not batch:
                return
            if len(batch) > 1:
                middle = len(batch) // 2
                await asyncio.gather(self._settle(batch[:middle], results, semaphore),
                                     self._settle(batch[middle:], results, semaphore))
                return
        for item in batch:
            results[item.id] = self._dead_letter(item, error)

    async def _call(self, batch: list[FeedbackItem]) -> dict[str, dict]:
        payload = [{"id": item.id, "text": item.text, **({"rating": item.rating} if item.rating is not None else {}),
                    **({"channel": item.channel} if item.channel else {})} for item in batch]
        messages = self.prompt.messages(payload)
        max_tokens = self.settings.completion_tokens_per_item * len(batch) + 50
        await self._budget.acquire(self._prefix_tokens + count_tokens(messages[1]["content"]) + max_tokens)
        completion = await self._client.chat.completions.create(
            model=self.settings.model,
            messages=messages,
            temperature=0,
            max_completion_tokens=max_tokens,
            response_format={"type": "json_schema",
                             "json_schema": {"name": "feedback_classifications", "strict": True, "schema": self.prompt.schema}},
        )
        self._record_usage(completion)
        choice = completion.choices[0]
        if choice.finish_reason == "length":
            raise InvalidResponse("truncated (finish_reason=length)")
        try:
            document = json.loads(choice.message.content or "")
        except json.JSONDecodeError as error:
            raise InvalidResponse(f"not JSON ({error.msg})") from None
        if not isinstance(document, dict) or not isinstance(document.get("items"), list):
            raise InvalidResponse("no `items` array")
        wanted = {item.id: item for item in batch}
        answered: dict[str, dict] = {}
        for raw in document["items"]:
            try:
                parsed = self._item_model.model_validate(raw)
            except ValidationError:
                continue
            if parsed.id in wanted and parsed.id not in answered and parsed.primary_label in {l.label for l in parsed.labels}:
                answered[parsed.id] = self._record(wanted[parsed.id], parsed)
        return answered

    def _record_usage(self, completion: Any) -> None:
        self.usage.calls += 1
        if completion.usage:
            self.usage.prompt_tokens += completion.usage.prompt_tokens or 0
            self.usage.completion_tokens += completion.usage.completion_tokens or 0
            details = getattr(completion.usage, "prompt_tokens_details", None)
            self.usage.cached_tokens += (getattr(details, "cached_tokens", 0) or 0) if details else 0

    def _record(self, item: FeedbackItem, parsed: Any) -> dict:
        return classification_record(
            self._producer, item.id, item.text,
            labels=[(str(l.label), l.severity, l.evidence) for l in parsed.labels], primary_label=str(parsed.primary_label),
            sentiment=parsed.sentiment, churn_intent=parsed.churn_intent, entities=parsed.entities.model_dump(),
            summary=parsed.summary[:300], confidence=parsed.confidence,
            review_below_confidence=self.settings.review_below_confidence,
        )

    def _dead_letter(self, item: FeedbackItem, error: str) -> dict:
        return dead_letter_record(self._producer, item.id, item.text, error)


def _safe_message(error: Exception) -> str:
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
