"""Taxonomy governance: checks an analyst can act on, the diff between two versions, and the log of accepted ones.

Label ids are a stable API (tickets, alerts and gold series key on them), so a change to
prompts/taxonomy.yaml is checked, diffed against the last accepted version and, once accepted,
recorded in a history folder: `<version>.yaml` keeps the exact accepted bytes and `changelog.jsonl`
one JSON line per acceptance (who, when, why, the diff summary and the caller's evaluation scores).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from feedback_assets.enrichment.taxonomy import (
    Owner,
    Problem,
    Taxonomy,
    content_version,
    parse_taxonomy,
    prompts_dir,
)

ID_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,63}")
JIRA_PROJECT_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{1,9}")
SLACK_CHANNEL_PATTERN = re.compile(r"#[a-z0-9][a-z0-9_-]{0,79}")
DESCRIPTION_MAX_CHARS = 400
MIN_EXAMPLES = 2
# Labels the code names itself (the prompt's rules, the review rules, the local classifier's fallback).
REQUIRED_LABELS = {
    "praise_no_issue": "positive feedback with nothing to fix",
    "other_unclear": "feedback too vague to act on",
}
TOP_LEVEL_KEYS = ("domains", "version_note")
DOMAIN_KEYS = ("owner", "labels")
OWNER_KEYS = tuple(field.name for field in dataclasses.fields(Owner))
LABEL_KEYS = ("description", "examples")

CHANGELOG_NAME = "changelog.jsonl"
VERSION_PATTERN = re.compile(r"[0-9a-f]{12}")
MIN_PREFIX_CHARS = 6
ACCEPTED_BY_MAX_CHARS = 100
NOTE_MAX_CHARS = 1_000
SUMMARY_IDS_SHOWN = 5
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# --- checks -------------------------------------------------------------------------------------------------------


class _DuplicateKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that remembers keys repeated in one mapping, which plain YAML silently overwrites."""

    def __init__(self, stream: bytes):
        super().__init__(stream)
        self.duplicate_keys: list[tuple[str, yaml.Mark]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    self.duplicate_keys.append((key_node.value, key_node.start_mark))
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def check_taxonomy(raw: bytes, source: str = "taxonomy.yaml") -> list[Problem]:
    """Every problem that keeps `raw` from being a taxonomy the pipeline can rely on, each with its place."""
    try:
        document, duplicate_keys = _load_yaml(raw)
    except yaml.YAMLError as error:
        return [_yaml_problem(error, source)]
    problems = [Problem(f"{source}:{mark.line + 1}:{mark.column + 1}",
                        f"the key {key!r} appears twice in the same mapping; YAML would silently keep only the last one")
                for key, mark in duplicate_keys]
    if not isinstance(document, dict):
        return [*problems, Problem("(document)", "the file must be a mapping with a 'domains' key")]
    problems += _unknown_keys(document, TOP_LEVEL_KEYS, "", "the top level")
    if "version_note" in document and not isinstance(document["version_note"], str):
        problems.append(Problem("version_note", "must be text"))
    domains = document.get("domains")
    if not isinstance(domains, dict) or not domains:
        problems.append(Problem("domains", "the taxonomy needs a 'domains' mapping with at least one domain"))
        return problems
    label_domains: dict[str, str] = {}
    example_places: dict[str, str] = {}
    for domain_id, domain in domains.items():
        problems += _domain_problems(domain_id, domain, label_domains, example_places)
    problems += [Problem("domains", f"the label {label!r} is missing: the code relies on it ({meaning})")
                 for label, meaning in REQUIRED_LABELS.items() if label not in label_domains]
    return problems


def _load_yaml(raw: bytes) -> tuple[Any, list[tuple[str, yaml.Mark]]]:
    loader = _DuplicateKeyLoader(raw)
    try:
        return loader.get_single_data(), loader.duplicate_keys
    finally:
        loader.dispose()


def _yaml_problem(error: yaml.YAMLError, source: str) -> Problem:
    mark = getattr(error, "problem_mark", None)
    if mark is None:
        return Problem(source, f"the file is not valid YAML: {' '.join(str(error).split())}")
    context = getattr(error, "context", None)
    reason = f"{context}, {error.problem}" if context else error.problem
    return Problem(f"{source}:{mark.line + 1}:{mark.column + 1}", f"the file is not valid YAML: {' '.join(reason.split())}")


def _unknown_keys(spec: Mapping[Any, Any], allowed: tuple[str, ...], where: str, what: str) -> Iterator[Problem]:
    for key in spec:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield Problem(_join(where, str(key)),
                          f"unknown key {key!r}{hint}; {what} may only have: {', '.join(allowed)}")


def _id_problems(identifier: Any, where: str, what: str) -> Iterator[Problem]:
    if not isinstance(identifier, str) or not ID_PATTERN.fullmatch(identifier):
        yield Problem(where, f"the {what} id {identifier!r} must be snake_case: a lower-case letter, then 1-63 "
                             "lower-case letters, digits or underscores")


def _domain_problems(domain_id: Any, domain: Any, label_domains: dict[str, str],
                     example_places: dict[str, str]) -> Iterator[Problem]:
    where = f"domains.{domain_id}"
    yield from _id_problems(domain_id, where, "domain")
    if not isinstance(domain, dict):
        yield Problem(where, "a domain must be a mapping with 'owner' and 'labels'")
        return
    yield from _unknown_keys(domain, DOMAIN_KEYS, where, "a domain")
    yield from _owner_problems(domain.get("owner"), f"{where}.owner")
    labels = domain.get("labels")
    if not isinstance(labels, dict) or not labels:
        yield Problem(f"{where}.labels", "the domain has no labels: give it at least one, or remove the domain")
        return
    for label_id, label in labels.items():
        label_where = f"{where}.labels.{label_id}"
        yield from _id_problems(label_id, label_where, "label")
        if label_id in label_domains:
            yield Problem(label_where, f"the label {label_id!r} is also defined in domain {label_domains[label_id]!r}: "
                                       "label ids must be unique across domains")
        else:
            label_domains[label_id] = str(domain_id)
        yield from _label_problems(label, label_where, example_places)


def _owner_problems(owner: Any, where: str) -> Iterator[Problem]:
    if owner is None:
        yield Problem(where, f"the domain has no owner: give it {', '.join(OWNER_KEYS)}")
        return
    if not isinstance(owner, dict):
        yield Problem(where, f"the owner must be a mapping of {', '.join(OWNER_KEYS)}")
        return
    yield from _unknown_keys(owner, OWNER_KEYS, where, "an owner")
    yield from (Problem(f"{where}.{key}", f"the owner has no {key}") for key in OWNER_KEYS if key not in owner)
    team, jira_project, slack_channel = owner.get("team"), owner.get("jira_project"), owner.get("slack_channel")
    if "team" in owner and (not isinstance(team, str) or not team.strip()):
        yield Problem(f"{where}.team", "the team must be a non-empty name")
    if "jira_project" in owner and not (isinstance(jira_project, str) and JIRA_PROJECT_PATTERN.fullmatch(jira_project)):
        yield Problem(f"{where}.jira_project", f"{jira_project!r} is not a Jira project key: 2-10 upper-case letters, "
                                               "digits or underscores starting with a letter, like 'LOG'")
    if "slack_channel" in owner and not (isinstance(slack_channel, str)
                                         and SLACK_CHANNEL_PATTERN.fullmatch(slack_channel)):
        yield Problem(f"{where}.slack_channel", f"{slack_channel!r} is not a Slack channel: '#' then lower-case "
                                                "letters, digits, '-' or '_', like '#logistics-ops'")
    sla_days = owner.get("sla_days")
    if "sla_days" in owner and (isinstance(sla_days, bool) or not isinstance(sla_days, int) or sla_days < 1):
        yield Problem(f"{where}.sla_days", f"{sla_days!r} is not a number of days: it must be a whole number of 1 or more")


def _label_problems(label: Any, where: str, example_places: dict[str, str]) -> Iterator[Problem]:
    if not isinstance(label, dict):
        yield Problem(where, "a label must be a mapping with 'description' and 'examples'")
        return
    yield from _unknown_keys(label, LABEL_KEYS, where, "a label")
    description = label.get("description")
    if "description" not in label:
        yield Problem(f"{where}.description", "the label has no description: say when to use it")
    elif not isinstance(description, str) or not description.strip():
        yield Problem(f"{where}.description", "the description must be non-empty text saying when to use the label")
    elif len(description.strip()) > DESCRIPTION_MAX_CHARS:
        yield Problem(f"{where}.description", f"the description has {len(description.strip())} characters; keep it "
                                              f"to {DESCRIPTION_MAX_CHARS} (the model reads every description)")
    examples = label.get("examples")
    if not isinstance(examples, list) or len(examples) < MIN_EXAMPLES:
        count = len(examples) if isinstance(examples, list) else 0
        yield Problem(f"{where}.examples", f"the label needs at least two examples (a list of feedback texts), has {count}")
    for index, example in enumerate(examples if isinstance(examples, list) else []):
        example_where = f"{where}.examples[{index}]"
        if not isinstance(example, str) or not example.strip():
            yield Problem(example_where, "an example must be a non-empty feedback text")
            continue
        normalized = " ".join(example.split()).casefold()
        if normalized in example_places:
            yield Problem(example_where, f"the example {example!r} is already used at {example_places[normalized]}: "
                                         "each example may teach only one label")
        else:
            example_places[normalized] = example_where


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


# --- diff ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelMove:
    """A label that kept its id but now belongs to another domain (and so to another owner)."""

    label: str
    old_domain: str
    new_domain: str


@dataclass(frozen=True)
class DescriptionChange:
    """A label whose description, what the model reads to choose it, was reworded."""

    label: str
    old: str
    new: str


@dataclass(frozen=True)
class ExampleChange:
    """The examples a label gained and lost."""

    label: str
    added: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class OwnerChange:
    """One owner field of a domain that changed, e.g. its SLA or Slack channel."""

    domain: str
    field: str
    old: str | int
    new: str | int


@dataclass(frozen=True)
class TaxonomyDiff:
    """What changed between two taxonomies, and whether the change breaks references to past label ids."""

    old_version: str
    new_version: str
    added_labels: dict[str, str]  # label id → its domain
    removed_labels: dict[str, str]  # label id → the domain it had
    moved_labels: tuple[LabelMove, ...]
    description_changes: tuple[DescriptionChange, ...]
    example_changes: tuple[ExampleChange, ...]
    owner_changes: tuple[OwnerChange, ...]
    added_domains: tuple[str, ...]
    removed_domains: tuple[str, ...]

    @property
    def is_empty(self) -> bool:
        """True when labels, domains and owners are all unchanged (comments or the version note may differ)."""
        return not (self.added_labels or self.removed_labels or self.moved_labels or self.description_changes
                    or self.example_changes or self.owner_changes or self.added_domains or self.removed_domains)

    @property
    def breaking(self) -> bool:
        """True when a label was removed or moved: past tickets, alerts and gold series reference its id and domain."""
        return bool(self.removed_labels or self.moved_labels)

    def summary(self) -> str:
        """One line for the change log, e.g. "+1 label (size_true_to_fit), 1 description changed"."""
        parts = []
        if self.added_labels:
            parts.append(f"+{_count(len(self.added_labels), 'label')} ({_ids(self.added_labels)})")
        if self.removed_labels:
            parts.append(f"-{_count(len(self.removed_labels), 'label')} ({_ids(self.removed_labels)})")
        if self.moved_labels:
            parts.append(f"{_count(len(self.moved_labels), 'label')} moved ({_ids(m.label for m in self.moved_labels)})")
        if self.description_changes:
            parts.append(f"{_count(len(self.description_changes), 'description')} changed")
        if self.example_changes:
            parts.append(f"examples changed for {_count(len(self.example_changes), 'label')}")
        if self.owner_changes:
            fields = _ids(f"{change.domain}.{change.field}" for change in self.owner_changes)
            parts.append(f"{_count(len(self.owner_changes), 'owner field')} changed ({fields})")
        if self.added_domains:
            parts.append(f"+{_count(len(self.added_domains), 'domain')} ({_ids(self.added_domains)})")
        if self.removed_domains:
            parts.append(f"-{_count(len(self.removed_domains), 'domain')} ({_ids(self.removed_domains)})")
        if not parts:
            return "no changes"
        return ("BREAKING: " if self.breaking else "") + ", ".join(parts)

    def render_text(self) -> str:
        """The change list for a terminal: a heading with both versions, then one line per change."""
        lines = [f"taxonomy {self.old_version} → {self.new_version}: {self.summary()}"]
        for text, breaking in self._changes(lambda name: name):
            lines.append(f"  {text}" + ("  [BREAKING: past tickets, alerts and series reference it]" if breaking else ""))
        return "\n".join(lines)

    def render_markdown(self) -> str:
        """The change list as Markdown, for a pull request or a review note."""
        lines = [f"### Taxonomy `{self.old_version}` → `{self.new_version}`", "", self.summary()]
        changes = self._changes(lambda name: f"`{name}`")
        if changes:
            lines.append("")
        for text, breaking in changes:
            lines.append(f"- {text}" + (" — **breaking**: past tickets, alerts and series reference it" if breaking else ""))
        return "\n".join(lines)

    def _changes(self, name: Callable[[str], str]) -> list[tuple[str, bool]]:
        changes = [(f"+ domain {name(domain)}", False) for domain in self.added_domains]
        changes += [(f"- domain {name(domain)}", False) for domain in self.removed_domains]
        changes += [(f"+ label {name(label)} in {name(domain)}", False) for label, domain in self.added_labels.items()]
        changes += [(f"- label {name(label)} from {name(domain)}", True) for label, domain in self.removed_labels.items()]
        changes += [(f"~ label {name(move.label)} moved from {name(move.old_domain)} to {name(move.new_domain)}", True)
                    for move in self.moved_labels]
        changes += [(f"~ description of {name(change.label)}: {_quoted(change.old)} → {_quoted(change.new)}", False)
                    for change in self.description_changes]
        for change in self.example_changes:
            edits = [f"+{_quoted(example)}" for example in change.added]
            edits += [f"-{_quoted(example)}" for example in change.removed]
            changes.append((f"~ examples of {name(change.label)}: {', '.join(edits)}", False))
        changes += [(f"~ owner of {name(change.domain)}: {change.field} {change.old} → {change.new}", False)
                    for change in self.owner_changes]
        return changes


def diff_taxonomies(old: Taxonomy, new: Taxonomy) -> TaxonomyDiff:
    """The labels, examples, descriptions, owners and domains that differ from `old` to `new`."""
    shared = [label for label in new.labels if label in old.labels]
    old_domains, new_domains = _domain_owners(old), _domain_owners(new)
    example_changes = []
    for label in shared:
        old_examples, new_examples = old.labels[label].examples, new.labels[label].examples
        added = tuple(example for example in new_examples if example not in old_examples)
        removed = tuple(example for example in old_examples if example not in new_examples)
        if added or removed:
            example_changes.append(ExampleChange(label, added, removed))
    owner_changes = [
        OwnerChange(domain, field.name, getattr(old_domains[domain], field.name), getattr(owner, field.name))
        for domain, owner in new_domains.items() if domain in old_domains
        for field in dataclasses.fields(Owner)
        if getattr(old_domains[domain], field.name) != getattr(owner, field.name)
    ]
    return TaxonomyDiff(
        old_version=old.version,
        new_version=new.version,
        added_labels={label: spec.domain for label, spec in new.labels.items() if label not in old.labels},
        removed_labels={label: spec.domain for label, spec in old.labels.items() if label not in new.labels},
        moved_labels=tuple(LabelMove(label, old.labels[label].domain, new.labels[label].domain)
                           for label in shared if old.labels[label].domain != new.labels[label].domain),
        description_changes=tuple(DescriptionChange(label, old.labels[label].description, new.labels[label].description)
                                  for label in shared if old.labels[label].description != new.labels[label].description),
        example_changes=tuple(example_changes),
        owner_changes=tuple(owner_changes),
        added_domains=tuple(domain for domain in new_domains if domain not in old_domains),
        removed_domains=tuple(domain for domain in old_domains if domain not in new_domains),
    )


def _domain_owners(taxonomy: Taxonomy) -> dict[str, Owner]:
    """Each domain's owner, in file order (every label of a domain carries the domain's owner)."""
    return {label.domain: label.owner for label in taxonomy.labels.values()}


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _ids(names: Iterable[str]) -> str:
    listed = list(names)
    shown = ", ".join(listed[:SUMMARY_IDS_SHOWN])
    return shown + (f", +{len(listed) - SUMMARY_IDS_SHOWN} more" if len(listed) > SUMMARY_IDS_SHOWN else "")


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


# --- change log ---------------------------------------------------------------------------------------------------


class HistoryError(ValueError):
    """The taxonomy history, or a reference into it, cannot be used as asked."""


@dataclass(frozen=True)
class ChangeEntry:
    """One acceptance of a taxonomy version: who accepted it, when, why, what changed and how it scored."""

    taxonomy_version: str
    previous_version: str | None
    accepted_at: datetime
    accepted_by: str
    note: str
    summary: str
    evaluation: dict[str, Any]

    def to_json(self) -> str:
        """The entry as one change-log line (ASCII JSON, so no character of a note can split the line)."""
        return json.dumps({
            "taxonomy_version": self.taxonomy_version,
            "previous_version": self.previous_version,
            "accepted_at": self.accepted_at.isoformat(),
            "accepted_by": self.accepted_by,
            "note": self.note,
            "summary": self.summary,
            "evaluation": self.evaluation,
        }, allow_nan=False)

    @classmethod
    def from_json(cls, line: str) -> ChangeEntry:
        """The entry a change-log line holds; ValueError saying which field is wrong when it holds none."""
        document = json.loads(line)
        if not isinstance(document, dict):
            raise ValueError("a line must be a JSON object")
        missing = [field.name for field in dataclasses.fields(cls) if field.name not in document]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        version, previous = document["taxonomy_version"], document["previous_version"]
        if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
            raise ValueError(f"taxonomy_version {version!r} is not a taxonomy version")
        if previous is not None and (not isinstance(previous, str) or not VERSION_PATTERN.fullmatch(previous)):
            raise ValueError(f"previous_version {previous!r} is not a taxonomy version")
        for text_field in ("accepted_at", "accepted_by", "note", "summary"):
            if not isinstance(document[text_field], str):
                raise ValueError(f"{text_field} must be a string")
        if not isinstance(document["evaluation"], dict):
            raise ValueError("evaluation must be a JSON object")
        accepted_at = datetime.fromisoformat(document["accepted_at"])
        if accepted_at.tzinfo is None:
            raise ValueError("accepted_at has no time zone")
        return cls(version, previous, accepted_at, document["accepted_by"], document["note"], document["summary"],
                   document["evaluation"])


def default_history_dir() -> Path:
    """Where accepted taxonomy versions are recorded: taxonomy_history/ in the prompts folder."""
    return prompts_dir() / "taxonomy_history"


def record_acceptance(history_dir: Path, raw: bytes, *, accepted_by: str, note: str, evaluation: Mapping[str, Any],
                      accepted_at: datetime) -> ChangeEntry:
    """Accepts `raw` (after the checks): keeps its exact bytes as `<version>.yaml` and appends a change-log entry."""
    accepted_by = _checked_accepted_by(accepted_by)
    _check_note(note)
    if accepted_at.tzinfo is None:
        raise ValueError("accepted_at needs a time zone")
    try:
        evaluation_copy = json.loads(json.dumps(dict(evaluation), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise ValueError(f"evaluation must be plain JSON (text keys, no NaN): {error}") from error
    taxonomy = parse_taxonomy(raw, "the taxonomy to accept")
    previous = last_accepted(history_dir)
    entry = ChangeEntry(
        taxonomy_version=taxonomy.version,
        previous_version=previous.taxonomy_version if previous else None,
        accepted_at=accepted_at.astimezone(UTC),
        accepted_by=accepted_by,
        note=note,
        summary=_summary_since(history_dir, previous, taxonomy),
        evaluation=evaluation_copy,
    )
    history_dir.mkdir(parents=True, exist_ok=True)
    _write_snapshot(history_dir, taxonomy.version, raw)
    _append_line(history_dir / CHANGELOG_NAME, entry.to_json())
    return entry


def read_changelog(history_dir: Path) -> list[ChangeEntry]:
    """Every acceptance, oldest first ([] when nothing was accepted); HistoryError naming a malformed line."""
    path = history_dir / CHANGELOG_NAME
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise HistoryError(f"{path}: not UTF-8 text ({error.reason})") from error
    entries = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            entries.append(ChangeEntry.from_json(line))
        except ValueError as error:
            raise HistoryError(f"{path}:{number}: not a change-log entry ({error})") from error
    return entries


def last_accepted(history_dir: Path) -> ChangeEntry | None:
    """The most recent acceptance, or None when no version was accepted yet."""
    entries = read_changelog(history_dir)
    return entries[-1] if entries else None


def snapshot(history_dir: Path, version: str) -> bytes | None:
    """The exact bytes accepted as `version`, or None when the history holds no snapshot of it."""
    if not VERSION_PATTERN.fullmatch(version):
        raise HistoryError(f"{version!r} is not a taxonomy version (12 lower-case hex characters)")
    path = history_dir / f"{version}.yaml"
    if not path.exists():
        return None
    raw = path.read_bytes()
    if content_version(raw) != version:
        raise HistoryError(f"{path} was edited after it was accepted: its content is version {content_version(raw)}")
    return raw


def resolve_taxonomy_ref(ref: str, history_dir: Path, current_path: Path) -> tuple[str, bytes]:
    """The version and bytes `ref` names: `current`, `accepted`, an accepted version or its prefix, or a YAML path."""
    if ref == "current":
        try:
            raw = current_path.read_bytes()
        except OSError as error:
            raise HistoryError(f"cannot read the current taxonomy {current_path}: {error.strerror}") from error
        return content_version(raw), raw
    entries = read_changelog(history_dir)
    if ref == "accepted":
        if not entries:
            raise HistoryError(f"no taxonomy version has been accepted yet in {history_dir}")
        return entries[-1].taxonomy_version, _recorded_snapshot(history_dir, entries[-1].taxonomy_version)
    newest_first = list(dict.fromkeys(entry.taxonomy_version for entry in reversed(entries)))
    matches = [version for version in newest_first if version.startswith(ref)] if len(ref) >= MIN_PREFIX_CHARS else []
    if len(matches) > 1:
        raise HistoryError(f"{ref!r} is ambiguous: it starts the accepted versions {', '.join(matches)}; "
                           "give more characters")
    if matches:
        return matches[0], _recorded_snapshot(history_dir, matches[0])
    path = Path(ref)
    if path.is_file():
        raw = path.read_bytes()
        return content_version(raw), raw
    short = f" (a version prefix needs at least {MIN_PREFIX_CHARS} characters)" if len(ref) < MIN_PREFIX_CHARS else ""
    known = ", ".join(newest_first) or "none yet"
    raise HistoryError(f"unknown taxonomy ref {ref!r}{short}: give 'current', 'accepted', a path to a YAML file or "
                       f"an accepted version (newest first: {known})")


def _recorded_snapshot(history_dir: Path, version: str) -> bytes:
    raw = snapshot(history_dir, version)
    if raw is None:
        raise HistoryError(f"the change log lists version {version} but {history_dir / f'{version}.yaml'} is missing")
    return raw


def _summary_since(history_dir: Path, previous: ChangeEntry | None, taxonomy: Taxonomy) -> str:
    if previous is None:
        return f"baseline: {_count(len(taxonomy.labels), 'label')} in {_count(len(taxonomy.domains), 'domain')}"
    previous_raw = _recorded_snapshot(history_dir, previous.taxonomy_version)
    previous_taxonomy = parse_taxonomy(previous_raw, f"{previous.taxonomy_version}.yaml")
    return diff_taxonomies(previous_taxonomy, taxonomy).summary()


def _write_snapshot(history_dir: Path, version: str, raw: bytes) -> None:
    path = history_dir / f"{version}.yaml"
    if path.exists():
        if path.read_bytes() != raw:
            raise HistoryError(f"{path} was edited after it was accepted; restore it before accepting again")
        return
    # Written beside and renamed, so a crash never leaves a half snapshot under a version's name.
    partial = path.with_suffix(".yaml.partial")
    partial.write_bytes(raw)
    os.replace(partial, path)


def _append_line(path: Path, line: str) -> None:
    with path.open("a+b") as log:
        log.seek(0, os.SEEK_END)
        if log.tell():
            log.seek(-1, os.SEEK_END)
            if log.read(1) != b"\n":
                log.write(b"\n")
        log.write(line.encode("ascii") + b"\n")


def _checked_accepted_by(accepted_by: str) -> str:
    name = accepted_by.strip()
    if not name:
        raise ValueError("accepted_by must name who accepts the taxonomy")
    if len(name) > ACCEPTED_BY_MAX_CHARS:
        raise ValueError(f"accepted_by has {len(name)} characters; at most {ACCEPTED_BY_MAX_CHARS}")
    if any(_is_control(character) for character in name):
        raise ValueError("accepted_by must not contain control characters")
    return name


def _check_note(note: str) -> None:
    if len(note) > NOTE_MAX_CHARS:
        raise ValueError(f"the note has {len(note)} characters; at most {NOTE_MAX_CHARS}")
    if any(_is_control(character) and character not in "\n\t" for character in note):
        raise ValueError("the note must not contain control characters (line breaks and tabs are fine)")


def _is_control(character: str) -> bool:
    # Line/paragraph separators and bidi overrides would let a name or note disguise what the log shows.
    return unicodedata.category(character) in {"Cc", "Zl", "Zp"} or character in BIDI_CONTROLS
