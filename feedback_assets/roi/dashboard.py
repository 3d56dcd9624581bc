"""The executive dashboard: one self-contained HTML file of charts that says whether the feedback programme pays.

Pure rendering (data in, HTML/PNG out): matplotlib's Figure API on an explicit Agg canvas, no pyplot state.
Every chart is inlined as SVG (text drawn as paths, so it looks the same offline on any machine) and is also
available as PNG for Dagster metadata. Everything that comes from data is untrusted customer-derived text:
it is escaped for HTML with `html.escape`, and `$` is escaped for matplotlib so it is never read as mathtext.
"""

from __future__ import annotations

import html
import io
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter, NullLocator


@dataclass(frozen=True)
class DomainDay:
    day: date
    domain: str
    complaints: int


@dataclass(frozen=True)
class PriorityItem:
    series: str
    priority_score: float
    priority: str
    revenue_at_risk: float | None
    unknown_reason: str | None
    ticket_key: str | None


@dataclass(frozen=True)
class OpenTicket:
    key: str
    owner: str
    summary: str
    due: date
    sla_status: str


@dataclass(frozen=True)
class FixImpact:
    ticket_key: str
    series: str
    code: str
    window_days: int
    rate_ratio: float | None
    low: float | None
    high: float | None
    verdict: str
    baseline_per_1k: float | None
    after_per_1k: float | None
    complaints_avoided: float | None
    avoided_low: float | None
    avoided_high: float | None
    note: str


@dataclass(frozen=True)
class SeriesTrace:
    ticket_key: str
    series: str
    days: tuple[date, ...]
    per_1k: tuple[float | None, ...]
    breach_day: date
    fix_day: date
    baseline: tuple[date, date]


@dataclass(frozen=True)
class RoiFigure:
    name: str
    value: float | None
    low: float | None
    high: float | None
    unit: str
    note: str


@dataclass(frozen=True)
class Assumption:
    name: str
    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class DashboardData:
    as_of: date
    domain_days: tuple[DomainDay, ...]
    priorities: tuple[PriorityItem, ...]
    open_tickets: tuple[OpenTicket, ...]
    fixes: tuple[FixImpact, ...]
    traces: tuple[SeriesTrace, ...]
    roi: tuple[RoiFigure, ...]
    assumptions: tuple[Assumption, ...]


@dataclass(frozen=True)
class Style:
    colour: str
    label: str
    marker: str = "o"


CHART_IDS = ("complaints_by_domain", "top_priorities", "open_tickets_by_owner", "fix_impact", "roi_summary")
TITLES = {
    "complaints_by_domain": "Complaints by business domain",
    "top_priorities": "Top open priorities",
    "open_tickets_by_owner": "Open tickets by owner and SLA status",
    "fix_impact": "Did the fixes work?",
    "roi_summary": "What the programme returns",
}
TEXT_LIMIT = 80
LABEL_LIMIT = 56
TOP_PRIORITIES = 10
MAX_OWNERS = 12
MAX_FOREST_ROWS = 20
MAX_TRACES = 6
MAX_DOMAINS = 7
MAX_LISTED = 12
FIGURE_WIDTH_IN = 10.0

VERDICT_STYLES: dict[str, Style] = {
    "improved": Style("#1a7f37", "improved: fewer complaints", "o"),
    "worse": Style("#c0392b", "worse: more complaints", "s"),
    "inconclusive": Style("#8a8f98", "inconclusive: interval spans no change", "D"),
}
UNPLOTTED_VERDICTS = ("pending", "no_baseline")
SLA_STYLES: dict[str, Style] = {
    "overdue": Style("#c0392b", "overdue"),
    "due_soon": Style("#e69f00", "due soon"),
    "on_track": Style("#2e8b57", "on track"),
}
UNKNOWN_STYLE = Style("#b0b4ba", "other")
PRIORITY_COLOURS = {"Highest": "#8e1b1b", "High": "#d9480f", "Medium": "#f0a030", "Low": "#9fb3c8"}
DOMAIN_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442")
OTHER_COLOUR = "#a0a4aa"
TEXT_COLOUR = "#1c2430"
MUTED_COLOUR = "#5b6470"


# ---------------------------------------------------------------- formatting


def bounded(text: object, limit: int = TEXT_LIMIT) -> str:
    """`text` on one line without control or invisible characters, cut to `limit` characters with an ellipsis."""
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in str(text)).split())
    return line if len(line) <= limit else line[: max(limit - 1, 0)].rstrip() + "…"


