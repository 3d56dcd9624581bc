"""The executive dashboard: one HTML file that works offline, shows charts of every part of the programme, says
"nothing to show yet" rather than drawing an empty chart, and keeps customer-derived text inert."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest
from matplotlib.font_manager import findfont, get_font

from feedback_assets.roi.dashboard import (
    CHART_IDS,
    VERDICT_STYLES,
    Assumption,
    DashboardData,
    DomainDay,
    FixImpact,
    OpenTicket,
    PriorityItem,
    RoiFigure,
    SeriesTrace,
    chart_pngs,
    chart_svgs,
    format_money,
    format_range,
    render_dashboard,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
AS_OF = date(2026, 11, 27)
HOSTILE_SUMMARY = "<img src=x onerror=alert(1)>"
MATHTEXT = r"$\frac{1}{2}$"
UNKNOWN_REASON = "no order value for this SKU"


def _trace(ticket_key: str, series: str, fix_offset: int, base: float, spike: float, after: float) -> SeriesTrace:
    first = AS_OF - timedelta(days=59)
    days = tuple(first + timedelta(days=n) for n in range(60))
    breach, fix = first + timedelta(days=fix_offset - 6), first + timedelta(days=fix_offset)
    per_1k: list[float | None] = []
    for n, day in enumerate(days):
        level = base if day < breach else spike if day < fix else after
        per_1k.append(None if n % 17 == 5 else round(level + (n % 5) * 0.08, 2))
    return SeriesTrace(ticket_key, series, days, tuple(per_1k), breach, fix,
                       (first, breach - timedelta(days=1)))


def _fix(ticket_key: str, series: str, window: int, ratio: float | None, low: float | None, high: float | None,
         verdict: str, avoided: float | None = None, note: str = "") -> FixImpact:
    return FixImpact(ticket_key, series, "resolved", window, ratio, low, high, verdict,
                     None if ratio is None else 4.2, None if ratio is None else 4.2 * ratio,
                     avoided, None if avoided is None else avoided - abs(avoided) * 0.3,
                     None if avoided is None else avoided + abs(avoided) * 0.3, note)


def realistic_data() -> DashboardData:
    """Sixty days of a programme in flight: five domains, ten-plus priorities, tickets in every SLA state,
    fixes with every verdict, their before/after traces, ROI figures in three units and their assumptions."""
    first = AS_OF - timedelta(days=59)
    domains = {"checkout": 22, "delivery": 31, "sizing": 14, "payments": 9, "returns": 6}
    domain_days = tuple(
        DomainDay(first + timedelta(days=n), domain, level + (n * 7 + len(domain)) % 9 + (12 if domain == "checkout"
                                                                                       and 20 <= n < 28 else 0))
        for n in range(60) for domain, level in domains.items())
    priorities = (
        PriorityItem("checkout_payment_issue · platform=android", 91.5, "Highest", 12_300.0, None, "FTF-101"),
        PriorityItem("late_delivery · carrier=ParcelNow · region=north-east", 84.0, "Highest", 48_900.0, None,
                     "FTF-102"),
        PriorityItem(f"size_runs_small · sku=JKT-1042 {MATHTEXT}", 77.2, "High", None, UNKNOWN_REASON, "FTF-103"),
        PriorityItem("refund_delay · payment_method=paypal", 70.0, "High", 6_150.0, None, "FTF-104"),
        PriorityItem("damaged_item · warehouse=DE-2", 62.4, "High", 3_400.0, None, None),
        PriorityItem("promo_code_rejected · campaign=BLACKFRIDAY", 55.0, "Medium", 21_000.0, None, "FTF-106"),
        PriorityItem("app_crash_on_login · app_version=7.4.1", 48.8, "Medium", 9_800.0, None, "FTF-107"),
        PriorityItem("wrong_item_shipped · " + "very long series key " * 6, 41.0, "Medium", 2_100.0, None, None),
        PriorityItem("tracking_not_updating · carrier=QuickShip", 33.3, "Low", 950.0, None, "FTF-109"),
        PriorityItem("color_differs_from_photo · sku=DRS-0077", 27.0, "Low", 400.0, None, None),
        PriorityItem("gift_wrap_missing · region=south", 12.0, "Low", 120.0, None, None),
    )
    owners = ("payments-team", "logistics", "catalogue", "mobile-app", "customer-care")
    statuses = ("overdue", "due_soon", "on_track", "on_track", "due_soon", "on_track", "overdue")
    open_tickets = tuple(
        OpenTicket(f"FTF-{200 + n}", owners[n % len(owners)],
                   HOSTILE_SUMMARY if n == 7 else f"Complaints about {domain} rising ({n})",
                   AS_OF + timedelta(days=(-4 if statuses[n % 7] == "overdue" else 2 if statuses[n % 7] == "due_soon"
                                           else 10) + n % 3),
                   statuses[n % 7])
        for n, domain in enumerate(list(domains) * 4))
    fixes = (
        _fix("FTF-090", "checkout_payment_issue · platform=ios", 14, 0.42, 0.30, 0.58, "improved", 310.0),
        _fix("FTF-090", "checkout_payment_issue · platform=ios", 28, 0.47, 0.37, 0.60, "improved", 590.0),
        _fix("FTF-091", "late_delivery · carrier=ParcelNow", 14, 0.88, 0.62, 1.24, "inconclusive", 40.0),
        _fix("FTF-092", "refund_delay · payment_method=card", 14, 1.35, 1.08, 1.70, "worse", -85.0),
        _fix("FTF-093", "size_runs_small · sku=TRS-2201", 28, None, None, None, "pending",
             note="window completes 2026-12-20"),
        _fix("FTF-094", "app_crash_on_login · app_version=7.3", 14, None, None, None, "no_baseline",
             note="the series has no complaints before its spike"),
    )
    traces = (
        _trace("FTF-090", "checkout_payment_issue · platform=ios", 25, 1.1, 3.4, 0.6),
        _trace("FTF-091", "late_delivery · carrier=ParcelNow", 35, 2.0, 4.1, 1.8),
        _trace("FTF-092", "refund_delay · payment_method=card", 40, 0.8, 1.9, 1.5),
        _trace("FTF-093", "size_runs_small · sku=TRS-2201", 50, 0.5, 1.6, 0.4),
    )
    roi = (
        RoiFigure("Net benefit to date", 182_400.0, 121_000.0, 246_000.0, "USD", "revenue protected minus cost"),
        RoiFigure("Revenue protected", 231_900.0, 160_000.0, 301_000.0, "USD", "avoided complaints × order value"),
        RoiFigure("Programme cost", 49_500.0, 49_500.0, 49_500.0, "USD", "engineering and triage hours"),
        RoiFigure("Support hours saved", 1_240.0, 880.0, 1_610.0, "hours", "avoided contacts × handling time"),
        RoiFigure("Triage hours spent", 310.0, None, None, "hours", "from the time-tracking export"),
        RoiFigure("Complaints avoided", 1_120.0, 790.0, 1_460.0, "complaints", "sum over improved fixes"),
        RoiFigure("Median days to fix", 9.5, 6.0, 14.0, "days", "breach to resolution"),
        RoiFigure("Churn avoided", None, None, None, "USD", "no retention data yet"),
    )
    assumptions = (
        Assumption("Average order value", 84.0, "USD", "finance, FY2026 plan, $AOV sheet"),
        Assumption("Handling time per contact", 11.0, "minutes", "support ops, Q3 time-and-motion study"),
        Assumption("Loaded cost per engineering hour", 95.0, "USD", "finance rate card"),
        Assumption("Share of complainers who churn", 0.08, "ratio", HOSTILE_SUMMARY),
    )
    return DashboardData(AS_OF, domain_days, priorities, open_tickets, fixes, traces, roi, assumptions)


def empty_data() -> DashboardData:
    """The first morning of the programme: nothing counted, prioritised, ticketed, fixed or priced yet."""
    return DashboardData(AS_OF, (), (), (), (), (), (), ())


@pytest.fixture(scope="module")
def realistic_html() -> str:
    return render_dashboard(realistic_data())


def _section(page: str, chart_id: str) -> str:
    match = re.search(rf'<section class="chart" id="{chart_id}">(.*?)</section>', page, re.S)
    assert match, f"no section for {chart_id}"
    return match.group(1)


def _visible_text(markup: str) -> str:
    return re.sub(r"<!--.*?-->|<[^>]+>", " ", markup, flags=re.S)


class _Markup(HTMLParser):
    """The tags of a page and their attributes, as a browser's tokenizer sees them."""

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def test_the_page_is_self_contained_and_fetches_nothing(realistic_html):
    tags = _Markup(realistic_html).tags
    links = [value or "" for _, attrs in tags for name, value in attrs.items()
             if name in ("src", "href", "xlink:href", "srcset", "action", "poster", "data")]
    assert links, "the charts refer to their own glyphs and clip paths"
    assert all(link.startswith("#") for link in links), [link for link in links if not link.startswith("#")]
    assert {tag for tag, _ in tags}.isdisjoint({"script", "link", "img", "iframe", "object", "embed", "base"})
    assert not any(name.startswith("on") for _, attrs in tags for name in attrs)
    for forbidden in ("<script src", "@import", "url(http", "<link", "<iframe", "<object"):
        assert forbidden not in realistic_html.lower()
    assert realistic_html.startswith("<!DOCTYPE html>") and "<?xml" not in realistic_html
    assert "<!DOCTYPE svg" not in realistic_html


