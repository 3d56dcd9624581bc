"""Pictures of a complaint series: a PNG per alert for the UI and the ticket, drawn from stored velocity rows."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import unquote

import pyarrow as pa

from feedback_assets import tables
from feedback_assets.alerts.chart import (
    SeriesDay, markdown_image, read_velocity_history, series_history, velocity_chart_png,
)
from feedback_assets.alerts.raised import day_counts, dispatch_runs_url, raised_markdown

from resources.table_store import LocalParquetTableStore
from resources.tickets import JiraTicketSink, LocalTicketStore
from tests.alert_factory import make_alert
from tests.loopback_jira import LoopbackJira

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DAY = date(2026, 11, 20)
SERIES = "size_runs_small:sku=JKT-1042"


def _velocity_rows(series: str, days: int, spike_on: date) -> list[dict]:
    rows = []
    for n in range(days):
        day = spike_on - timedelta(days=days - 1 - n)
        spike = day == spike_on
        rows.append({"series_key": series, "feedback_date": day, "complaints": 14 if spike else 3, "ma7": 3.5,
                     "ma28": 3.2, "breach": spike, "alert": spike})
    return rows


def _store_with(tmp_path, rows: list[dict]) -> LocalParquetTableStore:
    store = LocalParquetTableStore(root=str(tmp_path / "warehouse"))
    for day in sorted({r["feedback_date"] for r in rows}):
        of_day = [{k: v for k, v in r.items() if k != "feedback_date"} for r in rows if r["feedback_date"] == day]
        store.write_part(tables.COMPLAINT_VELOCITY, day, "part", pa.Table.from_pylist(of_day))
    return store


def test_the_history_is_the_series_own_rows_oldest_first(tmp_path):
    store = _store_with(tmp_path, _velocity_rows(SERIES, 50, DAY) + _velocity_rows("other:sku=X", 5, DAY))
    history = series_history(read_velocity_history(store, DAY, DAY), SERIES, DAY)
    assert len(history) == 42 and history[-1] == SeriesDay(DAY, 14, 3.5, 3.2, True)
    assert [h.day for h in history] == sorted(h.day for h in history)


def test_a_chart_is_a_png_even_for_hostile_titles_and_no_history():
    for title in ("$\\frac{1}{0}$ <script>alert(1)</script>", "x" * 5_000, ""):
        assert velocity_chart_png([SeriesDay(DAY, 3, 2.0, 1.0, True)], title, DAY).startswith(PNG_SIGNATURE)
    assert velocity_chart_png([], SERIES, DAY).startswith(PNG_SIGNATURE)


def test_the_inline_image_cannot_break_out_of_its_markdown():
    image = markdown_image(b"png", "a](javascript:alert(1)) ![x")
    alt = image[2:image.index("](data:")]
    assert image.startswith("![") and "(" not in alt and ")" not in alt and "[" not in alt and "]" not in alt


def test_each_day_counts_its_own_series_breaches_and_alerts(tmp_path):
    store = _store_with(tmp_path, _velocity_rows(SERIES, 3, DAY) + _velocity_rows("other:sku=X", 3, DAY))
    days = [DAY - timedelta(days=1), DAY, DAY + timedelta(days=1)]
    counts = day_counts(read_velocity_history(store, days[0], days[-1]), days)
    assert counts[DAY].series == 2 and counts[DAY].alerts == 2 and counts[DAY - timedelta(days=1)].alerts == 0
    assert counts[DAY + timedelta(days=1)].series == 0


def test_what_a_day_raised_links_to_its_dispatch_runs_and_shows_its_chart(tmp_path):
    store = _store_with(tmp_path, _velocity_rows(SERIES, 30, DAY))
    alert = {"series_key": SERIES, "complaints": 14, "lift": 4.2, "p_value": 1e-6}
    text = raised_markdown(read_velocity_history(store, DAY, DAY), DAY, [alert], "http://127.0.0.1:3000/")
    url = dispatch_runs_url("http://127.0.0.1:3000/", f"{SERIES}@{DAY}")
    assert f"[Dispatch runs]({url})" in text and "data:image/png;base64," in text
    assert unquote(url).endswith(f"/runs?q[0]=tag:breach_key={SERIES}@{DAY}") and "|" not in url and " " not in url


def test_the_local_ticket_keeps_its_chart_beside_it(tmp_path):
    tickets = LocalTicketStore(tmp_path / "tickets")
    ticket = tickets.create(make_alert(chart_png=PNG_SIGNATURE + b"chart"), DAY)
    picture = tickets.path_of(ticket.key).with_suffix(".png")
    assert picture.read_bytes() == PNG_SIGNATURE + b"chart"
    assert f"]({ticket.key}.png)" in tickets.path_of(ticket.key).read_text()


def test_jira_gets_the_chart_as_an_attachment_and_a_failed_upload_keeps_the_ticket():
    with LoopbackJira() as server:
        sink = JiraTicketSink(server.url, server.user, server.api_token, max_retry_delay=0)
        ticket = sink.create(make_alert(chart_png=PNG_SIGNATURE + b"chart"), DAY)
        [attachment] = server.attachments_of(ticket.key)
        assert attachment["content"] == PNG_SIGNATURE + b"chart" and attachment["filename"].endswith("-velocity.png")

        server.add_fault("500", route="attach")
        second = sink.create(make_alert(chart_png=PNG_SIGNATURE + b"chart", value="JKT-2000"), DAY)
        assert second.key != ticket.key and server.attachments_of(second.key) == []
        assert len(server.issues) == 2
