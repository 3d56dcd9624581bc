"""The analyst loop's parts: version history, the diff, the evaluation gate's verdicts, the cost estimate and the
triage inbox, each on its own (the end-to-end story is in test_analyst_loop.py)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pytest

from feedback_assets import tables
from feedback_assets.automation import reclassify_recent
from feedback_assets.enrichment.cache import ClassificationCache
from feedback_assets.enrichment.corrections_store import process_inbox, read_ledger
from feedback_assets.enrichment.entities import EntityCatalog
from feedback_assets.enrichment.diff import ItemPair, alert_changes, compare, render_markdown
from feedback_assets.enrichment.estimate import estimate_classification
from feedback_assets.enrichment.gate import GateConfig, GoldenScore, judge, keep_score, stored_score
from feedback_assets.enrichment.history import latest_version, read_versions, record_version
from feedback_assets.enrichment.identity import ClassifierIdentity, llm_identity, local_identity
from feedback_assets.enrichment.llm import LLMSettings
from feedback_assets.enrichment.prompt import build_prompt
from feedback_assets.enrichment.taxonomy import load_taxonomy
from feedback_assets.enrichment.tokens import count_tokens
from resources.enrichment import EnrichmentResource

DAY = date(2026, 10, 5)
T0 = datetime(2026, 10, 6, 8, tzinfo=UTC)


def test_a_version_records_its_span_of_days_and_the_latest_to_reach_a_window_is_the_current_one(store):
    record_version(store, "local/m/v1", "local", "m", "v1", "t1", "run-1", [DAY, DAY + timedelta(days=9)], now=T0)
    record_version(store, "local/m/v2", "local", "m", "v2", "t2", "run-2", [DAY + timedelta(days=5), DAY + timedelta(days=6)],
                   now=T0 + timedelta(hours=1))
    record_version(store, "local/m/v1", "local", "m", "v1", "t1", "run-3", [DAY + timedelta(days=20)], now=T0 + timedelta(hours=2))
    versions = {v.code_version: v for v in read_versions(store)}
    assert (versions["local/m/v1"].first_day, versions["local/m/v1"].last_day) == (DAY, DAY + timedelta(days=20))
    assert versions["local/m/v1"].first_run_at == T0 and versions["local/m/v1"].last_run_id == "run-3"
    assert latest_version(store, DAY + timedelta(days=5), DAY + timedelta(days=6)).code_version == "local/m/v1"
    assert latest_version(store, DAY + timedelta(days=30), DAY + timedelta(days=31)) is None


def pairs(*moves: tuple[str | None, str | None, int]) -> list[ItemPair]:
    found, n = [], 0
    for old, new, count in moves:
        for _ in range(count):
            found.append(ItemPair(f"f{n:03}", DAY + timedelta(days=n % 3), f"text {n} [link](http://x)", old, new))
            n += 1
    return found


def test_the_diff_counts_every_migration_and_shows_examples_of_the_largest_moves_escaped():
    diff = compare(pairs(("delivery_delay", "delivery_delay", 10), ("refund_or_return_problem", "refund_delay", 4),
                         ("praise_no_issue", "refund_delay", 1), (None, "delivery_delay", 2)), "v1", "v2", top_moves=1)
    assert diff.items_compared == 17 and diff.items_moved == 7
    assert diff.moves[0] == (("refund_or_return_problem", "refund_delay"), 4)
    assert diff.before["refund_delay"] == 0 and diff.after["refund_delay"] == 5 and diff.after["delivery_delay"] == 12
    assert list(diff.examples) == [("refund_or_return_problem", "refund_delay")] and len(diff.examples[diff.moves[0][0]]) == 3
    markdown = render_markdown(diff)
    assert "**7 of 17 items changed label**" in markdown and "| refund_delay | 0 | 5 | +5 |" in markdown
    assert "[link](http" not in markdown and "\\[link\\]" in markdown  # customer text cannot become a link


def test_alert_effects_are_the_series_days_alerting_under_only_one_version():
    before = {("a", DAY), ("b", DAY)}
    after = {("b", DAY), ("c", DAY + timedelta(days=1))}
    assert [(c.series_key, c.change) for c in alert_changes(before, after)] == [("a", "lost"), ("c", "gained")]


def score(version: str, macro: float, **per_label: float) -> GoldenScore:
    return GoldenScore(version, "openai", "gpt-4o-mini", "t", T0, 211, macro, macro, 0.1, per_label,
                       per_label={label: {"precision": f1, "recall": f1, "f1": f1, "support": 4} for label, f1 in per_label.items()})


def test_the_gate_refuses_a_drop_beyond_the_tolerance_and_names_the_worst_hit_labels():
    accepted = {**score("v1", 0.60, a=0.7, b=0.5, c=0.6).as_evaluation()}
    within = judge(score("v2", 0.59, a=0.7, b=0.45, c=0.6), accepted, GateConfig(0.02))
    refused = judge(score("v3", 0.50, a=0.3, b=0.5, c=0.55), accepted, GateConfig(0.02))
    assert within.passed and not refused.passed
    assert [w["label"] for w in refused.worst_labels] == ["a", "c"] and "0.100 below" in refused.reason
    assert judge(score("v1", 0.10), accepted, GateConfig(0.02)).passed  # the accepted version itself
    first = judge(score("v9", 0.10), None, GateConfig(0.02))
    assert first.passed and "feedback taxonomy accept" in first.reason


def test_a_golden_score_is_kept_once_per_version(store):
    kept = score("openai/gpt-4o-mini/v7", 0.5, a=0.5)
    keep_score(store, kept)
    assert stored_score(store, "openai/gpt-4o-mini/v7") == kept
    assert stored_score(store, "openai/gpt-4o-mini/v8") is None


def test_the_identity_names_the_version_the_built_classifier_reports(monkeypatch):
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    taxonomy = load_taxonomy()
    assert EnrichmentResource().identity() == local_identity(taxonomy)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    identity = EnrichmentResource().identity()
    backend = EnrichmentResource().build(EntityCatalog())
    assert (identity.backend, identity.version) == (backend.name, backend.prompt_version)
    assert identity.code_version == backend.code_version == f"openai/gpt-4o-mini/{backend.prompt_version}"
    assert llm_identity(taxonomy, "openai", "gpt-4o").code_version != identity.code_version  # the model is part of it


def test_the_estimate_counts_only_texts_the_cache_lacks_for_this_version(store):
    rows = pa.table({"content_hash": ["h1", "h2", "h2", "h3"], "text_clean": ["late parcel", "runs small", "runs small", "ok"],
                     "rating": [1.0, 2.0, 2.0, 5.0], "channel": ["surveys"] * 4})
    store.write_part(tables.SILVER_FEEDBACK, DAY, "part", rows)
    identity = ClassifierIdentity("openai", "gpt-4o-mini", "v1", "t")
    ClassificationCache(store, "v1", "gpt-4o-mini").store_results({"h1": {"primary_label": "delivery_delay"}})
    prompt = build_prompt(load_taxonomy())
    estimate = estimate_classification(store, identity, DAY, DAY, prompt)
    assert (estimate.items, estimate.distinct_texts, estimate.cached_texts, estimate.texts_to_classify) == (4, 3, 1, 2)
    # Each request carries the whole static prefix and schema: the estimate counts them, per call.
    assert estimate.calls == 1 and estimate.prompt_tokens > count_tokens(prompt.system)
    assert estimate.cost_usd > 0 and estimate.cost_usd_batch == pytest.approx(estimate.cost_usd / 2, abs=1e-4)
    other = estimate_classification(store, ClassifierIdentity("openai", "gpt-4o-mini", "v2", "t"), DAY, DAY, prompt,
                                    LLMSettings(batch_size=1))
    assert other.cached_texts == 0 and other.calls == 3
    unknown = estimate_classification(store, ClassifierIdentity("openai", "my-deployment", "v1", "t"), DAY, DAY, prompt)
    assert unknown.cost_usd is None and "no list price known for my-deployment" in unknown.describe()
    local = estimate_classification(store, ClassifierIdentity("local", "m", "v1", "t"), DAY, DAY, prompt)
    assert local.calls == 0 and local.cost_usd == 0 and "no LLM cost" in local.describe()


def classified(store, ids: list[str]) -> None:
    store.write_part(tables.FEEDBACK_CLASSIFICATIONS, DAY, "part", pa.table({
        "feedback_id": ids, "primary_label": ["delivery_delay"] * len(ids)}))
    store.write_part(tables.SILVER_FEEDBACK, DAY, "part", pa.table({"feedback_id": ids, "text_clean": ["late"] * len(ids)}))


def drop(folder, name: str, text: str, age_seconds: float = 120) -> None:
    path = folder / "inbox" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    stamp = T0.timestamp() - age_seconds
    os.utime(path, (stamp, stamp))


def test_the_inbox_imports_each_settled_file_once_and_moves_it_beside_its_report(store, tmp_path):
    classified(store, ["f1", "f2"])
    triage = tmp_path / "triage"
    drop(triage, "a.csv", "feedback_id,corrected_label\nf1,trust_concern\nf9,trust_concern\n")
    drop(triage, "b.csv", "feedback_id,corrected_label\nf2,trust_concern\n", age_seconds=1)  # still being written
    drop(triage, "c.csv", "not,a,corrections,file\n")
    outcomes = {o.file: o for o in process_inbox(store, triage, T0, settle_seconds=30)}
    assert (outcomes["a.csv"].status, outcomes["a.csv"].accepted, outcomes["a.csv"].rejected_rows) == ("imported", 1, 1)
    assert outcomes["a.csv"].days == [DAY] and any("line 3:" in line for line in outcomes["a.csv"].report)
    assert outcomes["b.csv"].status == "waiting" and (triage / "inbox" / "b.csv").exists()
    assert outcomes["c.csv"].status == "rejected" and len(list((triage / "rejected").glob("*c.csv"))) == 1
    assert [c.feedback_id for c in read_ledger(store)] == ["f1"]
    reports = list((triage / "processed").glob("*a.csv.report.txt"))
    assert len(reports) == 1 and "line 3:" in reports[0].read_text()

    drop(triage, "a-again.csv", "feedback_id,corrected_label\nf1,trust_concern\nf9,trust_concern\n")
    again = {o.file: o for o in process_inbox(store, triage, T0 + timedelta(minutes=5), settle_seconds=30)}
    assert again["a-again.csv"].status == "duplicate" and again["b.csv"].status == "imported"
    assert sorted(c.feedback_id for c in read_ledger(store)) == ["f1", "f2"]


def test_the_inbox_sensor_asks_for_one_ranged_run_over_the_corrected_days(store, feedback_home, monkeypatch):
    from resources.settings import settings
    from sensors.triage import triage_inbox_sensor

    monkeypatch.setenv("FEEDBACK_LANDING_SETTLE_SECONDS", "0")
    settings.cache_clear()
    classified(store, ["f1"])
    drop(feedback_home / "triage", "fix.csv", "feedback_id,corrected_label\nf1,trust_concern\n")
    with dg.instance_for_test() as instance:
        first = triage_inbox_sensor(dg.build_sensor_context(instance=instance, resources={"table_store": store}))
        again = triage_inbox_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor,
                                                            resources={"table_store": store}))
        lost = triage_inbox_sensor(dg.build_sensor_context(instance=instance, resources={"table_store": store}))
    settings.cache_clear()
    [request] = first.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == request.tags["dagster/asset_partition_range_end"] == DAY.isoformat()
    assert not again.run_requests and again.skip_reason
    # A tick whose cursor was lost (it died before its run was requested) asks again, under the same run key.
    assert [r.run_key for r in lost.run_requests] == [request.run_key]


def test_re_classifying_recent_days_by_itself_is_opt_in_and_bounded():
    condition = reclassify_recent(7)
    assert condition.get_label() == "reclassify_last_7_days"
    with pytest.raises(ValueError):
        reclassify_recent(0)


def test_corrections_filed_under_their_days_read_back_whole(store):
    from feedback_assets.enrichment.corrections import Correction
    from feedback_assets.enrichment.corrections_store import corrections_of_days, write_day_parts

    made = [Correction(f"f{n}", DAY + timedelta(days=n % 2), "trust_concern", "delivery_delay", "late", None, "ana",
                       T0, "fix.csv", "ab" * 32, n + 2) for n in range(3)]
    assert write_day_parts(store, [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)], made) == {
        DAY: 2, DAY + timedelta(days=1): 1, DAY + timedelta(days=2): 0}
    assert sorted(corrections_of_days(store, [DAY, DAY + timedelta(days=1)]), key=lambda c: c.line) == made
    write_day_parts(store, [DAY], [])
    assert corrections_of_days(store, [DAY]) == []


def test_labels_follow_a_reclassified_day_that_never_had_corrections():
    """Corrections exist only for days someone corrected: their absence must not hold back the labels."""
    from feedback_assets.automation import when_inputs_change

    days = dg.DailyPartitionsDefinition(start_date="2026-10-01", end_date="2026-10-04")

    @dg.asset(partitions_def=days)
    def classified():
        return None

    @dg.asset(partitions_def=days)
    def corrections():
        return None

    @dg.asset(partitions_def=days, deps=[classified, corrections],
              automation_condition=when_inputs_change(optional=dg.AssetSelection.assets(corrections)))
    def labels():
        return None

    @dg.asset(partitions_def=days, deps=[classified, corrections], automation_condition=when_inputs_change())
    def strict():
        return None

    defs = dg.Definitions(assets=[classified, corrections, labels, strict])
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
        assert dg.materialize([classified], instance=instance, partition_key="2026-10-02").success
        second = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert second.get_requested_partitions(labels.key) == {"2026-10-02"}
    assert second.get_requested_partitions(strict.key) == set()


def test_the_golden_score_counts_an_unanswered_item_as_wrong_and_says_so():
    from feedback_assets.enrichment.gate import score_golden

    taxonomy = load_taxonomy()
    golden = [{"id": f"g{n}", "text": f"text {n}", "primary_label": label, "labels": [label]}
              for n, label in enumerate(["delivery_delay", "delivery_delay", "size_runs_small", "a_label_since_removed"])]

    def classify(items):
        answers = {"g0": "delivery_delay", "g1": "size_runs_small"}
        return [{"id": i.id, "error": "HTTP 500"} if i.id not in answers else
                {"id": i.id, "primary_label": answers[i.id], "labels": [{"label": answers[i.id]}], "confidence": 0.9,
                 "needs_review": False} for i in items]

    score, _ = score_golden(classify, taxonomy, golden, "v", "openai", "m")
    assert score.items == 3 and score.unclassified == 1 and not score.complete  # the removed label is not scored
    assert score.per_label["delivery_delay"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert score.per_label["size_runs_small"]["precision"] == 0.0 and score.accuracy == pytest.approx(1 / 3)


def test_a_golden_score_taken_during_an_outage_judges_nothing_and_is_not_kept(store):
    from dataclasses import replace

    outage = replace(score("v5", 0.05, a=0.1), unclassified=150)
    verdict = judge(outage, {**score("v1", 0.6, a=0.7).as_evaluation()}, GateConfig(0.02))
    assert not verdict.passed and "could not be scored: 150 of 211" in verdict.reason and verdict.worst_labels == []
    keep_score(store, outage)
    assert stored_score(store, "v5") is None  # the next run scores the version again
    assert judge(replace(score("v6", 0.6, a=0.7), unclassified=3), None, GateConfig(0.02)).passed  # 3 of 211 is noise


def test_a_link_dropped_into_the_inbox_is_refused_unread(store, tmp_path):
    triage = tmp_path / "triage"
    (triage / "inbox").mkdir(parents=True)
    secret = tmp_path / "elsewhere.csv"
    secret.write_text("feedback_id,corrected_label\nf1,trust_concern\n")
    (triage / "inbox" / "link.csv").symlink_to(secret)
    [outcome] = process_inbox(store, triage, T0, settle_seconds=0)
    assert outcome.status == "rejected" and "a link" in outcome.report[0] and read_ledger(store) == []
    assert secret.exists()
