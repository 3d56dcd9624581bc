"""What a 60-day re-classification costs on an LLM: with and without the classification cache, realtime and Batch API.

Seeds the demo-sized sample (60 days, 200 items a day), builds silver, then classifies the whole range
through the real step (`run_enrichment`, its cache and its checkpoints) against a loopback OpenAI
server whose stand-in model answers the strict schema. Calls are counted on the server; tokens are
o200k_base counts of what was sent and received; dollars use gpt-4o-mini's list price (Batch: half).

    .venv/bin/python bench/backfill_cost.py [--days 60] [--items-per-day 200]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster as dg  # noqa: E402

from bench.enrichment import stand_in_model  # noqa: E402
from feedback_assets import tables  # noqa: E402
from feedback_assets.definitions import ALL_ASSETS, build_resources  # noqa: E402
from feedback_assets.enrichment.batch import BatchClassifier, BatchSettings  # noqa: E402
from feedback_assets.enrichment.estimate import estimate_classification  # noqa: E402
from feedback_assets.enrichment.identity import ClassifierIdentity  # noqa: E402
from feedback_assets.enrichment.llm import PRICES_PER_MILLION, LLMClassifier, LLMConnection, LLMSettings, client_factory  # noqa: E402
from feedback_assets.enrichment.models import FeedbackItem  # noqa: E402
from feedback_assets.enrichment.prompt import build_prompt  # noqa: E402
from feedback_assets.enrichment.step import Backend, run_enrichment  # noqa: E402
from feedback_assets.enrichment.taxonomy import load_taxonomy  # noqa: E402
from feedback_assets.enrichment.tokens import count_tokens  # noqa: E402
from feedback_assets.sample_data import generate_sample  # noqa: E402
from resources.settings import read_settings  # noqa: E402
from resources.spark import local_spark_session  # noqa: E402
from tests.loopback_openai import DEFAULT_API_KEY, LoopbackOpenAI  # noqa: E402
from tests.test_assets import ranged  # noqa: E402

MODEL = "gpt-4o-mini"


def classifier(server: LoopbackOpenAI, prompt, batch: bool) -> LLMClassifier | BatchClassifier:
    env = {"OPENAI_API_KEY": DEFAULT_API_KEY, "OPENAI_BASE_URL": server.base_url}
    factory = client_factory(LLMConnection.from_env(env), env, timeout_s=30, max_retries=6)
    settings = LLMSettings(model=MODEL)
    if batch:
        return BatchClassifier(factory, load_taxonomy(), prompt, settings, batch_settings=BatchSettings(poll_interval_s=0))
    return LLMClassifier(factory, load_taxonomy(), prompt, settings)


def request_bodies(server: LoopbackOpenAI, requests_since: int, batches_since: int) -> list[dict]:
    """The chat requests sent since the marks: realtime ones from the request log, batch lines from the uploaded files."""
    bodies = [r["body"] for r in server.requests[requests_since:]
              if r["status"] == 200 and "messages" in (r.get("body") or {})]
    for batch in server.batches[batches_since:]:
        for line in server.file_content(batch["input_file_id"]).decode().splitlines():
            bodies.append(json.loads(line)["body"])
    return bodies


def priced(bodies: list[dict], batch: bool) -> tuple[int, int, int, float]:
    """Requests, o200k prompt and completion tokens, and their gpt-4o-mini list price (Batch API: half)."""
    prompt = sum(count_tokens(m["content"]) for body in bodies for m in body["messages"])
    completion = sum(count_tokens(stand_in_model(body)) for body in bodies)
    price_in, _, price_out = PRICES_PER_MILLION[MODEL]
    return len(bodies), prompt, completion, (prompt * price_in + completion * price_out) / 1e6 * (0.5 if batch else 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--items-per-day", type=int, default=200)
    args = parser.parse_args()
    last = date(2026, 10, 31)
    first = last - timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory() as root, LoopbackOpenAI(stand_in_model) as server:
        config = replace(read_settings(), feedback_home=Path(root), landing_settle_seconds=0)
        generate_sample(config.landing_dir, Path(root) / "manifest.json", days=args.days, end_date=last,
                        items_per_day=args.items_per_day, seed=7)
        resources = build_resources(config)
        with dg.instance_for_test() as instance:
            assert dg.materialize(ALL_ASSETS, selection=dg.AssetSelection.groups("bronze", "silver"), resources=resources,
                                  instance=instance, tags=ranged(first, last)).success
        store, spark = resources["table_store"], local_spark_session(config)
        silver = store.read(spark, tables.SILVER_FEEDBACK, first, last).select("feedback_id", "text_clean", "rating", "channel").collect()
        rows = []

        def scenario(name: str, batch: bool, run) -> None:
            marks = len(server.requests), len(server.batches)
            run()
            requests, prompt, completion, cost = priced(request_bodies(server, *marks), batch)
            rows.append((name, "Batch API" if batch else "realtime", requests, prompt, completion, cost))

        for batch, version in ((False, "v-realtime"), (True, "v-batch")):
            prompt = build_prompt(load_taxonomy())
            items = [FeedbackItem(r["feedback_id"], r["text_clean"], r["rating"], r["channel"]) for r in silver]
            scenario("no cache: every item sent", batch, lambda: classifier(server, prompt, batch).classify(items))
            identity = ClassifierIdentity("openai", MODEL, version, "t")
            estimate = estimate_classification(store, identity, first, last, prompt)

            def run_step() -> None:
                llm = classifier(server, prompt, batch)
                backend = Backend("openai", MODEL, version, llm.classify, llm.usage, chunk_size=40_000 if batch else 0)
                run_enrichment(spark, store, first, last, backend, f"bench-{version}")

            scenario("cache, new version (a taxonomy change): each distinct text once", batch, run_step)
            rows[-1] = (*rows[-1], estimate)
            scenario("cache, same version again: nothing to send", batch, run_step)
        print(f"{args.days} days × {args.items_per_day} items: {len(silver):,} silver items, "
              f"{estimate.distinct_texts:,} distinct texts; batches of {LLMSettings().batch_size} items per request\n")
        print("| scenario | API | requests | prompt tokens | completion tokens | cost (gpt-4o-mini list price) | estimate printed first |")
        print("|---|---|---:|---:|---:|---:|---|")
        for row in rows:
            name, api, requests, prompt_tokens, completion_tokens, cost = row[:6]
            note = (f"{row[6].calls:,} calls, at most ${row[6].cost_usd_batch if api == 'Batch API' else row[6].cost_usd:.2f}"
                    if len(row) > 6 else "")
            print(f"| {name} | {api} | {requests:,} | {prompt_tokens:,} | {completion_tokens:,} | ${cost:.3f} | {note} |")
        expected = math.ceil(estimate.distinct_texts / LLMSettings().batch_size)
        print(f"\nrequests for distinct texts: expected {expected:,}; batches created on the server: {server.batches_created}")


if __name__ == "__main__":
    main()