def test_every_chart_has_a_section_with_a_heading_an_svg_and_a_caption(realistic_html):
    for chart_id in CHART_IDS:
        section = _section(realistic_html, chart_id)
        assert "<h2>" in section and '<p class="caption">' in section
        assert section.count("<svg") == 1 and "<path" in section
        assert "nothing to show yet" not in section


def test_ids_stay_unique_across_the_charts_of_one_page(realistic_html):
    ids = re.findall(r'\bid="([^"]+)"', realistic_html)
    assert len(ids) == len(set(ids))
    referenced = set(re.findall(r'(?:href="#|url\(#)([^")]+)', realistic_html))
    assert referenced <= set(ids)


def test_the_same_data_renders_the_same_page():
    assert render_dashboard(realistic_data()) == render_dashboard(realistic_data())


def test_header_says_as_of_when_and_who_generated_it(realistic_html):
    header = realistic_html.split("</header>")[0]
    assert "As of 2026-11-27" in header and "generated by Feedback-to-Fix" in header


def test_hostile_text_is_escaped_never_markup(realistic_html):
    assert HOSTILE_SUMMARY not in realistic_html
    assert "&lt;img src=x onerror=alert(1)&gt;" in _section(realistic_html, "open_tickets_by_owner")
    assert "&lt;img src=x onerror=alert(1)&gt;" in realistic_html.split('id="assumptions"')[1]


