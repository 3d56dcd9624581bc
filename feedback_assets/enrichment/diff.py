"""What a new classifier version changed: label migrations between two versions' classifications of the same items."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from feedback_assets.enrichment.entities import one_line
from feedback_assets.metadata import escape_markdown_cell

EXAMPLE_CHARS = 160
NOT_CLASSIFIED = "(not classified)"


@dataclass(frozen=True)
class ItemPair:
    """One feedback item as the previous and the current version labelled it (None: that version had no label)."""

    feedback_id: str
    feedback_date: date
    text: str
    previous_label: str | None
    current_label: str | None


@dataclass(frozen=True)
class AlertChange:
    series_key: str
    day: date
    change: str  # gained | lost


@dataclass
class ClassificationDiff:
    previous_version: str
    current_version: str
    items_compared: int
    items_moved: int
    matrix: Counter  # (previous_label, current_label) → items, moved or not
    before: Counter
    after: Counter
    examples: dict[tuple[str, str], list[dict]]
    alert_changes: list[AlertChange] = field(default_factory=list)

    @property
    def moves(self) -> list[tuple[tuple[str, str], int]]:
        """Label changes, largest first (ties by label names, so the order is stable)."""
        return sorted(((pair, n) for pair, n in self.matrix.items() if pair[0] != pair[1]), key=lambda kv: (-kv[1], kv[0]))

    @property
    def moved_share(self) -> float:
        return self.items_moved / self.items_compared if self.items_compared else 0.0


def compare(pairs: Iterable[ItemPair], previous_version: str, current_version: str,
            top_moves: int = 10, examples_per_move: int = 3) -> ClassificationDiff:
    """The migration matrix, label counts before and after, and example items for the largest moves."""
    pairs = sorted(pairs, key=lambda p: (p.feedback_date, p.feedback_id))
    matrix: Counter = Counter()
    for pair in pairs:
        matrix[(pair.previous_label or NOT_CLASSIFIED, pair.current_label or NOT_CLASSIFIED)] += 1
    before = Counter({label: n for label, n in _totals(matrix, 0).items() if label != NOT_CLASSIFIED})
    after = Counter({label: n for label, n in _totals(matrix, 1).items() if label != NOT_CLASSIFIED})
    diff = ClassificationDiff(previous_version, current_version, len(pairs),
                              sum(n for (old, new), n in matrix.items() if old != new), matrix, before, after, {})
    largest = {pair for pair, _ in diff.moves[:top_moves]}
    for pair in pairs:
        key = (pair.previous_label or NOT_CLASSIFIED, pair.current_label or NOT_CLASSIFIED)
        if key in largest and len(diff.examples.setdefault(key, [])) < examples_per_move:
            diff.examples[key].append({"feedback_id": pair.feedback_id, "day": pair.feedback_date.isoformat(),
                                       "text": one_line(pair.text or "", EXAMPLE_CHARS)})
    return diff


def _totals(matrix: Counter, side: int) -> Counter:
    totals: Counter = Counter()
    for pair, n in matrix.items():
        totals[pair[side]] += n
    return totals


def alert_changes(previous: set[tuple[str, date]], current: set[tuple[str, date]]) -> list[AlertChange]:
    """Series-days that alert only under the current version (gained) or only under the previous one (lost)."""
    changes = [AlertChange(key, day, "gained") for key, day in current - previous]
    changes += [AlertChange(key, day, "lost") for key, day in previous - current]
    return sorted(changes, key=lambda c: (c.day, c.series_key, c.change))


def render_markdown(diff: ClassificationDiff, top_moves: int = 10, max_alert_changes: int = 20) -> str:
    """The diff for the UI: summary, largest moves with examples, counts per label, alert effects."""
    lines = [f"**{diff.items_moved:,} of {diff.items_compared:,} items changed label** ({diff.moved_share:.1%}) "
             f"from `{diff.previous_version}` to `{diff.current_version}`.", ""]
    if diff.moves:
        lines += ["| from | to | items | examples |", "|---|---|---:|---|"]
        for (old, new), n in diff.moves[:top_moves]:
            examples = "<br>".join(f"{escape_markdown_cell(e['text'], EXAMPLE_CHARS)} ({e['day']})" for e in diff.examples.get((old, new), []))
            lines.append(f"| {old} | {new} | {n:,} | {examples} |")
        lines.append("")
    labels = sorted(set(diff.before) | set(diff.after), key=lambda l: (-(diff.after[l] - diff.before[l]), l))
    changed = [l for l in labels if diff.after[l] != diff.before[l]]
    if changed:
        lines += ["| label | before | after | change |", "|---|---:|---:|---:|"]
        lines += [f"| {l} | {diff.before[l]:,} | {diff.after[l]:,} | {diff.after[l] - diff.before[l]:+,} |" for l in changed]
        lines.append("")
    gained = [c for c in diff.alert_changes if c.change == "gained"]
    lost = [c for c in diff.alert_changes if c.change == "lost"]
    lines.append(f"**Alerts:** {len(gained)} series-day(s) would now alert, {len(lost)} would no longer alert.")
    if diff.alert_changes:
        lines += ["", "| day | series | effect |", "|---|---|---|"]
        lines += [f"| {c.day.isoformat()} | {escape_markdown_cell(c.series_key)} | {'now alerts' if c.change == 'gained' else 'no longer alerts'} |"
                  for c in diff.alert_changes[:max_alert_changes]]
    return "\n".join(lines)
