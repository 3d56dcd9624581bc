"""The alerting configuration (config/alerting.yaml): dimensions, thresholds per label, alert window."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cache
from pathlib import Path

import yaml

from feedback_assets.transforms.velocity import Thresholds
from resources.settings import settings

_THRESHOLD_FIELDS = {f.name for f in fields(Thresholds)}


@dataclass(frozen=True)
class AlertingConfig:
    dimensions: tuple[str, ...]
    alert_window_days: int
    default_sla_days: int
    defaults: Thresholds
    overrides: dict[str, Thresholds]
    disabled: frozenset[str]

    def thresholds_for(self, label: str) -> Thresholds:
        return self.overrides.get(label, self.defaults)

    def alerts_on(self, label: str) -> bool:
        return label not in self.disabled

    @property
    def lookback_days(self) -> int:
        """Days of history a velocity window needs: the 28-day baseline plus breaches a cooldown can reach."""
        return 28 + 2 * max(t.cooldown_days for t in (self.defaults, *self.overrides.values()))


def parse_alerting(document: dict) -> AlertingConfig:
    defaults = Thresholds(**_threshold_values(document.get("defaults") or {}, "defaults"))
    overrides, disabled = {}, set()
    for label, spec in (document.get("labels") or {}).items():
        spec = dict(spec or {})
        if spec.pop("enabled", True) is False:
            disabled.add(label)
        if spec:
            overrides[label] = replace(defaults, **_threshold_values(spec, f"labels.{label}"))
    return AlertingConfig(tuple(document["dimensions"]), int(document.get("alert_window_days", 2)),
                          int(document.get("default_sla_days", 5)), defaults, overrides, frozenset(disabled))


def _threshold_values(spec: dict, where: str) -> dict:
    unknown = set(spec) - _THRESHOLD_FIELDS
    if unknown:
        raise ValueError(f"alerting.yaml {where}: unknown settings {sorted(unknown)}; known: {sorted(_THRESHOLD_FIELDS)}")
    return spec


@cache
def load_alerting(path: Path | None = None) -> AlertingConfig:
    return parse_alerting(yaml.safe_load((path or settings().config_dir / "alerting.yaml").read_text()))