def format_number(value: float | None) -> str:
    """A count or measure for people: thousands separated, three significant digits below 100."""
    if value is None or not math.isfinite(value):
        return "unknown"
    if abs(round(value)) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def format_money(value: float | None) -> str:
    """US dollars for people: "$950", "$12.3k", "$1.2M"; None is "unknown", never "$0"."""
    if value is None or not math.isfinite(value):
        return "unknown"
    sign = "-" if value < 0 else ""
    amount = abs(value)
    if round(amount) < 1000:
        return f"{sign}${amount:,.0f}"
    for divisor, suffix in ((1e3, "k"), (1e6, "M")):
        if round(amount / divisor, 1) < 1000:
            return f"{sign}${amount / divisor:.1f}{suffix}"
    return f"{sign}${amount / 1e9:,.1f}B"


def format_quantity(value: float | None, unit: str) -> str:
    """A value with its unit: money for USD, "1,200 hours" otherwise; None is "unknown"."""
    if value is None or not math.isfinite(value):
        return "unknown"
    if unit == "USD":
        return format_money(value)
    if unit == "%":
        return f"{format_number(value)}%"
    return f"{format_number(value)} {bounded(unit, 20)}".rstrip()


def format_range(value: float | None, low: float | None, high: float | None, unit: str | None = None) -> str:
    """A value and its interval, "1,200 (900–1,500)"; the interval is left out when either end is unknown."""
    bare = format_money if unit == "USD" else format_number
    main = format_quantity(value, unit) if unit else bare(value)
    if value is None or low is None or high is None or low == high == value:
        return main
    return f"{main} ({bare(low)}–{bare(high)})"


def _percent_change(ratio: float) -> str:
    change = (ratio - 1.0) * 100.0
    return f"{'+' if change > 0 else '−' if change < 0 else '±'}{abs(change):.0f}%"


def _mpl(text: object, limit: int = TEXT_LIMIT) -> str:
    # Matplotlib reads an even number of unescaped `$` as mathtext; with every `$` escaped it never does, and
    # it turns each `\$` back into `$` when drawing, so the text appears exactly as given (backslashes too).
    return bounded(text, limit).replace("$", r"\$")


def _h(text: object, limit: int = TEXT_LIMIT) -> str:
    return html.escape(bounded(text, limit), quote=True)


# ---------------------------------------------------------------- figures