def test_hostile_text_cannot_break_out_of_attributes_or_tables():
    data = realistic_data()
    attack = '"><b onmouseover=x>&amp; </td></tr></table><!-- --!> -->'
    data = replace(data, roi=(*data.roi, RoiFigure(attack, 1.0, 0.5, 2.0, attack, attack)),
                   assumptions=(Assumption(attack, 1.0, attack, attack),))
    page = render_dashboard(data)
    assert "<b " not in page and "</td></tr></table><!--" not in page
    assert page.count("<table>") == page.count("</table>") == 2
    assert page.count("<!--") == page.count("-->")


def test_dollar_signs_and_backslashes_in_labels_are_drawn_literally_not_as_mathtext():
    broken_math = r"$\frac{1}{2$ and $\undefinedcommand$"
    data = replace(realistic_data(), priorities=(
        PriorityItem(f"series {MATHTEXT}", 80.0, "High", 1_000.0, None, "FTF-1"),
        PriorityItem(f"series {broken_math}", 70.0, "High", None, f"reason {MATHTEXT}", "FTF-2"),
    ))
    svg = chart_svgs(data)["top_priorities"]  # malformed mathtext would raise while drawing
    assert r"series $\frac{1}{2}$" in svg and r"reason $\frac{1}{2}$" in svg
    # Typeset as mathtext, the fraction would be drawn without a backslash glyph.
    font = get_font(findfont("DejaVu Sans"))
    assert f'href="#top_priorities-DejaVuSans-{font.get_char_index(ord(chr(92))):x}"' in svg


def test_unknown_revenue_at_risk_is_shown_as_unknown_with_its_reason_never_as_zero():
    data = replace(realistic_data(), priorities=(
        PriorityItem("size_runs_small · sku=JKT-1042", 77.0, "High", None, UNKNOWN_REASON, "FTF-103"),
        PriorityItem("refund_delay · payment_method=paypal", 70.0, "High", 6_150.0, None, "FTF-104"),
    ))
    section = _section(render_dashboard(data), "top_priorities")
    assert f"revenue at risk unknown: {UNKNOWN_REASON}" in section
    assert "$6.2k at risk" in section
    assert "$0" not in section


def test_unknown_roi_figures_are_named_as_unknown_never_as_zero(realistic_html):
    section = _section(realistic_html, "roi_summary")
    assert "unknown: no retention data yet" in section
    churn_row = re.search(r"<tr><td>Churn avoided</td>.*?</tr>", realistic_html).group(0)
    assert "unknown" in churn_row and "$0" not in churn_row


