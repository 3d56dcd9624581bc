"""Scoring alerts against the sample's planted incidents: recall, detection delay and false alerts.

An alert detects an incident when its label is the incident's (or one of its secondary labels), its
dimension value is one of the incident's keys (the SKU, region, carrier, platform or app version),
and it fires between the onset and the end. An alert with the incident's label during the
incident but on another value (the same defect seen per channel, say) is a side effect of the
incident, not a false alert. Everything else is a false alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta


from feedback_assets import tables
from resources.table_store import TableStore

# Complaints about an incident keep arriving for a while after it is fixed.
AFTERMATH_DAYS = 7


@dataclass(frozen=True)
class FiredAlert:
    day: date
    label: str
    dimension: str
    value: str


@dataclass
class IncidentScore:
    detection_delay: dict[str, int | None]
    false_alerts: list[FiredAlert]
    side_effect_alerts: list[FiredAlert]
    series_weeks: float
    matched: dict[str, list[FiredAlert]] = field(default_factory=dict)

    @property
    def recall(self) -> float:
        found = [d for d in self.detection_delay.values() if d is not None]
        return len(found) / len(self.detection_delay) if self.detection_delay else 0.0

    @property
    def false_alerts_per_100_series_weeks(self) -> float:
        return 100 * len(self.false_alerts) / self.series_weeks if self.series_weeks else 0.0


def _window(incident: Mapping, last_day: date, aftermath: int) -> tuple[date, date]:
    end = date.fromisoformat(incident["end"]) if incident.get("end") else last_day
    return date.fromisoformat(incident["onset"]), end + timedelta(days=aftermath)


def score_alerts(manifest: Mapping, alerts: Iterable[FiredAlert], series_weeks: float,
                 domain_of: Mapping[str, str]) -> IncidentScore:
    """How the alerts fired over the sample compare with the incidents its manifest planted."""
    last_day = date.fromisoformat(manifest["end_date"])
    incidents: Sequence[Mapping] = manifest["incidents"]
    delays: dict[str, int | None] = {i["id"]: None for i in incidents}
    matched: dict[str, list[FiredAlert]] = {i["id"]: [] for i in incidents}
    false_alerts, side_effects = [], []
    for alert in sorted(alerts, key=lambda a: a.day):
        detected = side_effect = False
        for incident in incidents:
            onset, until = _window(incident, last_day, 0)
            labels = {incident["label"], *incident.get("secondary_labels", [])}
            on_key = alert.value in incident["keys"].values()
            if alert.label in labels and on_key and onset <= alert.day <= until:
                detected = True
                matched[incident["id"]].append(alert)
                delay = (alert.day - onset).days
                current = delays[incident["id"]]
                delays[incident["id"]] = delay if current is None else min(current, delay)
                continue
            same_domain = domain_of.get(alert.label) == domain_of.get(incident["label"])
            if (alert.label in labels or (on_key and same_domain)) and \
                    onset <= alert.day <= _window(incident, last_day, AFTERMATH_DAYS)[1]:
                side_effect = True
        if side_effect and not detected:
            side_effects.append(alert)
        elif not detected:
            false_alerts.append(alert)
    return IncidentScore(delays, false_alerts, side_effects, series_weeks, matched)


def fired_alerts(store: TableStore) -> tuple[list[FiredAlert], float]:
    """The alerts complaint_velocity fired, and the series-weeks it watched after the warm-up."""
    alerts, watched, assessed_days = [], set(), 0
    for day in store.partition_days(tables.COMPLAINT_VELOCITY):
        rows = store.read_parts(tables.COMPLAINT_VELOCITY, [day]).select(["label", "dimension", "value", "alert", "status"]).to_pylist()
        assessed_days += any(row["status"] != "warming_up" for row in rows)
        for row in rows:
            if row["status"] not in ("warming_up", "not_alerting"):
                watched.add((row["label"], row["dimension"], row["value"]))
            if row["alert"]:
                alerts.append(FiredAlert(day, row["label"], row["dimension"], row["value"]))
    return alerts, len(watched) * assessed_days / 7


def render_incident_check(score: IncidentScore) -> str:
    """How the alerts compare with the sample's planted incidents (the demo's answer key)."""
    lines = ["\nPlanted incidents (sample manifest):"]
    for incident, delay in score.detection_delay.items():
        first = score.matched[incident][0] if score.matched[incident] else None
        found = f"alerted {delay} day(s) after onset: {first.label} on {first.dimension}={first.value}" if first else "MISSED"
        lines.append(f"  {incident:<22} {found}")
    lines.append(f"  {len(score.side_effect_alerts)} more alert(s) were the same incidents seen on other values or labels; "
                 f"{len(score.false_alerts)} came from the steady background "
                 f"({score.false_alerts_per_100_series_weeks:.2f} per 100 series-weeks watched)")
    lines += [f"    background: {a.day} {a.label} on {a.dimension}={a.value}" for a in score.false_alerts]
    return "\n".join(lines)


@dataclass(frozen=True)
class PlannedResolution:
    ticket_key: str
    incident: str
    code: str
    note: str
    at: datetime


def planned_resolutions(manifest: Mapping, tickets: Iterable[Mapping]) -> list[PlannedResolution]:
    """What the sample's team does with each incident's tickets: its code and note, on the manifest's day.

    A ticket belongs to an incident when its series is the incident's label (or a secondary one) on
    one of its keys and it was opened between the onset and the team's decision.
    """
    plans = []
    for row in tickets:
        day = date.fromisoformat(row["breach_key"].rpartition("@")[2])
        label, _, rest = row["series_key"].partition(":")
        value = rest.partition("=")[2]
        for incident in manifest["incidents"]:
            ticket = incident.get("ticket")
            labels = {incident["label"], *incident.get("secondary_labels", [])}
            if ticket is None or label not in labels or value not in incident["keys"].values():
                continue
            decided = date.fromisoformat(ticket["day"])
            if date.fromisoformat(incident["onset"]) <= day <= decided:
                plans.append(PlannedResolution(row["key"], incident["id"], ticket["code"], ticket["note"],
                                               datetime.combine(decided, time(16), UTC)))
                break
    return plans
