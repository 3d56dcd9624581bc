"""LLM enrichment cost and speed against a loopback OpenAI server with realistic latency and limits.

Uses real reviews from ../shared/data (PII-scrubbed as silver would), the real prompt and the real
client code; the "model" behind the loopback server is a deterministic stand-in that answers the
strict schema, so the figures measure our batching, pacing, caching and fault handling.

    .venv/bin/python bench/enrichment.py [--items 2000] [--latency 0.8] [--rpm 300] [--tpm 400000] [--sections abcde]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.local_classifier import real_reviews  # noqa: E402
from feedback_assets.enrichment.cache import ClassificationCache  # noqa: E402
from feedback_assets.enrichment.llm import LLMClassifier, LLMConnection, LLMSettings, client_factory  # noqa: E402
from feedback_assets.enrichment.prompt import build_prompt  # noqa: E402
from feedback_assets.enrichment.taxonomy import load_taxonomy  # noqa: E402
from feedback_assets.enrichment.tokens import count_tokens  # noqa: E402
from resources.table_store import LocalParquetTableStore  # noqa: E402
from tests.loopback_openai import DEFAULT_API_KEY, LoopbackOpenAI  # noqa: E402
from tests.test_enrichment_llm import items_in, result_for  # noqa: E402

TAXONOMY = load_taxonomy()
PROMPT = build_prompt(TAXONOMY)


def stand_in_model(request: dict) -> str:
    """Valid strict-schema answers with a realistic evidence quote and summary per item."""
    answers = []
    for item in items_in(request):
        answer = result_for(item)
        answer["labels"][0]["evidence"] = item["text"][:60]
        answer["summary"] = "Customer reports that " + item["text"][:80].lower()
        answers.append(answer)
    return json.dumps({"items": answers})


def classifier(server: LoopbackOpenAI, batch_size: int, **settings) -> LLMClassifier:
    env = {"OPENAI_API_KEY": DEFAULT_API_KEY, "OPENAI_BASE_URL": server.base_url}
    connection = LLMConnection.from_env(env)
    return LLMClassifier(client_factory(connection, env, timeout_s=30, max_retries=6), TAXONOMY, PROMPT,
                         LLMSettings(model=connection.model, batch_size=batch_size, **settings))


def sent_tokens(server: LoopbackOpenAI) -> tuple[int, int]:
    """o200k_base tokens of every prompt sent and every completion received, successful calls only."""
    prompt = completion = 0
    for request in server.requests:
        if request["status"] == 200:
            prompt += sum(count_tokens(m["content"]) for m in request["body"]["messages"])
            completion += count_tokens(stand_in_model(request["body"]))
    return prompt, completion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.8, help="seconds per completion at the server")
    parser.add_argument("--rpm", type=int, default=300)
    parser.add_argument("--tpm", type=int, default=400_000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--default-k", type=int, default=LLMSettings.batch_size)
    parser.add_argument("--sections", default="abcde", help="which of the measurements (a)..(e) to run")
    args = parser.parse_args()
    items = real_reviews(args.items)
    print(f"{len(items):,} real reviews, prompt prefix {count_tokens(PROMPT.system):,} o200k tokens, "
          f"server latency {args.latency}s, limits {args.rpm} RPM / {args.tpm:,} TPM")

    if "a" in args.sections:
        measure_batch_sizes(items, args)
    if "b" in args.sections:
        measure_throughput(items, args)
    if "c" in args.sections:
        measure_cache(items, args)
    if "d" in args.sections:
        measure_faults(items, args)
    if "e" in args.sections:
        measure_broken_models(items, args)


def measure_batch_sizes(items, args) -> None:
    print("\n(a) tokens per item by batch size K (o200k_base, 400 items each, no latency)")
    per_item = {}
    for k in args.batch_sizes:
        with LoopbackOpenAI(stand_in_model) as server:
            classifier(server, k, max_concurrency=8).classify(items[:400])
            prompt, completion = sent_tokens(server)
        per_item[k] = (prompt + completion) / 400
        print(f"  K={k:<3} prompt {prompt / 400:7.0f}  completion {completion / 400:5.0f}  total {per_item[k]:7.0f} tokens/item")
    baseline = per_item[min(per_item)]
    print(f"  K={args.default_k} uses {per_item[args.default_k] / baseline:.3f}× the tokens of K=1 "
          f"({baseline / per_item[args.default_k]:.1f}× fewer)")



def measure_throughput(items, args) -> None:
    print(f"\n(b) throughput against the rate-limit ceiling, K={args.default_k}, {len(items):,} items")
    with LoopbackOpenAI(stand_in_model, latency_s=args.latency, rpm_limit=args.rpm, tpm_limit=args.tpm) as server:
        llm = classifier(server, args.default_k, max_concurrency=16, rpm_limit=int(args.rpm * 0.95), tpm_limit=int(args.tpm * 0.95))
        started = time.perf_counter()
        results = llm.classify(items)
        elapsed = time.perf_counter() - started
        rejected = sum(r["status"] == 429 for r in server.requests)
    tokens_per_call = (llm.usage.prompt_tokens + llm.usage.completion_tokens) / llm.usage.calls
    ceiling = min(args.rpm, args.tpm / tokens_per_call) * args.default_k / 60
    achieved = len(results) / elapsed
    print(f"  {elapsed:.1f} s, {achieved:.1f} items/s; ceiling {ceiling:.1f} items/s "
          f"(min of RPM and TPM/{tokens_per_call:.0f} server-estimated tokens per call) → {achieved / ceiling:.0%} of the ceiling; "
          f"429s received {rejected}; estimated cost ${llm.usage.cost_usd('gpt-4o-mini'):.4f} "
          f"(${llm.usage.cost_usd('gpt-4o-mini') / len(items) * 1e6 / 1e3:.2f} per 1k items)")



def measure_cache(items, args) -> None:
    print("\n(c) calls when re-run over the same texts (cache by content hash, prompt version, model)")
    with tempfile.TemporaryDirectory() as root, LoopbackOpenAI(stand_in_model) as server:
        cache = ClassificationCache(LocalParquetTableStore(root=root), PROMPT.version, "gpt-4o-mini")
        by_hash = {item.id: item for item in items}
        for run in (1, 2):
            missing = [item for key, item in by_hash.items() if key not in cache.lookup(set(by_hash))]
            before = server.calls
            fresh = {r["id"]: r for r in classifier(server, args.default_k, max_concurrency=8).classify(missing)} if missing else {}
            cache.store_results(fresh)
            print(f"  run {run}: {server.calls - before} calls")



def measure_faults(items, args) -> None:
    print("\n(d) items lost under 20% injected faults (500, 503, 429, malformed, truncated)")
    with LoopbackOpenAI(stand_in_model, fault_rate=0.2, seed=7) as server:
        results = classifier(server, args.default_k, max_concurrency=8, max_attempts=3).classify(items)
        faults = sum(r["fault"] not in (None, "ok") for r in server.requests)
    returned = {r["id"] for r in results}
    lost = sum(item.id not in returned for item in items)
    dead = sum(bool(r.get("error")) for r in results)
    print(f"  {faults} faults injected over {len(server.requests)} requests: {lost} items lost, {dead} dead-lettered, "
          f"{len(results) - dead} classified")



def measure_broken_models(items, args) -> None:
    print(f"\n(e) cost of a model that is systematically wrong, 200 items, K={args.default_k}: calls and prompt "
          "tokens per item, with the circuit breaker and without it (the splitting alone)")
    broken_models = {
        "healthy (the stand-in)": stand_in_model,
        "answers in prose": lambda request: "Sure! Here are the classifications you asked for.",
        "ignores the schema": lambda request: json.dumps(
            {"items": [{"id": item["id"], "category": "shipping", "score": "high"} for item in items_in(request)]}),
    }
    sample = items[:200]
    for name, model in broken_models.items():
        for breaker in (8, None):
            with LoopbackOpenAI(model) as server:
                llm = classifier(server, args.default_k, max_concurrency=4, circuit_breaker_after=breaker)
                results = llm.classify(sample)
            failed = sum(bool(r.get("error")) for r in results)
            print(f"  {name:<24} breaker {'on ' if breaker else 'off'}: {llm.usage.calls:4d} calls "
                  f"({llm.usage.calls / len(sample):.3f} per item), {llm.usage.prompt_tokens / len(sample):7.0f} prompt "
                  f"tokens per item, {failed} of {len(sample)} dead-lettered"
                  + (", breaker opened" if llm.usage.circuit_breaker else ""))


if __name__ == "__main__":
    main()
