"""The business taxonomy from prompts/taxonomy.yaml: labels, domains, owners, and its content version."""

from __future__ import annotations

import hashlib
import os
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


def parse_taxonomy(raw: bytes) -> Taxonomy:
    document = yaml.safe_load(raw)
    labels: dict[str, Label] = {}
    for domain, spec in document["domains"].items():
        owner = Owner(**spec["owner"])
        for label_id, label in spec["labels"].items():
            if label_id in labels:
                raise ValueError(f"label {label_id!r} appears in two domains")
            if len(label.get("examples", [])) < 2:
                raise ValueError(f"label {label_id!r} needs at least two examples")
            labels[label_id] = Label(label_id, domain, label["description"].strip(), tuple(label["examples"]), owner)
    return Taxonomy(labels, content_version(raw))


@cache
def load_taxonomy(path: Path | None = None) -> Taxonomy:
    return parse_taxonomy((path or prompts_dir() / "taxonomy.yaml").read_bytes())
