"""The business taxonomy from prompts/taxonomy.yaml: labels, domains, owners, and its content version."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

def prompts_dir() -> Path:
    """The taxonomy, few-shot examples and golden set (FEEDBACK_PROMPTS_DIR, else the repository's prompts/)."""
    return Path(os.environ.get("FEEDBACK_PROMPTS_DIR") or Path(__file__).resolve().parents[2] / "prompts")


@dataclass(frozen=True)
class Owner:
    team: str
    jira_project: str
    slack_channel: str
    sla_days: int


@dataclass(frozen=True)
class Label:
    id: str
    domain: str
    description: str
    examples: tuple[str, ...]
    owner: Owner


@dataclass(frozen=True)
class Taxonomy:
    labels: dict[str, Label]
    version: str

    @property
    def label_ids(self) -> list[str]:
        return list(self.labels)

    @property
    def domains(self) -> list[str]:
        return sorted({label.domain for label in self.labels.values()})

    def domain_of(self, label_id: str) -> str:
        return self.labels[label_id].domain


def content_version(*parts: bytes) -> str:
    """A short content hash: the same bytes always give the same version."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a taxonomy file: where (a dotted path, or file:line:column) and what to fix."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class TaxonomyError(ValueError):
    """A taxonomy file that cannot be used, with every problem found in it, one per line."""

    def __init__(self, source: str, problems: Sequence[Problem]):
        self.source = source
        self.problems = tuple(problems)
        count = len(self.problems)
        heading = f"{source} is not a valid taxonomy ({count} problem{'' if count == 1 else 's'}):"
        super().__init__("\n".join([heading, *(f"  {problem}" for problem in self.problems)]))


def parse_taxonomy(raw: bytes, source: str = "taxonomy.yaml") -> Taxonomy:
    """The taxonomy in `raw`; a TaxonomyError listing every problem when the governance checks find any."""
    # Imported here because governance builds on this module's dataclasses.
    from feedback_assets.enrichment.governance import check_taxonomy

    problems = check_taxonomy(raw, source)
    if problems:
        raise TaxonomyError(source, problems)
    document = yaml.safe_load(raw)
    labels: dict[str, Label] = {}
    for domain, spec in document["domains"].items():
        owner = Owner(**spec["owner"])
        for label_id, label in spec["labels"].items():
            labels[label_id] = Label(label_id, domain, label["description"].strip(), tuple(label["examples"]), owner)
    return Taxonomy(labels, content_version(raw))


@cache
def load_taxonomy(path: Path | None = None) -> Taxonomy:
    path = path or prompts_dir() / "taxonomy.yaml"
    return parse_taxonomy(path.read_bytes(), str(path))