def test_pending_and_baseline_less_measurements_are_listed_as_text_not_plotted(realistic_html):
    section = _section(realistic_html, "fix_impact")
    listed = _visible_text(section.split("</svg>")[1])
    assert "FTF-093" in listed and "window completes 2026-12-20" in listed
    assert "FTF-094" in listed and "no baseline" in listed
    drawn = re.findall(r"<!-- (.*?) -->", section.split("</svg>")[0])
    assert "FTF-090 · checkout_payment_issue · platform=ios · 14d" in drawn
    assert not any(label.startswith(("FTF-093", "FTF-094")) and label.endswith("d") for label in drawn)


def test_overdue_tickets_are_listed_with_their_owner_and_how_late_they_are(realistic_html):
    listed = _visible_text(_section(realistic_html, "open_tickets_by_owner").split("</svg>")[1])
    assert "Most overdue" in listed and "FTF-200 · payments-team" in listed and "days overdue" in listed


def test_long_labels_are_cut_with_an_ellipsis(realistic_html):
    assert "very long series key very long" in realistic_html
    assert ("very long series key " * 6).strip() not in realistic_html
    assert "…" in realistic_html


def test_an_empty_programme_says_nothing_to_show_yet_in_every_section_instead_of_a_chart():
    page = render_dashboard(empty_data())
    for chart_id in CHART_IDS:
        section = _section(page, chart_id)
        assert "nothing to show yet: " in section, chart_id
        assert "<svg" not in section
    tables = page.split("</section>")[-3:]
    assert all("nothing to show yet" in part for part in tables[:2])


def test_measurements_still_under_way_are_not_an_empty_chart_but_a_list_of_what_is_coming():
    data = realistic_data()
    page = render_dashboard(replace(data, fixes=tuple(f for f in data.fixes if f.verdict == "pending"), traces=()))
    section = _section(page, "fix_impact")
    assert "nothing to show yet: no fix has completed a measurement window yet" in section
    assert "window completes 2026-12-20" in section and "<svg" not in section


def test_an_empty_chart_is_still_a_picture_that_says_so():
    svgs, pngs = chart_svgs(empty_data()), chart_pngs(empty_data())
    assert set(svgs) == set(pngs) == set(CHART_IDS)
    assert all("nothing to show yet" in svg for svg in svgs.values())
    assert all(png.startswith(PNG_SIGNATURE) for png in pngs.values())


def test_every_chart_is_also_a_small_valid_png():
    pngs = chart_pngs(realistic_data())
    assert set(pngs) == set(CHART_IDS)
    for chart_id, png in pngs.items():
        assert png.startswith(PNG_SIGNATURE), chart_id
        assert 1_000 < len(png) < 150_000, (chart_id, len(png))


def test_chart_svgs_are_inline_markup_without_prolog_or_doctype():
    for chart_id, svg in chart_svgs(realistic_data()).items():
        assert svg.startswith("<svg ") and svg.rstrip().endswith("</svg>"), chart_id
        assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<metadata" not in svg


def test_improved_worse_and_inconclusive_have_distinct_colours_markers_and_labels():
    styles = [VERDICT_STYLES[verdict] for verdict in ("improved", "worse", "inconclusive")]
    for attribute in ("colour", "marker", "label"):
        assert len({getattr(style, attribute) for style in styles}) == 3, attribute
    assert VERDICT_STYLES["improved"].label.startswith("improved")
    assert VERDICT_STYLES["inconclusive"].label.startswith("inconclusive")


def test_verdicts_are_drawn_in_their_colours(realistic_html):
    forest = _section(realistic_html, "fix_impact").lower()
    for verdict in ("improved", "worse", "inconclusive"):
        assert VERDICT_STYLES[verdict].colour in forest, verdict


@pytest.mark.parametrize(("value", "shown"), [
    (0.0, "$0"), (950.0, "$950"), (12_300.0, "$12.3k"), (999_960.0, "$1.0M"), (1_234_567.0, "$1.2M"),
    (-4_500.0, "-$4.5k"), (None, "unknown"),
])
def test_money_is_short_and_unknown_is_never_zero(value, shown):
    assert format_money(value) == shown


@pytest.mark.parametrize(("args", "shown"), [
    ((1_200.0, 900.0, 1_500.0), "1,200 (900–1,500)"),
    ((12_300.0, 9_100.0, 15_000.0, "USD"), "$12.3k ($9.1k–$15.0k)"),
    ((1_240.0, 880.0, 1_610.0, "hours"), "1,240 hours (880–1,610)"),
    ((9.5, None, None, "days"), "9.5 days"),
    ((None, 1.0, 2.0, "USD"), "unknown"),
])
def test_ranges_read_as_value_then_interval(args, shown):
    assert format_range(*args) == shown
