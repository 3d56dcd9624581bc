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
    defaults: Thresholds
    dimension_overrides: dict[str, dict]
    label_overrides: dict[str, dict]
    disabled: frozenset[str]

    def thresholds_for(self, label: str, dimension: str | None = None) -> Thresholds:
        """The defaults, overridden by the dimension's settings, overridden by the label's."""
        return replace(self.defaults, **(self.dimension_overrides.get(dimension, {}) | self.label_overrides.get(label, {})))

    def alerts_on(self, label: str) -> bool:
        return label not in self.disabled

    @property
    def lookback_days(self) -> int:
        """Days of history a velocity window needs: the 28-day baseline plus breaches a cooldown can reach."""
        cooldowns = [self.defaults.cooldown_days] + [
            spec["cooldown_days"] for spec in (*self.dimension_overrides.values(), *self.label_overrides.values())
            if "cooldown_days" in spec]
        return 28 + 2 * max(cooldowns)


def parse_alerting(document: dict) -> AlertingConfig:
    defaults = Thresholds(**_threshold_values(document.get("defaults") or {}, "defaults"))
    dimensions = {name: _threshold_values(spec or {}, f"dimensions.{name}")
                  for name, spec in (document.get("dimensions") or {}).items()}
    if not dimensions:
        raise ValueError("alerting.yaml: `dimensions` must name at least one dimension")
    labels, disabled = {}, set()
    for label, spec in (document.get("labels") or {}).items():
        spec = dict(spec or {})
        if spec.pop("enabled", True) is False:
            disabled.add(label)
        labels[label] = _threshold_values(spec, f"labels.{label}")
    return AlertingConfig(tuple(dimensions), int(document.get("alert_window_days", 2)), defaults, dimensions, labels,
                          frozenset(disabled))


def _threshold_values(spec: dict, where: str) -> dict:
    unknown = set(spec) - _THRESHOLD_FIELDS
    if unknown:
        raise ValueError(f"alerting.yaml {where}: unknown settings {sorted(unknown)}; known: {sorted(_THRESHOLD_FIELDS)}")
    return spec


@cache
def load_alerting(path: Path | None = None) -> AlertingConfig:
    return parse_alerting(yaml.safe_load((path or settings().config_dir / "alerting.yaml").read_text()))
