"""The `feedback` command: helpful help, clear errors for bad input, landing real exports."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from feedback_assets.cli import app
from tests.conftest import SHARED_DATA

runner = CliRunner()


def invoke(*args: str):
    from resources.settings import settings

    settings.cache_clear()
    return runner.invoke(app, list(args))


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ["seed", "ingest", "materialize", "summary", "demo", "sources"]:
        assert command in result.output


def test_sources_lists_presets_with_their_contract(feedback_home):
    result = invoke("sources")
    assert result.exit_code == 0
    assert "datafiniti_amazon_reviews" in result.output and "feedback" in result.output


def test_unknown_source_is_a_clear_error(feedback_home, tmp_path):
    export = tmp_path / "x.csv"
    export.write_text("a\n1\n")
    result = invoke("ingest", "--source", "nope", "--file", str(export))
    assert result.exit_code == 2 and "unknown source preset 'nope'" in result.output


def test_a_file_missing_required_columns_is_refused_with_names(feedback_home, tmp_path):
    export = tmp_path / "reviews.csv"
    export.write_text("review_id,stars\nR1,5\n")
    result = invoke("ingest", "--source", "product_reviews", "--file", str(export))
    assert result.exit_code == 1
    assert "missing required column(s) body, headline, submitted_at" in result.output


def test_a_bad_date_option_names_the_option(feedback_home, tmp_path):
    export = tmp_path / "reviews.csv"
    export.write_text("review_id\n")
    result = invoke("ingest", "--source", "product_reviews", "--file", str(export), "--shift-to-end", "yesterday")
    assert result.exit_code == 2 and "--shift-to-end" in result.output


def test_materialize_before_anything_landed_says_what_to_do(feedback_home):
    result = invoke("materialize")
    assert result.exit_code == 1 and "feedback seed" in result.output


@pytest.mark.realdata
@pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not present")
def test_ingest_a_real_export_then_again(feedback_home):
    export = SHARED_DATA / "womens_clothing_ecommerce_reviews.csv"
    first = invoke("ingest", "--source", "womens_clothing_reviews", "--file", str(export), "--anchor-date", "2026-11-27")
    assert first.exit_code == 0, first.output
    assert "23,486 records on 60 day(s) 2026-09-29 .. 2026-11-27" in first.output
    again = invoke("ingest", "--source", "womens_clothing_reviews", "--file", str(export))
    assert again.exit_code == 0 and "was landed before" in again.output


def test_a_local_ticket_is_resolved_back_dated_listed_and_an_unknown_one_refused(feedback_home):
    from datetime import date

    from resources.tickets import LocalTicketStore
    from tests.alert_factory import make_alert

    key = LocalTicketStore(feedback_home / "tickets").create(make_alert(), date(2026, 10, 17)).key
    resolved = invoke("tickets", "resolve", key, "--code", "resolved", "--note", "size guide updated", "--on", "2026-10-20")
    assert resolved.exit_code == 0 and f"{key}: done (resolved) on 2026-10-20" in resolved.output
    listed = invoke("tickets", "list")
    assert key in listed.output and "resolved" in listed.output
    unknown = invoke("tickets", "resolve", "FIT-999", "--code", "resolved")
    assert unknown.exit_code == 1 and "no local ticket FIT-999" in unknown.output
    bad = invoke("tickets", "resolve", key, "--code", "fixed")
    assert bad.exit_code == 2


def test_the_dashboard_command_says_when_there_is_none_yet(feedback_home):
    result = invoke("dashboard")
    assert result.exit_code == 1 and "no dashboard yet" in result.output
