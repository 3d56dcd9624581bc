"""What re-classifying a range of days would cost: only texts the cache lacks for the current version are sent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

from feedback_assets import tables
from feedback_assets.enrichment.cache import ClassificationCache
from feedback_assets.enrichment.identity import ClassifierIdentity
from feedback_assets.enrichment.llm import BATCH_PRICE_SHARE, PRICES_PER_MILLION, LLMSettings, request_body
from feedback_assets.enrichment.models import FeedbackItem
from feedback_assets.enrichment.prompt import Prompt
from feedback_assets.enrichment.tokens import count_tokens
from resources.table_store import TableStore


@dataclass(frozen=True)
class ClassificationEstimate:
    """Texts in a range, how many the cache already answers for this version, and the calls and cost of the rest."""

    identity: ClassifierIdentity
    days: int
    items: int
    distinct_texts: int
    cached_texts: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None  # None: no list price known for the model
    cost_usd_batch: float | None

    @property
    def texts_to_classify(self) -> int:
        return self.distinct_texts - self.cached_texts

    def describe(self) -> str:
        head = (f"{self.days} days, {self.items:,} items, {self.distinct_texts:,} distinct texts; "
                f"{self.cached_texts:,} already classified by {self.identity.code_version} (cache), "
                f"{self.texts_to_classify:,} to classify")
        if self.identity.backend == "local":
            return head + " with the local classifier (no LLM cost)."
        price = (f"at most ${self.cost_usd:.2f} (${self.cost_usd_batch:.2f} through the Batch API)"
                 if self.cost_usd is not None else f"no list price known for {self.identity.model}")
        return (head + f": {self.calls:,} LLM calls, at most {self.prompt_tokens:,} prompt and "
                f"{self.completion_tokens:,} completion tokens, {price}.")


def estimate_classification(store: TableStore, identity: ClassifierIdentity, start: date, end: date,
                            prompt: Prompt | None = None, settings: LLMSettings | None = None) -> ClassificationEstimate:
    """Counts the range's silver texts against the cache of (content hash, version, model) and prices the rest.

    The requests are built as the classifier builds them (items by their content hash, the prompt,
    the analysts' examples, the schema) and their tokens counted; completions are counted at their
    budget and no provider prompt caching is assumed, so the figures are upper bounds.
    """
    settings = settings or LLMSettings(model=identity.model)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    silver = store.read_days(tables.SILVER_FEEDBACK, days, ["content_hash", "text_clean", "rating", "channel"])
    rows = silver.to_pylist() if silver is not None else []
    texts = {}
    for row in rows:
        texts.setdefault(row["content_hash"], row)
    cached = ClassificationCache(store, identity.version, identity.model).lookup(set(texts))
    missing = [FeedbackItem(h, r["text_clean"], r["rating"], r["channel"]) for h, r in sorted(texts.items()) if h not in cached]
    calls = prompt_tokens = completion_tokens = 0
    cost: float | None = 0.0
    if identity.backend != "local" and missing and prompt is not None:
        bodies = [request_body(prompt, settings, missing[i: i + settings.batch_size])
                  for i in range(0, len(missing), settings.batch_size)]
        schema_tokens = count_tokens(json.dumps(prompt.schema))
        calls = len(bodies)
        prompt_tokens = sum(schema_tokens + sum(count_tokens(m["content"]) for m in body["messages"]) for body in bodies)
        completion_tokens = sum(body["max_completion_tokens"] for body in bodies)
        price = PRICES_PER_MILLION.get(identity.model)
        cost = (prompt_tokens * price[0] + completion_tokens * price[2]) / 1e6 if price else None
    return ClassificationEstimate(identity, len(days), len(rows), len(texts), len(texts) - len(missing), calls,
                                  prompt_tokens, completion_tokens,
                                  round(cost, 4) if cost is not None else None,
                                  round(cost * BATCH_PRICE_SHARE, 4) if cost is not None else None)
