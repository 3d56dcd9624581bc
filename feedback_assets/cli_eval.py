"""`feedback eval`: a classifier scored on the golden set, the real-review set and the multilingual slice."""

from __future__ import annotations

import time
from enum import StrEnum
from typing import Annotated

import typer


class EvalSetName(StrEnum):
    golden = "golden"
    real = "real"
    multilingual = "multilingual"


def evaluate_sets(
    sets: Annotated[list[EvalSetName] | None, typer.Option("--set", help="Sets to score; default all three.")] = None,
    models: Annotated[str, typer.Option(help="Local embedders to compare, comma-separated (e5, use, minilm); "
                                              "'llm' scores the configured OpenAI / Azure OpenAI model.")] = "e5,minilm",
    detail: Annotated[bool, typer.Option(help="Per-label precision/recall/F1 and confusions for every set.")] = False,
) -> None:
    """Score classifiers per set and per language: accuracy, acceptable accuracy, macro-F1, domain, review share, ECE."""
    from feedback_assets.enrichment import evaluation
    from feedback_assets.enrichment.evalsets import EvalSetUnavailable, golden_set, multilingual_set, real_review_set
    from feedback_assets.enrichment.taxonomy import load_taxonomy

    loaders = {EvalSetName.golden: golden_set, EvalSetName.real: real_review_set,
               EvalSetName.multilingual: multilingual_set}
    chosen = []
    for name in sets or list(EvalSetName):
        try:
            chosen.append(loaders[name]())
        except (EvalSetUnavailable, OSError, ValueError) as error:
            typer.echo(f"skipping the {name.value} set: {error}", err=True)
    if not chosen:
        raise typer.Exit(2)
    taxonomy = load_taxonomy()
    domain_of = {label: taxonomy.domain_of(label) for label in taxonomy.label_ids}
    failed = False
    for model in [m.strip() for m in models.split(",") if m.strip()]:
        try:
            started = time.perf_counter()
            classify, described = _classifier(model)
            loaded = time.perf_counter() - started
        except (RuntimeError, ValueError) as error:
            typer.echo(f"\n{model}: cannot run here: {error}", err=True)
            failed = True
            continue
        typer.echo(f"\n{described} (loaded in {loaded:.1f} s)")
        typer.echo(evaluation.SUMMARY_HEADER)
        details = []
        for evalset in chosen:
            started = time.perf_counter()
            predicted = {r["id"]: r for r in classify(evalset.feedback())}
            rate = len(evalset.items) / max(time.perf_counter() - started, 1e-9)
            rows = evaluation.scored_rows(evalset.name, evalset.items, predicted, taxonomy.label_ids, domain_of)
            for name, report in rows:
                typer.echo(evaluation.summary_line(name, report))
            details.append((evalset.name, rows[0][1], rate))
        for name, report, rate in details:
            typer.echo(f"  {name}: {rate:.0f} items/s")
            if detail:
                typer.echo(f"\n{name}\n{evaluation.render(report)}")
    if failed:
        raise typer.Exit(1)


def _classifier(model: str):
    from feedback_assets.enrichment.llm import LLMConnection
    from feedback_assets.enrichment.service import llm_classifier, local_classifier

    if model == "llm":
        connection = LLMConnection.from_env()
        if connection is None:
            raise ValueError("no LLM is configured (OPENAI_API_KEY, or AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY)")
        llm = llm_classifier(connection)
        return llm.classify, f"{llm.backend} ({llm.settings.model}, prompt {llm.prompt.version})"
    classifier = local_classifier(model=model)
    return classifier.classify, f"local {model} ({classifier.model}, {classifier.version})"
