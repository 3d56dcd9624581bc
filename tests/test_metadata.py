"""Customer text shown in the Dagster UI is inert: no HTML, links, emphasis or table breakout."""

from __future__ import annotations

from feedback_assets.metadata import escape_markdown_cell, markdown_table


def test_markup_and_table_syntax_in_customer_text_are_escaped():
    cell = escape_markdown_cell("<img src=x onerror=alert(1)> **buy** [here](http://evil) | col")
    assert "<img" not in cell and "&lt;img" in cell
    assert "\\*\\*buy\\*\\*" in cell and "\\[here\\]\\(http://evil\\)" in cell and "\\|" in cell


def test_long_and_multi_line_text_is_one_short_cell():
    cell = escape_markdown_cell("line one\nline two " + "x" * 500, limit=40)
    assert "\n" not in cell and len(cell) == 40 and cell.endswith("…")


def test_a_table_has_one_row_per_record():
    table = markdown_table([{"channel": "surveys", "text_clean": "a | b"}, {"channel": "app", "text_clean": None}]).value
    assert table.splitlines() == ["| channel | text_clean |", "|---|---|", "| surveys | a \\| b |", "| app |  |"]