def _figure(height: float) -> Figure:
    figure = Figure(figsize=(FIGURE_WIDTH_IN, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _placeholder(why: str) -> Figure:
    figure = _figure(1.1)
    figure.text(0.5, 0.5, _mpl(f"nothing to show yet: {why}", 120), ha="center", va="center", fontsize=11,
                color=MUTED_COLOUR)
    return figure


def _style_axes(axes: Axes) -> None:
    axes.tick_params(labelsize=8, colors=TEXT_COLOUR)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def _dated(axes: Axes) -> None:
    locator = AutoDateLocator(maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _legend(owner: Axes | Figure | SubFigure, handles: Sequence[object], **kwargs: object) -> None:
    owner.legend(handles=handles, fontsize=8, frameon=False, **kwargs)


def _empty_reason(chart_id: str, data: DashboardData) -> str | None:
    if chart_id == "complaints_by_domain" and not data.domain_days:
        return "no complaints have been counted for any domain in this period"
    if chart_id == "top_priorities" and not data.priorities:
        return "there are no open priorities"
    if chart_id == "open_tickets_by_owner" and not data.open_tickets:
        return "there are no open tickets"
    if chart_id == "fix_impact" and not _plotted_fixes(data.fixes) and not data.traces:
        if data.fixes:
            return "no fix has completed a measurement window yet (the measurements under way are listed below)"
        return "no fix has been resolved or measured yet"
    if chart_id == "roi_summary" and all(figure.value is None for figure in data.roi):
        if data.roi:
            return "every ROI figure is still unknown (see the table below for why)"
        return "no ROI figures have been computed yet"
    return None


def _complaints_by_domain(data: DashboardData) -> Figure:
    totals: Counter[str] = Counter()
    by_day: dict[date, Counter[str]] = defaultdict(Counter)
    for row in data.domain_days:
        totals[row.domain] += row.complaints
        by_day[row.day][row.domain] += row.complaints
    ranked = [domain for domain, _ in sorted(totals.items(), key=lambda item: (-item[1], item[0]))]
    shown, rest = ranked[:MAX_DOMAINS], ranked[MAX_DOMAINS:]
    first, last = min(by_day), max(by_day)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    # A day missing from the rows had no complaints in that domain: zero, not a gap.
    layers = [[by_day[day][domain] for day in days] for domain in shown]
    labels = [_mpl(domain or "(no domain)", 40) for domain in shown]
    colours = list(DOMAIN_COLOURS[: len(shown)])
    if rest:
        layers.append([sum(by_day[day][domain] for domain in rest) for day in days])
        labels.append(_mpl(f"{len(rest)} other domains"))
        colours.append(OTHER_COLOUR)
    figure = _figure(3.6)
    axes = figure.subplots()
    axes.stackplot(days, *layers, colors=colours, alpha=0.9, linewidth=0.3, edgecolor="white")
    axes.set_ylabel("complaints per day", fontsize=9)
    if first < last:
        axes.set_xlim(first, last)
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    _dated(axes)
    _style_axes(axes)
    # Explicit handles: matplotlib would leave out a domain whose name starts with "_"; top of the stack first.
    handles = [Patch(color=colour, alpha=0.9, label=label) for colour, label in zip(colours, labels)][::-1]
    _legend(axes, handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def _ticket_label(ticket_key: str | None, series: str, limit: int = LABEL_LIMIT) -> str:
    return bounded(f"{ticket_key} · {series}" if ticket_key else series, limit)


def _revenue_note(item: PriorityItem) -> str:
    if item.revenue_at_risk is None:
        return f"revenue at risk unknown: {bounded(item.unknown_reason or 'reason not recorded', 44)}"
    return f"{format_money(item.revenue_at_risk)} at risk"


def _top(priorities: Iterable[PriorityItem]) -> list[PriorityItem]:
    return sorted(priorities, key=lambda item: -item.priority_score)[:TOP_PRIORITIES]


def _top_priorities(data: DashboardData) -> Figure:
    top = _top(data.priorities)
    figure = _figure(0.9 + 0.36 * len(top))
    axes = figure.subplots()
    rows = range(len(top))
    axes.barh(rows, [item.priority_score for item in top], height=0.62,
              color=[PRIORITY_COLOURS.get(item.priority, UNKNOWN_STYLE.colour) for item in top])
    for row, item in zip(rows, top):
        axes.text(item.priority_score + 1, row, _mpl(format_number(item.priority_score)), va="center", fontsize=8,
                  color=TEXT_COLOUR)
        unknown = item.revenue_at_risk is None
        axes.text(1.03, row, _mpl(_revenue_note(item)), transform=axes.get_yaxis_transform(), va="center",
                  fontsize=8, color=MUTED_COLOUR if unknown else TEXT_COLOUR, style="italic" if unknown else "normal")
    axes.set_yticks(list(rows), labels=[_mpl(_ticket_label(item.ticket_key, item.series)) for item in top])
    axes.set_ylim(len(top) - 0.5, -0.5)
    axes.set_xlim(0, 108)
    axes.set_xticks([0, 25, 50, 75, 100])
    axes.set_xlabel("priority score (0–100)", fontsize=9)
    _style_axes(axes)
    present = [level for level in PRIORITY_COLOURS if any(item.priority == level for item in top)]
    _legend(axes, [Patch(color=PRIORITY_COLOURS[level], label=_mpl(level)) for level in present],
            loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=max(len(present), 1))
    return figure


def _open_tickets_by_owner(data: DashboardData) -> Figure:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for ticket in data.open_tickets:
        counts[bounded(ticket.owner, 40) or "unassigned"][ticket.sla_status if ticket.sla_status in SLA_STYLES
                                                          else "other"] += 1
    owners = sorted(counts, key=lambda owner: (-counts[owner]["overdue"], -sum(counts[owner].values()), owner))
    if len(owners) > MAX_OWNERS:
        rest = owners[MAX_OWNERS - 1:]
        merged: Counter[str] = sum((counts[owner] for owner in rest), Counter())
        owners = owners[: MAX_OWNERS - 1] + [f"{len(rest)} other owners"]
        counts[owners[-1]] = merged
    statuses = [*SLA_STYLES, "other"]
    figure = _figure(1.0 + 0.34 * len(owners))
    axes = figure.subplots()
    rows = range(len(owners))
    left = [0] * len(owners)
    for status in statuses:
        widths = [counts[owner][status] for owner in owners]
        if not any(widths):
            continue
        style = SLA_STYLES.get(status, UNKNOWN_STYLE)
        axes.barh(rows, widths, left=left, height=0.62, color=style.colour, label=_mpl(style.label))
        left = [start + width for start, width in zip(left, widths)]
    for row, total in zip(rows, left):
        axes.text(total + max(left) * 0.01, row, _mpl(str(total)), va="center", fontsize=8, color=TEXT_COLOUR)
    axes.set_yticks(list(rows), labels=[_mpl(owner, 40) for owner in owners])
    axes.set_ylim(len(owners) - 0.5, -0.5)
    axes.set_xlim(0, max(left) * 1.08)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("open tickets", fontsize=9)
    _style_axes(axes)
    axes.legend(fontsize=8, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(statuses))
    return figure


def _plotted_fixes(fixes: Iterable[FixImpact]) -> list[FixImpact]:
    return [fix for fix in fixes if fix.verdict not in UNPLOTTED_VERDICTS and fix.rate_ratio is not None]


def _unplotted_fixes(fixes: Iterable[FixImpact]) -> list[FixImpact]:
    return [fix for fix in fixes if fix.verdict in UNPLOTTED_VERDICTS or fix.rate_ratio is None]


def _verdict_style(verdict: str) -> Style:
    return VERDICT_STYLES.get(verdict, Style(UNKNOWN_STYLE.colour, bounded(verdict, 30), "X"))


def _impact_note(fix: FixImpact) -> str:
    assert fix.rate_ratio is not None
    parts = [_percent_change(fix.rate_ratio) if fix.rate_ratio > 0 else "no complaints after"]
    if fix.low is not None and fix.high is not None and fix.low > 0:
        parts[0] += f" ({_percent_change(fix.low)} to {_percent_change(fix.high)})"
    avoided, low, high = fix.complaints_avoided, fix.avoided_low, fix.avoided_high
    if avoided is not None and avoided < 0:
        extra = format_range(-avoided, None if high is None else -high, None if low is None else -low)
        parts.append(f"{extra} extra complaints")
    elif avoided is not None:
        parts.append(f"{format_range(avoided, low, high)} avoided")
    return " · ".join(parts)


def _forest(panel: Figure | SubFigure, fixes: list[FixImpact], unplotted: int) -> None:
    axes = panel.subplots()
    if not fixes:
        axes.set_axis_off()
        axes.text(0.5, 0.5, _mpl("no measurement window has completed yet"), ha="center", va="center",
                  transform=axes.transAxes, fontsize=10, color=MUTED_COLOUR)
        return
    ends = [v for fix in fixes for v in (fix.rate_ratio, fix.low, fix.high) if v is not None and v > 0]
    floor, ceiling = min([*ends, 0.5]) / 1.3, max([*ends, 2.0]) * 1.3
    for row, fix in enumerate(fixes):
        style = _verdict_style(fix.verdict)
        assert fix.rate_ratio is not None
        if fix.low is not None and fix.high is not None:
            axes.plot([min(max(fix.low, floor), ceiling), min(max(fix.high, floor), ceiling)], [row, row],
                      color=style.colour, linewidth=2.2, solid_capstyle="butt")
        axes.plot([min(max(fix.rate_ratio, floor), ceiling)], [row], marker=style.marker, markersize=7,
                  color=style.colour, markeredgecolor="white", linestyle="none", zorder=3)
        axes.text(1.03, row, _mpl(_impact_note(fix)), transform=axes.get_yaxis_transform(), va="center",
                  fontsize=8, color=TEXT_COLOUR)
    axes.axvline(1.0, color=TEXT_COLOUR, linewidth=0.9, linestyle="--", zorder=1)
    axes.set_xscale("log")
    axes.set_xlim(floor, ceiling)
    # Plain ratio labels: the default log formatter writes mathtext ("10^0"), which executives should not read.
    candidates = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 10, 20, 50)
    axes.xaxis.set_major_locator(FixedLocator([tick for tick in candidates if floor <= tick <= ceiling]))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _mpl(f"{value:g}×")))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_yticks(list(range(len(fixes))),
                    labels=[_mpl(f"{_ticket_label(fix.ticket_key, fix.series, 52)} · {fix.window_days}d")
                            for fix in fixes])
    axes.set_ylim(len(fixes) - 0.5, -0.5)
    label = "complaint rate after ÷ before the fix, with 95% interval (log scale; left of 1× = fewer)"
    if unplotted:
        label += "\n" + _mpl(f"{unplotted} measurement(s) still pending or without a baseline: listed below", 120)
    axes.set_xlabel(label, fontsize=9)
    _style_axes(axes)
    verdicts = list(dict.fromkeys(fix.verdict for fix in fixes))
    handles = [Line2D([], [], color=_verdict_style(v).colour, marker=_verdict_style(v).marker, linewidth=2.2,
                      label=_mpl(_verdict_style(v).label)) for v in verdicts]
    _legend(axes, handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=max(len(handles), 1))


def _baseline_mean(trace: SeriesTrace) -> float | None:
    start, end = trace.baseline
    values = [v for day, v in zip(trace.days, trace.per_1k) if v is not None and start <= day <= end]
    return sum(values) / len(values) if values else None


def _trace_panels(panel: Figure | SubFigure, traces: list[SeriesTrace]) -> None:
    columns = 2 if len(traces) in (2, 4) else min(3, len(traces))
    grid = panel.subplots(math.ceil(len(traces) / columns), columns, squeeze=False)
    for index, axes in enumerate(grid.flat):
        if index >= len(traces):
            axes.set_axis_off()
            continue
        trace = traces[index]
        values = [math.nan if v is None else v for v in trace.per_1k]
        axes.axvspan(trace.baseline[0], trace.baseline[1], color="#dbe7f3", zorder=0)
        axes.plot(trace.days, values, color="#1f4e8c", linewidth=1.3)
        mean = _baseline_mean(trace)
        if mean is not None:
            axes.axhline(mean, color=MUTED_COLOUR, linewidth=0.9, linestyle="--")
        axes.axvline(trace.breach_day, color=VERDICT_STYLES["worse"].colour, linewidth=1.1, linestyle=":")
        axes.axvline(trace.fix_day, color=VERDICT_STYLES["improved"].colour, linewidth=1.4)
        axes.set_title(_mpl(_ticket_label(trace.ticket_key, trace.series, 44)), fontsize=8, loc="left")
        axes.set_ylim(bottom=0)
        if index % columns == 0:
            axes.set_ylabel("complaints per 1k orders", fontsize=8)
        _dated(axes)
        _style_axes(axes)
        axes.tick_params(labelsize=7)
    handles = [Patch(color="#dbe7f3", label="baseline period"),
               Line2D([], [], color=MUTED_COLOUR, linestyle="--", label="baseline mean"),
               Line2D([], [], color=VERDICT_STYLES["worse"].colour, linestyle=":", label="breach"),
               Line2D([], [], color=VERDICT_STYLES["improved"].colour, label="fix"),
               Line2D([], [], color="#1f4e8c", label="daily rate")]
    _legend(panel, handles, loc="outside lower center", ncols=len(handles))


def _fix_impact(data: DashboardData) -> Figure:
    fixes = _plotted_fixes(data.fixes)[:MAX_FOREST_ROWS]
    traces = list(data.traces[:MAX_TRACES])
    unplotted = len(_unplotted_fixes(data.fixes))
    forest_height = 1.5 + 0.32 * max(len(fixes), 1)
    columns = 2 if len(traces) in (2, 4) else 3
    traces_height = 2.3 * math.ceil(len(traces) / columns) + 0.5 if traces else 0.0
    figure = _figure(forest_height + traces_height)
    if not traces:
        _forest(figure, fixes, unplotted)
        return figure
    top, bottom = figure.subfigures(2, 1, height_ratios=[forest_height, traces_height])
    _forest(top, fixes, unplotted)
    _trace_panels(bottom, traces)
    return figure


def _axis_formatter(unit: str) -> Callable[[float, object], str]:
    if unit == "USD":
        return lambda value, _: _mpl(format_money(value))
    return lambda value, _: _mpl(format_number(value))


def _roi_summary(data: DashboardData) -> Figure:
    by_unit: dict[str, list[RoiFigure]] = defaultdict(list)
    for roi in data.roi:
        by_unit[roi.unit].append(roi)
    units = list(by_unit)
    heights = [0.55 + 0.38 * len(by_unit[unit]) for unit in units]
    figure = _figure(sum(heights) + 0.3)
    grid = figure.subplots(len(units), 1, squeeze=False, height_ratios=heights)
    for axes, unit in zip(grid[:, 0], units):
        figures = by_unit[unit]
        rows = range(len(figures))
        extent = [0.0] + [v for roi in figures for v in (roi.value, roi.low, roi.high) if v is not None]
        for row, roi in zip(rows, figures):
            if roi.value is None:
                axes.text(0.02, row, _mpl(f"unknown: {roi.note or 'not computed'}", 70),
                          transform=axes.get_yaxis_transform(), va="center", fontsize=8, color=MUTED_COLOUR,
                          style="italic")
                continue
            axes.barh(row, roi.value, height=0.55, color="#2f7f8f" if roi.value >= 0 else "#c0392b", alpha=0.85)
            if roi.low is not None and roi.high is not None:
                axes.errorbar([roi.value], [row], xerr=[[max(roi.value - roi.low, 0.0)],
                                                        [max(roi.high - roi.value, 0.0)]],
                              fmt="none", ecolor=TEXT_COLOUR, elinewidth=1.2, capsize=4)
            axes.text(1.02, row, _mpl(format_range(roi.value, roi.low, roi.high, unit)),
                      transform=axes.get_yaxis_transform(), va="center", fontsize=8, color=TEXT_COLOUR)
        span = max(extent) - min(extent) or 1.0
        axes.set_xlim(min(extent) - 0.04 * span, max(extent) + 0.06 * span)
        axes.axvline(0, color=TEXT_COLOUR, linewidth=0.8)
        axes.xaxis.set_major_formatter(FuncFormatter(_axis_formatter(unit)))
        axes.set_yticks(list(rows), labels=[_mpl(roi.name, 44) for roi in figures])
        axes.set_ylim(len(figures) - 0.5, -0.5)
        axes.set_title(_mpl(unit, 30), fontsize=9, loc="left", color=MUTED_COLOUR)
        _style_axes(axes)
    return figure


_BUILDERS: dict[str, Callable[[DashboardData], Figure]] = {
    "complaints_by_domain": _complaints_by_domain,
    "top_priorities": _top_priorities,
    "open_tickets_by_owner": _open_tickets_by_owner,
    "fix_impact": _fix_impact,
    "roi_summary": _roi_summary,
}


def _chart(chart_id: str, data: DashboardData) -> Figure:
    why = _empty_reason(chart_id, data)
    return _placeholder(why) if why else _BUILDERS[chart_id](data)


# ---------------------------------------------------------------- SVG and PNG

_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
_VIEWBOX = re.compile(r'viewBox="([^"]*)"')
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_COMMENT = re.compile(r"(<!--.*?-->)", re.S)
_ID_USE = re.compile(r'(\bid="|href="#|url\(#)([^")]+)')
_RANDOM_ID = re.compile(r"[a-z]{1,2}[0-9a-f]{10}")


def _inline_svg(raw: str, chart_id: str) -> str:
    """Matplotlib's SVG document as markup to inline in HTML: no prolog, no metadata, ids unique to the chart."""
    start = _SVG_OPEN.search(raw)
    assert start is not None, "matplotlib wrote no <svg> element"
    viewbox = _VIEWBOX.search(start.group(0))
    opening = (f'<svg viewBox="{viewbox.group(1) if viewbox else ""}" role="img" '
               f'aria-label="{html.escape(TITLES[chart_id])}">')
    body = _METADATA.sub("", raw[start.end():])
    # Several charts share one document, so ids are prefixed with the chart's; the clip-path ids matplotlib
    # salts at random are renumbered in order, which keeps the markup the same from one render to the next.
    renumbered: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        old = match.group(2)
        if old not in renumbered:
            renumbered[old] = (f"{chart_id}-{old[0]}{len(renumbered)}" if _RANDOM_ID.fullmatch(old)
                               else f"{chart_id}-{old}")
        return match.group(1) + renumbered[old]

    parts = _COMMENT.split(body)
    return opening + "".join(part if part.startswith("<!--") else _ID_USE.sub(rename, part) for part in parts)


def _svg(figure: Figure, chart_id: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return _inline_svg(buffer.getvalue().decode("utf-8"), chart_id)


def chart_svgs(data: DashboardData) -> dict[str, str]:
    """Each chart of `CHART_IDS` as inline `<svg>` markup; a chart with nothing to show yet says so."""
    return {chart_id: _svg(_chart(chart_id, data), chart_id) for chart_id in CHART_IDS}


def chart_pngs(data: DashboardData, dpi: int = 80) -> dict[str, bytes]:
    """Each chart of `CHART_IDS` as PNG bytes, for Dagster metadata."""
    pngs = {}
    for chart_id in CHART_IDS:
        buffer = io.BytesIO()
        _chart(chart_id, data).savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
        pngs[chart_id] = buffer.getvalue()
    return pngs


# ---------------------------------------------------------------- HTML

_CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1c2430;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"DejaVu Sans",Arial,sans-serif}
header,main,footer{max-width:1080px;margin:0 auto;padding:0 20px}
header{padding-top:28px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:18px;margin:0 0 10px}
.as-of{color:#5b6470;margin:0 0 18px}
.headline{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 18px;padding:0;list-style:none}
.headline li{flex:1 1 200px;background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:12px 14px}
.headline .value{display:block;font-size:24px;font-weight:650}
.headline .range,.headline .name{display:block;color:#5b6470;font-size:13px}
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:16px 18px;margin:0 0 18px;
break-inside:avoid}
section.chart svg{display:block;width:100%;height:auto}
.caption{color:#5b6470;font-size:13.5px;margin:8px 0 0}
.empty{background:#f4f5f7;border:1px dashed #b0b4ba;border-radius:6px;padding:18px;color:#5b6470;margin:0}
ul.items{margin:8px 0 0;padding-left:20px;font-size:13.5px}
table{border-collapse:collapse;width:100%;font-size:13.5px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e6e8eb;vertical-align:top}
th{color:#5b6470;font-weight:600}
td.num{white-space:nowrap;font-variant-numeric:tabular-nums}
footer{color:#5b6470;font-size:12.5px;padding-bottom:28px}
"""


def _caption(chart_id: str, data: DashboardData) -> str:
    if chart_id == "complaints_by_domain":
        totals: Counter[str] = Counter()
        for row in data.domain_days:
            totals[row.domain] += row.complaints
        total = sum(totals.values())
        first, last = min(r.day for r in data.domain_days), max(r.day for r in data.domain_days)
        domain, most = totals.most_common(1)[0]
        share = f"{most / total:.0%}" if total else "0%"
        return (f"{total:,} complaints from {first.isoformat()} to {last.isoformat()}, stacked by domain; "
                f"the largest is {_h(domain, 40)} with {share}.")
    if chart_id == "top_priorities":
        top = _top(data.priorities)
        known = [item.revenue_at_risk for item in top if item.revenue_at_risk is not None]
        unknown = [item for item in top if item.revenue_at_risk is None]
        text = (f"Priority score of the {len(top)} highest of {len(data.priorities)} open priorities; "
                f"{html.escape(format_money(sum(known)))} known revenue at risk across them.")
        if unknown:
            named = "; ".join(f"{_h(_ticket_label(item.ticket_key, item.series, 60))} "
                              f"({_h(item.unknown_reason or 'reason not recorded', 60)})" for item in unknown[:3])
            text += f" Revenue at risk unknown for {len(unknown)}: {named}."
        return text
    if chart_id == "open_tickets_by_owner":
        statuses = Counter(ticket.sla_status for ticket in data.open_tickets)
        owners = len({ticket.owner for ticket in data.open_tickets})
        return (f"{len(data.open_tickets)} open tickets across {owners} owners: {statuses['overdue']} overdue, "
                f"{statuses['due_soon']} due soon, {statuses['on_track']} on track.")
    if chart_id == "fix_impact":
        verdicts = Counter(fix.verdict for fix in _plotted_fixes(data.fixes))
        text = ("Complaints per 1,000 orders after each fix relative to before, with its 95% interval: "
                f"{verdicts['improved']} improved, {verdicts['worse']} worse, "
                f"{verdicts['inconclusive']} inconclusive.")
        if data.traces:
            shown = min(len(data.traces), MAX_TRACES)
            text += (f" Below, the daily rate of {shown} of {len(data.traces)} fixed series: baseline period "
                     "shaded, its mean dashed, the breach dotted and the fix solid.")
        return text
    return ("Central estimate with its low–high range; one panel per unit, since dollars and hours cannot share "
            "an axis. Unknown figures are named, never drawn as zero.")


def _extras(chart_id: str, data: DashboardData) -> str:
    if chart_id == "open_tickets_by_owner":
        overdue = sorted((t for t in data.open_tickets if t.sla_status == "overdue"), key=lambda t: (t.due, t.key))
        if not overdue:
            return ""
        items = "".join(f"<li>{_h(t.key, 30)} · {_h(t.owner, 40)} · {_h(t.summary)} (due {t.due.isoformat()}, "
                        f"{(data.as_of - t.due).days} days overdue)</li>" for t in overdue[:5])
        more = f"<li>and {len(overdue) - 5} more</li>" if len(overdue) > 5 else ""
        return f'<p class="caption">Most overdue:</p><ul class="items">{items}{more}</ul>'
    if chart_id == "fix_impact":
        waiting = _unplotted_fixes(data.fixes)
        if not waiting:
            return ""
        items = "".join(f"<li>{_h(_ticket_label(f.ticket_key, f.series, 60))} · {f.window_days}-day window: "
                        f"{_h(f.verdict.replace('_', ' '), 30)} — {_h(f.note)}</li>" for f in waiting[:MAX_LISTED])
        more = f"<li>and {len(waiting) - MAX_LISTED} more</li>" if len(waiting) > MAX_LISTED else ""
        return f'<p class="caption">Not plotted yet:</p><ul class="items">{items}{more}</ul>'
    return ""


def _chart_section(chart_id: str, data: DashboardData, svg: str) -> str:
    why = _empty_reason(chart_id, data)
    body = (f'<p class="empty">nothing to show yet: {html.escape(why)}</p>' if why
            else f'{svg}<p class="caption">{_caption(chart_id, data)}</p>')
    return (f'<section class="chart" id="{chart_id}"><h2>{html.escape(TITLES[chart_id])}</h2>{body}'
            f"{_extras(chart_id, data)}</section>")


def _headline(data: DashboardData) -> str:
    items = "".join(f'<li><span class="value">{_h(format_quantity(r.value, r.unit), 30)}</span>'
                    f'<span class="range">{_h(_range_only(r), 40)}</span>'
                    f'<span class="name">{_h(r.name, 60)}</span></li>' for r in data.roi[:4])
    return f'<ul class="headline">{items}</ul>' if items else ""


def _range_only(roi: RoiFigure, prefix: str = "range ") -> str:
    if roi.value is None or roi.low is None or roi.high is None:
        return "range unknown" if roi.value is not None else "not known yet"
    if roi.low == roi.high == roi.value:
        return "exact"
    bare = format_money if roi.unit == "USD" else format_number
    return f"{prefix}{bare(roi.low)}–{bare(roi.high)}"


def _roi_table(data: DashboardData) -> str:
    if not data.roi:
        return ('<section class="table" id="roi_table"><h2>ROI figures</h2>'
                '<p class="empty">nothing to show yet: no ROI figures have been computed yet</p></section>')
    rows = "".join(f'<tr><td>{_h(r.name)}</td><td class="num">{_h(format_quantity(r.value, r.unit), 40)}</td>'
                   f'<td class="num">{_h(_range_only(r, ""), 40)}</td><td>{_h(r.note, 160)}</td></tr>'
                   for r in data.roi)
    return ('<section class="table" id="roi_table"><h2>ROI figures</h2><table><thead><tr><th>Figure</th>'
            f"<th>Value</th><th>Range</th><th>Note</th></tr></thead><tbody>{rows}</tbody></table></section>")


def _assumptions_table(data: DashboardData) -> str:
    if not data.assumptions:
        return ('<section class="table" id="assumptions"><h2>Assumptions</h2>'
                '<p class="empty">nothing to show yet: no assumptions have been recorded</p></section>')
    rows = "".join(f'<tr><td>{_h(a.name)}</td><td class="num">{_h(format_number(a.value), 30)}</td>'
                   f"<td>{_h(a.unit, 30)}</td><td>{_h(a.source, 160)}</td></tr>" for a in data.assumptions)
    return ('<section class="table" id="assumptions"><h2>Assumptions</h2><p class="caption">What the ROI figures '
            "rest on, and who says so.</p><table><thead><tr><th>Assumption</th><th>Value</th><th>Unit</th>"
            f"<th>Source</th></tr></thead><tbody>{rows}</tbody></table></section>")


def render_dashboard(data: DashboardData) -> str:
    """The whole dashboard as one HTML document that needs nothing else: styles and charts are inline."""
    svgs = chart_svgs(data)
    sections = "".join(_chart_section(chart_id, data, svgs[chart_id]) for chart_id in CHART_IDS)
    as_of = data.as_of.isoformat()
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Feedback-to-Fix executive dashboard, as of {as_of}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>Does the feedback programme pay?</h1><p class="as-of">As of {as_of} · generated by '
        "Feedback-to-Fix from its gold tables and fix-impact measurements</p>"
        f"{_headline(data)}</header><main>{sections}{_roi_table(data)}{_assumptions_table(data)}</main>"
        "<footer>Rates are complaints per 1,000 orders; intervals are 95%. Figures marked unknown could not be "
        "computed from the data available and are never counted as zero.</footer></body></html>\n"
    )
