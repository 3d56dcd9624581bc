"""A terminal account of the loop's end: each measured ticket per window, and the ROI figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def ratio_text(row: Mapping) -> str:
    """`0.21 (0.10–0.42) improved`, or why there is no measurement yet."""
    if row["status"] != "complete":
        return f"{row['status']}: {row.get('reason') or ''}".rstrip(": ")
    if row.get("rate_ratio") is None:
        return f"no ratio ({row['method']}): {row['verdict']}"
    avoided = row.get("complaints_avoided") or 0.0
    credit = (f"{avoided:.0f} complaints avoided ({row['avoided_low']:.0f}–{row['avoided_high']:.0f})"
              if row["verdict"] == "improved" else "no credit claimed")
    naive = f"; naive before/after {row['naive_ratio']:.2f}" if row.get("naive_ratio") is not None else ""
    return (f"rate ratio {row['rate_ratio']:.2f} (95% {row['ci_low']:.2f}–{row['ci_high']:.2f}) {row['verdict']}, "
            f"{credit} [{row['method']}{naive}]")


def render_impacts(impacts: Sequence[Mapping]) -> list[str]:
    lines = []
    for key in sorted({r["ticket_key"] for r in impacts}):
        rows = sorted((r for r in impacts if r["ticket_key"] == key), key=lambda r: r["window_days"])
        first = rows[0]
        lines.append(f"  {key:<9} {first['code']:<9} on {first['fix_day']}  {first['series_key']} (alert {first['alert_day']})")
        lines += [f"      {r['window_days']:>2}-day window: {ratio_text(r)}" for r in rows]
    return lines


def _range(figure: Mapping) -> str:
    if figure["low"] is None or figure["high"] is None or figure["low"] == figure["high"] == figure["value"]:
        return ""
    return f" ({figure['low']:,.1f}–{figure['high']:,.1f})"


def render_roi(figures: Sequence[Mapping]) -> list[str]:
    lines = []
    for figure in figures:
        if figure["value"] is None:
            lines.append(f"  {figure['metric']:<30} {'unknown':>12} {figure['unit']:<9} ({figure['basis']})")
            continue
        lines.append(f"  {figure['metric']:<30} {figure['value']:>12,.1f} {figure['unit']:<9}{_range(figure)}")
    return lines
