"""A batch the pace stretches over hours says so before it starts, so nobody takes it for hung."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.support.common import ServerFactory, TLSFiles, configure
from tests.support.samples import csv_batch
from xoromail_cli.cli import app
from xoromail_cli.pacing import pacing_notice


def test_ten_thousand_rows_at_thirty_a_minute_are_about_five_and_a_half_hours() -> None:
    notice = pacing_notice(10_000, 30 / 60, "Office 365 / Microsoft 365's published limit")
    assert notice is not None
    assert "10,000 messages at 30 a minute" in notice and "about 5.6 h" in notice
    assert "Office 365" in notice


def test_short_or_unpaced_runs_get_no_notice() -> None:
    assert pacing_notice(200, 30 / 60, "x") is None  # under ten minutes
    assert pacing_notice(10_000, None, "x") is None
    assert pacing_notice(1, 1 / 3600, "x") is None
    assert pacing_notice(400, 30 / 60, "x") == ("pacing: 400 messages at 30 a minute (x) take about 13 min; "
                                                "the run keeps to that pace")


def test_send_prints_the_notice_on_stderr_before_the_batch(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls)
    rows = csv_batch(tmp_path / "rows.csv", 2)
    args = [*base, "send", "--event", "overdue-invoice", "--batch", str(rows)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0 and "pacing:" not in first.output
    again = runner.invoke(app, [*args, "--rate", "1/h"])  # both rows are in the ledger: nothing waits
    assert again.exit_code == 0, again.output
    assert "pacing: 2 messages at 1 an hour (--rate) take about 1.0 h" in " ".join(again.stderr.split())


def test_an_hourly_cap_is_counted_in_how_long_the_batch_takes() -> None:
    notice = pacing_notice(1_000, 30 / 60, "Azure Communication Services SMTP's published limit", per_hour=100)
    assert notice is not None
    assert "1,000 messages at 30 a minute and 100 an hour" in notice and "about 9.1 h" in notice
    assert pacing_notice(100, 30 / 60, "x", per_hour=100) is None  # one hour's worth goes at 30 a minute
