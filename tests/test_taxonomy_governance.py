"""Taxonomy governance: checks that report every problem with its place, diffs, and the change log of accepted versions."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from feedback_assets.enrichment.governance import (
    HistoryError,
    check_taxonomy,
    default_history_dir,
    diff_taxonomies,
    last_accepted,
    read_changelog,
    record_acceptance,
    resolve_taxonomy_ref,
    snapshot,
)
from feedback_assets.enrichment.taxonomy import Taxonomy, TaxonomyError, content_version, parse_taxonomy

REPO = Path(__file__).resolve().parents[1]
ACCEPTED_AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

LOGISTICS = {"team": "logistics", "jira_project": "LOG", "slack_channel": "#logistics-ops", "sla_days": 2}
VOICE_OF_CUSTOMER = {"team": "voice-of-customer", "jira_project": "VOC", "slack_channel": "#voice-of-customer",
                     "sla_days": 10}


def taxonomy_document() -> dict:
    """A small valid taxonomy: two domains, the labels the code relies on among them."""
    return {
        "version_note": "test taxonomy",
        "domains": {
            "delivery_fulfillment": {
                "owner": dict(LOGISTICS),
                "labels": {
                    "delivery_delay": {"description": "The order arrived late.",
                                       "examples": ["Promised Tuesday, still not here.", "Tracking stuck for days."]},
                    "damaged_in_transit": {"description": "The parcel was damaged during shipping.",
                                           "examples": ["Box was crushed.", "Package arrived soaked."]},
                },
            },
            "other": {
                "owner": dict(VOICE_OF_CUSTOMER),
                "labels": {
                    "praise_no_issue": {"description": "Positive feedback with no problem to fix.",
                                        "examples": ["Love it.", "Great quality, thanks!"]},
                    "other_unclear": {"description": "Too vague to act on.", "examples": ["Meh.", "Bought it for my sister."]},
                },
            },
        },
    }


def as_yaml(document: dict) -> bytes:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode()


def taxonomy_of(document: dict) -> Taxonomy:
    return parse_taxonomy(as_yaml(document))


def changed(edit) -> dict:
    document = copy.deepcopy(taxonomy_document())
    edit(document)
    return document


def labels_of(document: dict, domain: str) -> dict:
    return document["domains"][domain]["labels"]


def accept(history: Path, raw: bytes, **overrides) -> None:
    arguments = {"accepted_by": "analyst@example.com", "note": "", "evaluation": {}, "accepted_at": ACCEPTED_AT}
    record_acceptance(history, raw, **{**arguments, **overrides})


class TestChecks:
    def test_the_real_taxonomy_passes_every_check(self):
        assert check_taxonomy((REPO / "prompts" / "taxonomy.yaml").read_bytes()) == []

    def test_the_small_valid_taxonomy_passes_every_check(self):
        assert check_taxonomy(as_yaml(taxonomy_document())) == []

    def test_every_problem_of_a_broken_taxonomy_is_reported_with_its_place(self):
        def break_it(document):
            document["domain_notes"] = "typo for version_note"
            document["domains"]["delivery_fulfillment"]["owner"] = {
                "jira_project": "log", "slack_channel": "logistics-ops", "sla_days": 0}
            delivery = labels_of(document, "delivery_fulfillment")
            delivery["delivery_delay"]["exmaples"] = delivery["delivery_delay"].pop("examples")
            delivery["damaged_in_transit"] = {"description": "x" * 401, "examples": ["Box was crushed.", "  "]}
            other = labels_of(document, "other")
            other["delivery_delay"] = {"description": "Late.", "examples": ["Where is it?", "Still waiting."]}
            other["Other-Unclear"] = other.pop("other_unclear")
            other["praise_no_issue"]["examples"] = ["Love it.", "box was  crushed."]

        problems = check_taxonomy(as_yaml(changed(break_it)))

        delivery, other = "domains.delivery_fulfillment", "domains.other"
        expected = {
            "domain_notes": "unknown key 'domain_notes'",
            f"{delivery}.owner.team": "no team",
            f"{delivery}.owner.jira_project": "'log' is not a Jira project key",
            f"{delivery}.owner.slack_channel": "'logistics-ops' is not a Slack channel",
            f"{delivery}.owner.sla_days": "whole number of 1 or more",
            f"{delivery}.labels.delivery_delay.exmaples": "did you mean 'examples'?",
            f"{delivery}.labels.delivery_delay.examples": "at least two examples",
            f"{delivery}.labels.damaged_in_transit.description": "has 401 characters",
            f"{delivery}.labels.damaged_in_transit.examples[1]": "non-empty",
            f"{other}.labels.delivery_delay": "also defined in domain 'delivery_fulfillment'",
            f"{other}.labels.Other-Unclear": "must be snake_case",
            f"{other}.labels.praise_no_issue.examples[1]": f"already used at {delivery}.labels.damaged_in_transit.examples[0]",
            "domains": "'other_unclear' is missing",
        }
        assert sorted(problem.where for problem in problems) == sorted(expected)
        for problem in problems:
            assert expected[problem.where] in problem.message, problem

    def test_yaml_that_does_not_parse_is_reported_with_its_line_and_column(self):
        [problem] = check_taxonomy(b"domains:\n  other: [unclosed\n", source="prompts/taxonomy.yaml")
        assert problem.where == "prompts/taxonomy.yaml:3:1"
        assert "not valid YAML" in problem.message

    def test_a_document_without_domains_is_reported(self):
        assert [(p.where, "'domains'" in p.message) for p in check_taxonomy(b"version_note: empty\n")] == [("domains", True)]

    def test_a_document_that_is_not_a_mapping_is_reported(self):
        assert [p.where for p in check_taxonomy(b"- delivery_delay\n- other_unclear\n")] == ["(document)"]

    def test_a_domain_that_is_not_a_mapping_is_reported(self):
        document = changed(lambda d: d["domains"].update(returns="refund problems"))
        [problem] = check_taxonomy(as_yaml(document))
        assert problem.where == "domains.returns" and "must be a mapping" in problem.message

    def test_a_domain_without_owner_or_labels_is_reported(self):
        document = changed(lambda d: d["domains"].update(returns={"labels": {}}))
        problems = {problem.where: problem.message for problem in check_taxonomy(as_yaml(document))}
        assert set(problems) == {"domains.returns.owner", "domains.returns.labels"}
        assert "no owner" in problems["domains.returns.owner"] and "no labels" in problems["domains.returns.labels"]

    @pytest.mark.parametrize("sla_days", [0, -3, "2", 1.5, True, None])
    def test_an_sla_that_is_not_a_positive_whole_number_of_days_is_reported(self, sla_days):
        document = changed(lambda d: d["domains"]["other"]["owner"].update(sla_days=sla_days))
        assert [p.where for p in check_taxonomy(as_yaml(document))] == ["domains.other.owner.sla_days"]

    def test_an_unknown_owner_key_is_reported_with_the_key_it_resembles(self):
        document = changed(lambda d: d["domains"]["other"]["owner"].update(slack_chanel="#voc"))
        [problem] = check_taxonomy(as_yaml(document))
        assert problem.where == "domains.other.owner.slack_chanel" and "did you mean 'slack_channel'?" in problem.message

    def test_a_label_written_twice_in_one_domain_is_reported_with_its_line(self):
        raw = as_yaml(taxonomy_document()) + b"      other_unclear: {description: Again., examples: [a b, c d]}\n"
        last_line = len(raw.splitlines())
        [problem] = check_taxonomy(raw, source="taxonomy.yaml")
        assert problem.where == f"taxonomy.yaml:{last_line}:7" and "appears twice" in problem.message

    def test_parse_taxonomy_raises_one_taxonomy_error_listing_every_problem_one_per_line(self):
        def break_it(document):
            document["domains"]["other"]["owner"]["slack_channel"] = "voice"
            del labels_of(document, "other")["praise_no_issue"]

        with pytest.raises(TaxonomyError) as raised:
            parse_taxonomy(as_yaml(changed(break_it)), "prompts/taxonomy.yaml")
        assert isinstance(raised.value, ValueError)
        assert [problem.where for problem in raised.value.problems] == ["domains.other.owner.slack_channel", "domains"]
        heading, *lines = str(raised.value).splitlines()
        assert heading == "prompts/taxonomy.yaml is not a valid taxonomy (2 problems):"
        assert lines == [f"  {problem}" for problem in raised.value.problems]

    def test_a_valid_taxonomy_parses_with_its_content_version(self):
        raw = as_yaml(taxonomy_document())
        taxonomy = parse_taxonomy(raw)
        assert taxonomy.version == content_version(raw)
        assert taxonomy.domain_of("delivery_delay") == "delivery_fulfillment"
        assert taxonomy.labels["other_unclear"].owner.jira_project == "VOC"


class TestDiff:
    def test_adding_a_label_is_reported_as_exactly_that_and_is_not_breaking(self):
        new = changed(lambda d: labels_of(d, "other").update(size_true_to_fit={
            "description": "The size is as labelled.", "examples": ["Fits as expected.", "True to size."]}))
        diff = diff_taxonomies(taxonomy_of(taxonomy_document()), taxonomy_of(new))
        assert diff.added_labels == {"size_true_to_fit": "other"}
        assert not (diff.removed_labels or diff.moved_labels or diff.description_changes or diff.example_changes
                    or diff.owner_changes or diff.added_domains or diff.removed_domains)
        assert not diff.is_empty and not diff.breaking
        assert diff.summary() == "+1 label (size_true_to_fit)"
        assert "+ label size_true_to_fit in other" in diff.render_text()
        assert "BREAKING" not in diff.render_text() and "breaking" not in diff.render_markdown()

    def test_removing_a_label_is_breaking_and_flagged_in_both_renderings(self):
        new = changed(lambda d: labels_of(d, "delivery_fulfillment").pop("damaged_in_transit"))
        diff = diff_taxonomies(taxonomy_of(taxonomy_document()), taxonomy_of(new))
        assert diff.removed_labels == {"damaged_in_transit": "delivery_fulfillment"} and diff.breaking
        assert diff.summary() == "BREAKING: -1 label (damaged_in_transit)"
        [line] = [line for line in diff.render_text().splitlines() if "damaged_in_transit from" in line]
        assert line.strip().startswith("- label") and "BREAKING" in line
        [item] = [line for line in diff.render_markdown().splitlines() if "`damaged_in_transit`" in line]
        assert "**breaking**" in item

    def test_moving_a_label_to_another_domain_is_breaking(self):
        def move(document):
            labels_of(document, "other")["delivery_delay"] = labels_of(document, "delivery_fulfillment").pop("delivery_delay")

        diff = diff_taxonomies(taxonomy_of(taxonomy_document()), taxonomy_of(changed(move)))
        [moved] = diff.moved_labels
        assert (moved.label, moved.old_domain, moved.new_domain) == ("delivery_delay", "delivery_fulfillment", "other")
        assert diff.breaking and not diff.added_labels and not diff.removed_labels
        assert "1 label moved (delivery_delay)" in diff.summary()

    def test_an_owner_change_is_reported_with_its_domain_field_and_both_values(self):
        new = changed(lambda d: d["domains"]["delivery_fulfillment"]["owner"].update(sla_days=3))
        diff = diff_taxonomies(taxonomy_of(taxonomy_document()), taxonomy_of(new))
        [change] = diff.owner_changes
        assert (change.domain, change.field, change.old, change.new) == ("delivery_fulfillment", "sla_days", 2, 3)
        assert not diff.breaking
        assert diff.summary() == "1 owner field changed (delivery_fulfillment.sla_days)"
        assert "owner of delivery_fulfillment: sla_days 2 → 3" in diff.render_text()

    def test_description_and_example_edits_are_listed_per_label_with_old_and_new(self):
        def edit(document):
            delay = labels_of(document, "delivery_fulfillment")["delivery_delay"]
            delay["description"] = "The order arrived after the promised date."
            delay["examples"] = ["Tracking stuck for days.", "Two weeks late."]

        diff = diff_taxonomies(taxonomy_of(taxonomy_document()), taxonomy_of(changed(edit)))
        [description] = diff.description_changes
        assert (description.old, description.new) == ("The order arrived late.", "The order arrived after the promised date.")
        [examples] = diff.example_changes
        assert (examples.label, examples.added, examples.removed) == (
            "delivery_delay", ("Two weeks late.",), ("Promised Tuesday, still not here.",))
        assert diff.summary() == "1 description changed, examples changed for 1 label"
        assert '"The order arrived late." → "The order arrived after the promised date."' in diff.render_markdown()

    def test_added_and_removed_domains_are_listed(self):
        def regroup(document):
            document["domains"]["logistics"] = document["domains"].pop("delivery_fulfillment")

        diff = diff_taxonomies(taxonomy_of(taxonomy_document()), taxonomy_of(changed(regroup)))
        assert diff.added_domains == ("logistics",) and diff.removed_domains == ("delivery_fulfillment",)
        assert {move.label for move in diff.moved_labels} == {"delivery_delay", "damaged_in_transit"} and diff.breaking

    def test_reordering_examples_or_editing_comments_is_no_change(self):
        def reorder(document):
            labels_of(document, "other")["other_unclear"]["examples"].reverse()

        raw = b"# analysts' comment\n" + as_yaml(changed(reorder))
        diff = diff_taxonomies(taxonomy_of(taxonomy_document()), parse_taxonomy(raw))
        assert diff.is_empty and not diff.breaking and diff.summary() == "no changes"


class TestChangeLog:
    def test_record_read_and_last_accepted_round_trip_with_the_exact_bytes(self, tmp_path):
        history = tmp_path / "taxonomy_history"
        raw = b"# comments and layout are kept byte for byte\n" + as_yaml(taxonomy_document())
        entry = record_acceptance(history, raw, accepted_by="  ana@example.com ", note="baseline\nfor the tests",
                                  evaluation={"local": {"macro_f1": 0.71}},
                                  accepted_at=datetime(2026, 3, 2, 10, 30, tzinfo=timezone(timedelta(hours=1))))
        assert entry.taxonomy_version == content_version(raw) and entry.previous_version is None
        assert entry.accepted_by == "ana@example.com" and entry.accepted_at.utcoffset() == timedelta(0)
        assert entry.summary == "baseline: 4 labels in 2 domains"
        assert read_changelog(history) == [entry] and last_accepted(history) == entry
        assert snapshot(history, entry.taxonomy_version) == raw
        line = json.loads((history / "changelog.jsonl").read_text())
        assert line["accepted_at"] == "2026-03-02T09:30:00+00:00" and line["evaluation"] == {"local": {"macro_f1": 0.71}}

    def test_the_next_acceptance_records_its_predecessor_and_the_diff_summary(self, tmp_path):
        accept(tmp_path, as_yaml(taxonomy_document()))
        first = last_accepted(tmp_path)
        new = as_yaml(changed(lambda d: labels_of(d, "other").update(size_true_to_fit={
            "description": "The size is as labelled.", "examples": ["Fits as expected.", "True to size."]})))
        accept(tmp_path, new, note="split fit feedback", evaluation={"llm": {"macro_f1": 0.8}})
        second = last_accepted(tmp_path)
        assert second.previous_version == first.taxonomy_version != second.taxonomy_version
        assert second.summary == "+1 label (size_true_to_fit)" and second.note == "split fit feedback"
        assert snapshot(tmp_path, first.taxonomy_version) == as_yaml(taxonomy_document())
        assert snapshot(tmp_path, second.taxonomy_version) == new

    def test_accepting_the_same_version_again_appends_an_entry_for_the_other_scores(self, tmp_path):
        raw = as_yaml(taxonomy_document())
        accept(tmp_path, raw, evaluation={"local": {"macro_f1": 0.7}})
        accept(tmp_path, raw, evaluation={"llm": {"macro_f1": 0.9}})
        first, second = read_changelog(tmp_path)
        assert first.taxonomy_version == second.taxonomy_version == second.previous_version
        assert second.summary == "no changes" and second.evaluation == {"llm": {"macro_f1": 0.9}}
        assert {path.name for path in tmp_path.iterdir()} == {"changelog.jsonl", f"{first.taxonomy_version}.yaml"}

    def test_an_invalid_taxonomy_is_refused_and_nothing_is_written(self, tmp_path):
        broken = as_yaml(changed(lambda d: labels_of(d, "other").pop("praise_no_issue")))
        with pytest.raises(TaxonomyError, match="praise_no_issue"):
            accept(tmp_path / "history", broken)
        assert not (tmp_path / "history").exists()

    @pytest.mark.parametrize(("overrides", "message"), [
        ({"accepted_by": "   "}, "must name who"),
        ({"accepted_by": "a" * 101}, "at most 100"),
        ({"accepted_by": "ana\nforged entry"}, "control characters"),
        ({"accepted_by": "ana\u202eevil"}, "control characters"),
        ({"note": "n" * 1_001}, "at most 1000"),
        ({"note": "bell\x07"}, "control characters"),
        ({"evaluation": {"macro_f1": float("nan")}}, "plain JSON"),
        ({"accepted_at": datetime(2026, 3, 2, 9, 30)}, "time zone"),
    ])
    def test_who_why_when_and_scores_are_validated_before_anything_is_written(self, tmp_path, overrides, message):
        with pytest.raises(ValueError, match=message):
            accept(tmp_path / "history", as_yaml(taxonomy_document()), **overrides)
        assert not (tmp_path / "history").exists()

    def test_a_malformed_changelog_line_raises_an_error_naming_the_line(self, tmp_path):
        accept(tmp_path, as_yaml(taxonomy_document()))
        with (tmp_path / "changelog.jsonl").open("a") as log:
            log.write('{"taxonomy_version": "not-a-version"}\n')
        with pytest.raises(HistoryError, match=r"changelog\.jsonl:2: .*missing previous_version"):
            read_changelog(tmp_path)

    def test_a_line_that_is_not_json_is_named_too(self, tmp_path):
        (tmp_path / "changelog.jsonl").write_text("\n{oops\n")
        with pytest.raises(HistoryError, match=r"changelog\.jsonl:2: not a change-log entry"):
            last_accepted(tmp_path)

    def test_a_missing_history_folder_has_no_entries_and_no_snapshots(self, tmp_path):
        assert read_changelog(tmp_path / "absent") == [] and last_accepted(tmp_path / "absent") is None
        assert snapshot(tmp_path / "absent", "0123456789ab") is None

    def test_an_entry_appended_after_a_hand_edit_without_final_newline_stays_on_its_own_line(self, tmp_path):
        accept(tmp_path, as_yaml(taxonomy_document()))
        log = tmp_path / "changelog.jsonl"
        log.write_text(log.read_text().rstrip("\n"))
        accept(tmp_path, as_yaml(taxonomy_document()))
        assert len(read_changelog(tmp_path)) == 2

    def test_a_snapshot_edited_after_acceptance_is_refused(self, tmp_path):
        accept(tmp_path, as_yaml(taxonomy_document()))
        version = last_accepted(tmp_path).taxonomy_version
        (tmp_path / f"{version}.yaml").write_bytes(as_yaml(taxonomy_document()) + b"# edited\n")
        with pytest.raises(HistoryError, match="edited after it was accepted"):
            snapshot(tmp_path, version)

    def test_a_snapshot_name_must_be_a_version_not_a_path(self, tmp_path):
        with pytest.raises(HistoryError, match="not a taxonomy version"):
            snapshot(tmp_path, "../taxonomy")

    def test_the_default_history_lives_in_the_prompts_folder(self, tmp_path, monkeypatch):
        monkeypatch.setenv("FEEDBACK_PROMPTS_DIR", str(tmp_path))
        assert default_history_dir() == tmp_path / "taxonomy_history"


def colliding_taxonomies(prefix_chars: int) -> tuple[bytes, bytes]:
    """Two valid taxonomies, differing in a comment, whose versions share their first `prefix_chars` characters."""
    base, seen = as_yaml(taxonomy_document()), {}
    for number in range(1_000_000):
        raw = base + f"# variant {number}\n".encode()
        prefix = content_version(raw)[:prefix_chars]
        if prefix in seen:
            return seen[prefix], raw
        seen[prefix] = raw
    raise AssertionError("no collision found")


class TestResolveRefs:
    @pytest.fixture
    def history(self, tmp_path) -> Path:
        history = tmp_path / "taxonomy_history"
        accept(history, as_yaml(taxonomy_document()))
        accept(history, as_yaml(changed(lambda d: d["domains"]["other"]["owner"].update(sla_days=5))))
        return history

    def test_a_version_or_a_unique_prefix_of_six_resolves_to_its_snapshot(self, history, tmp_path):
        first, second = read_changelog(history)
        raw = as_yaml(taxonomy_document())
        assert resolve_taxonomy_ref(first.taxonomy_version, history, tmp_path / "x.yaml") == (first.taxonomy_version, raw)
        assert resolve_taxonomy_ref(first.taxonomy_version[:6], history, tmp_path / "x.yaml") == (first.taxonomy_version, raw)
        assert resolve_taxonomy_ref(second.taxonomy_version[:8], history, tmp_path / "x.yaml")[0] == second.taxonomy_version

    def test_current_is_the_working_file_and_accepted_the_last_accepted_version(self, history, tmp_path):
        working = tmp_path / "taxonomy.yaml"
        working.write_bytes(b"# being edited\n" + as_yaml(taxonomy_document()))
        assert resolve_taxonomy_ref("current", history, working) == (content_version(working.read_bytes()),
                                                                     working.read_bytes())
        version, raw = resolve_taxonomy_ref("accepted", history, working)
        assert version == last_accepted(history).taxonomy_version and content_version(raw) == version

    def test_a_path_to_a_yaml_file_resolves_to_its_bytes(self, history, tmp_path):
        proposal = tmp_path / "proposal.yaml"
        proposal.write_bytes(b"domains: {}\n")
        assert resolve_taxonomy_ref(str(proposal), history, tmp_path / "x.yaml") == (
            content_version(b"domains: {}\n"), b"domains: {}\n")

    def test_an_unknown_ref_is_refused_with_the_known_versions(self, history, tmp_path):
        first, second = read_changelog(history)
        with pytest.raises(HistoryError) as raised:
            resolve_taxonomy_ref("ffffffffffff", history, tmp_path / "x.yaml")
        message = str(raised.value)
        assert "unknown taxonomy ref 'ffffffffffff'" in message
        assert f"{second.taxonomy_version}, {first.taxonomy_version}" in message

    def test_a_prefix_shorter_than_six_is_not_taken_for_a_version(self, history, tmp_path):
        first, _ = read_changelog(history)
        with pytest.raises(HistoryError, match="at least 6 characters"):
            resolve_taxonomy_ref(first.taxonomy_version[:5], history, tmp_path / "x.yaml")

    def test_an_ambiguous_prefix_is_refused_with_the_versions_it_matches(self, tmp_path):
        one, other = colliding_taxonomies(6)
        accept(tmp_path, one)
        accept(tmp_path, other)
        prefix = content_version(one)[:6]
        with pytest.raises(HistoryError, match="ambiguous") as raised:
            resolve_taxonomy_ref(prefix, tmp_path, tmp_path / "x.yaml")
        assert content_version(one) in str(raised.value) and content_version(other) in str(raised.value)
        assert resolve_taxonomy_ref(content_version(other), tmp_path, tmp_path / "x.yaml") == (content_version(other), other)

    def test_accepted_without_any_acceptance_is_an_error(self, tmp_path):
        with pytest.raises(HistoryError, match="no taxonomy version has been accepted"):
            resolve_taxonomy_ref("accepted", tmp_path / "empty", tmp_path / "x.yaml")

    def test_current_when_the_working_file_is_missing_is_an_error(self, tmp_path):
        with pytest.raises(HistoryError, match="cannot read the current taxonomy"):
            resolve_taxonomy_ref("current", tmp_path, tmp_path / "missing.yaml")


class TestSeededHistory:
    HISTORY = REPO / "prompts" / "taxonomy_history"

    def test_the_history_starts_with_the_maintainers_baseline_scored_by_the_local_classifier(self):
        baseline = read_changelog(self.HISTORY)[0]
        assert baseline.previous_version is None and baseline.note.startswith("baseline taxonomy")
        assert baseline.accepted_by == "feedback-to-fix maintainers" and baseline.evaluation["local"]["macro_f1"] > 0.5

    def test_the_last_accepted_local_score_is_of_the_classifier_this_code_runs(self):
        """Changing the taxonomy, the prototypes or the local parameters needs a deliberate `feedback taxonomy accept`."""
        from resources.enrichment import EnrichmentResource

        accepted = [e.evaluation["local"] for e in read_changelog(self.HISTORY) if "local" in e.evaluation]
        assert accepted[-1]["code_version"] == EnrichmentResource(backend="local").identity().code_version

    def test_every_recorded_snapshot_holds_the_bytes_of_its_version_and_still_parses(self):
        entries = read_changelog(self.HISTORY)
        previous = None
        for entry in entries:
            raw = (self.HISTORY / f"{entry.taxonomy_version}.yaml").read_bytes()
            assert content_version(raw) == entry.taxonomy_version
            assert parse_taxonomy(raw).version == entry.taxonomy_version
            assert entry.previous_version == previous
            previous = entry.taxonomy_version
