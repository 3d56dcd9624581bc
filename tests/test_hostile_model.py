"""The whole pipeline behind a plausible but hostile model: nothing it says becomes a key, a quote or a payload.

The prepared demo's weeks around its planted incidents are classified again through the LLM path,
against a loopback OpenAI-compatible server that serves chat only (no embeddings) and answers like
`tests/hostile_model.py`: believable labels, attack strings in every free-text field, invented and huge entities, and schema breaks at a
15% rate. Then themes, gold and alert dispatch run as usual. The promise, checked on the result:
0 attack strings in any sink, 0 untrusted values as series keys, 0 items lost, 0 labels outside the
enum or owners outside the taxonomy, every evidence quote a quote, and the planted incidents still
alert on their true keys within a day.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import date, timedelta

import dagster as dg
import pytest

from feedback_assets import tables
from feedback_assets.alerts.evidence import AlertContext, build_alert
from feedback_assets.alerts.render import jira_comment, jira_description
from feedback_assets.alerts.replay import replay_alerts
from feedback_assets.enrichment.evidence import normalized

from feedback_assets.enrichment.taxonomy import load_taxonomy

from feedback_assets.landing.mapping import FEEDBACK_CHANNELS
from feedback_assets.pipeline import materialize_range
from feedback_assets.sample_data.incidents import fired_alerts, score_alerts
from resources.slack import SlackOutbox
from resources.table_store import LocalParquetTableStore
from resources.tickets import LocalTicketStore
from tests.conftest import settings_for
from tests.hostile_model import ATTACK_STRINGS, MARKER, HostileModel
from tests.loopback_openai import DEFAULT_API_KEY, LoopbackOpenAI

UI = "http://127.0.0.1:3000"
TAXONOMY = load_taxonomy()


# The weeks around the planted incidents are classified again: every onset, and a week either side.
AROUND_INCIDENTS = timedelta(days=7)


def _table(store: LocalParquetTableStore, table: str, days: list[date] | None = None) -> list[dict]:
    rows = []
    for day in store.partition_days(table):
        if days is None or day in days:
            part = store.read_parts(table, [day])
            rows += [{**row, "feedback_date": day} for row in part.to_pylist()]
    return rows


def _days_around_incidents(manifest: dict, available: list[date]) -> list[date]:
    onsets = [date.fromisoformat(incident["onset"]) for incident in manifest["incidents"]]
    return [day for day in available if min(onsets) - AROUND_INCIDENTS <= day <= max(onsets) + AROUND_INCIDENTS]


@pytest.fixture(scope="module")
def hostile(demo_home, tmp_path_factory, spark):
    home = tmp_path_factory.mktemp("hostile") / "feedback_home"
    # Everything but the alert ledger (a replay of the demo may have written it): this run dispatches afresh.
    shutil.copytree(demo_home / "warehouse", home / "warehouse", ignore=shutil.ignore_patterns("alerting"))
    shutil.copytree(demo_home / "sample", home / "sample")
    store = LocalParquetTableStore(root=str(home / "warehouse"))
    reference = {row["content_hash"]: row for row in _table(store, tables.FEEDBACK_CLASSIFICATIONS)}
    manifest = json.loads((home / "sample" / "manifest.json").read_text())
    days = _days_around_incidents(manifest, store.partition_days(tables.SILVER_FEEDBACK))
    model = HostileModel(reference, break_rate=0.15)
    with pytest.MonkeyPatch.context() as env, LoopbackOpenAI(model, serve_embeddings=False) as server:
        for name in ("AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY", "OPENAI_EMBEDDING_MODEL", "FEEDBACK_EMBEDDINGS"):
            env.delenv(name, raising=False)
        env.setenv("OPENAI_API_KEY", DEFAULT_API_KEY)
        env.setenv("OPENAI_BASE_URL", server.base_url)
        with dg.instance_for_test() as instance:
            result = materialize_range(settings_for(home), days[0], days[-1], ["enrichment", "gold"], instance)
        calls, embedding_requests = server.calls, sum("/embeddings" in r["path"] for r in server.requests)
    assert result.success
    tickets, slack = LocalTicketStore(home / "tickets"), SlackOutbox(home / "slack_outbox.jsonl")
    outcomes = replay_alerts(store, tickets, slack, AlertContext("hostile-run", UI))
    checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    summary = {"days": len(days), "items": len(_table(store, tables.SILVER_FEEDBACK, days)),
               "calls": calls, "attack_strings_sent": model.attacks_sent,
               "invented_entities_sent": model.invented_entities_sent, "schema_breaks": dict(model.breaks),
               "dead_letters": len(_table(store, tables.CLASSIFICATION_DEAD_LETTERS)), "alerts": len(outcomes)}
    print("hostile model run:", json.dumps(summary, sort_keys=True))
    return {"store": store, "home": home, "days": days, "model": model, "outcomes": outcomes, "tickets": tickets,
            "slack": slack, "checks": checks, "embedding_requests": embedding_requests, "summary": summary}


def test_the_hostile_model_really_attacked(hostile):
    model = hostile["model"]
    # Every item answered carries at least four attack strings (a label's evidence, three in the summary).
    assert model.attacks_sent >= 4 * hostile["summary"]["items"] > 10_000
    assert model.invented_entities_sent > hostile["summary"]["items"]
    assert set(model.breaks) == {"out_of_enum_label", "foreign_owner", "out_of_range", "string_number", "label_twice",
                                 "primary_not_in_labels", "duplicate_id", "unasked_id", "yes_boolean"}
    assert hostile["checks"]["classifier_answers_usable"] and hostile["checks"]["every_item_accounted_for"]


def test_no_item_is_lost_and_no_row_holds_a_label_or_owner_the_taxonomy_does_not(hostile):
    store = hostile["store"]
    silver = {r["feedback_id"]: r for r in _table(store, tables.SILVER_FEEDBACK, hostile["days"])}
    classified = _table(store, tables.FEEDBACK_CLASSIFICATIONS, hostile["days"])
    dead = _table(store, tables.CLASSIFICATION_DEAD_LETTERS, hostile["days"])
    assert sorted(r["feedback_id"] for r in classified + dead) == sorted(silver)
    assert len(dead) < 0.01 * len(silver)
    owners = {label.owner.team for label in TAXONOMY.labels.values()}
    for row in classified:
        assert row["backend"] == "openai"
        assert row["primary_label"] in TAXONOMY.labels and row["suggested_owner"] in owners
        assert all(l["label"] in TAXONOMY.labels for l in row["labels"])


def test_every_evidence_quote_is_the_customers_own_words(hostile):
    store = hostile["store"]
    texts = {r["feedback_id"]: r["text_clean"] for r in _table(store, tables.SILVER_FEEDBACK, hostile["days"])}
    for row in _table(store, tables.FEEDBACK_CLASSIFICATIONS, hostile["days"]):
        for assignment in row["labels"]:
            assert assignment["evidence_origin"] == "fallback"  # the hostile model never quoted
            assert normalized(assignment["evidence"]) in normalized(texts[row["feedback_id"]])


def _known_values(store: LocalParquetTableStore) -> dict[str, set[str]]:
    silver, orders = _table(store, tables.SILVER_FEEDBACK), _table(store, tables.ORDERS)
    catalog = {r["sku"] for r in _table(store, tables.SKU_CATALOG)}
    return {
        "sku": catalog, "region": {r["region"] for r in orders} | {r["region"] for r in silver},
        "carrier": {r["carrier"] for r in orders}, "channel": set(FEEDBACK_CHANNELS),
        "platform": {r["platform"] for r in silver}, "app_version": {r["app_version"] for r in silver},
    }


def test_no_untrusted_value_becomes_a_series_breach_or_run_key(hostile):
    store = hostile["store"]
    known = _known_values(store)
    velocity = _table(store, tables.COMPLAINT_VELOCITY, hostile["days"])
    assert velocity
    for row in velocity:
        assert row["value"] in known[row["dimension"]], row["series_key"]
        assert len(row["series_key"]) <= 120 and MARKER not in row["series_key"]
    keys = {row["series_key"] for row in velocity}
    for outcome in hostile["outcomes"]:
        series, _, day = outcome.breach_key.rpartition("@")
        assert series in keys and date.fromisoformat(day)
    carriers = {row["value"] for row in velocity if row["dimension"] == "carrier"}
    assert carriers <= known["carrier"] and "FedEx" in carriers


def test_the_planted_incidents_still_alert_on_their_true_keys_within_a_day(hostile):
    home = hostile["home"]
    manifest = json.loads((home / "sample" / "manifest.json").read_text())
    alerts, series_weeks = fired_alerts(hostile["store"])
    domains = {label.id: label.domain for label in TAXONOMY.labels.values()}
    score = score_alerts(manifest, alerts, series_weeks, domains)
    late = {incident: delay for incident, delay in score.detection_delay.items() if delay is None or delay > 1}
    assert not late, f"incidents missed or late: {late}"
    assert any(a.dimension == "carrier" and a.value == "FedEx" for a in alerts)


_OUR_SLACK_LINK = re.compile(r"<%s/[^|<>]*\|[^<>]*>" % re.escape(UI))
_SLACK_LIVE = re.compile(r"<|@(?:channel|here|everyone)\b|://|\b[0-9A-Za-z]+\.[A-Za-z]{2,}\b")
_OUR_JIRA_LINK = re.compile(r"\[Dagster asset\|%s/[^\]\s]*\]" % re.escape(UI))
_JIRA_LIVE = re.compile(r"(?<!\\)\[[^\]]*\|[^\]]*\]|(?<!\\)\[~|(?<!\\)\{(?:code|html|color|panel)|(?<!\\)![^!\s]+!")
# Our own links: the Dagster UI, and the ticket's chart beside it (named by the ticket key, never by customer text).
_MARKDOWN_LIVE = re.compile(r"\]\((?!%s|[A-Z]+-\d+\.png\)\n)|<(?:script|img|a|iframe)\b" % re.escape(UI), re.IGNORECASE)


def _slack_texts(message: dict) -> list[str]:
    texts = [message["text"]]
    for block in message["blocks"]:
        if block["type"] in ("section", "header"):
            texts += [block["text"]["text"]] if "text" in block else []
            texts += [field["text"] for field in block.get("fields", [])]
        elif block["type"] == "context":
            texts += [element["text"] for element in block["elements"]]
    return texts


def test_no_attack_string_reaches_a_sink_and_every_sink_stays_inert(hostile):
    messages = hostile["slack"].messages()
    tickets = hostile["tickets"].tickets()
    assert messages and tickets
    for message in messages:
        for text in _slack_texts(message):
            assert MARKER not in text
            assert not _SLACK_LIVE.search(_OUR_SLACK_LINK.sub("", text)), text
    for ticket in tickets:
        body = hostile["tickets"].path_of(ticket["key"]).read_text()
        assert MARKER not in body and MARKER not in ticket["summary"]
        assert not _MARKDOWN_LIVE.search(body)
    store, context = hostile["store"], AlertContext("hostile-run", UI)
    for outcome in hostile["outcomes"]:
        series, _, day = outcome.breach_key.rpartition("@")
        alert = build_alert(store, series, date.fromisoformat(day), context)
        for wiki in (jira_description(alert, date.fromisoformat(day) + timedelta(days=3)), jira_comment(alert)):
            assert MARKER not in wiki
            assert not _JIRA_LIVE.search(_OUR_JIRA_LINK.sub("", wiki)), wiki
        assert MARKER not in alert.support_macro and all(MARKER not in q for q in alert.quotes)
        assert all(MARKER not in t for t in alert.themes)


def test_a_chat_only_server_did_not_break_themes(hostile):
    assert hostile["embedding_requests"] == 0
    themes = _table(hostile["store"], tables.FEEDBACK_THEMES, hostile["days"])
    assert themes and all(MARKER not in (t["theme_name"] or "") for t in themes)


def test_the_attack_strings_are_live_when_raw():
    """The detectors above must catch the attacks themselves, or the checks prove nothing."""
    joined = " ".join(ATTACK_STRINGS)
    assert _SLACK_LIVE.search(joined) and _JIRA_LIVE.search(joined) and _MARKDOWN_LIVE.search(joined)
