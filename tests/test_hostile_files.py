"""Hostile or damaged files: settings nested too deeply, an overlong host label, a ledger damaged inside or
emptied, an outbox folder open to everyone."""

from __future__ import annotations

import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import ServerFactory, TLSFiles, configure
from tests.support.samples import csv_batch
from xoromail_cli.cli import app
from xoromail_cli.errors import ConfigError, ExitCode
from xoromail_cli.ledger.accounts import account_key
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.local.sink import SinkServer

SEND = ["send", "--event", "overdue-invoice", "--retry-delay", "0"]


def test_a_settings_file_nested_too_deeply_is_exit_78(runner: CliRunner, config_path: Path) -> None:
    config_path.parent.mkdir(parents=True)
    config_path.write_text("[profiles.default]\nemail = 'a@b.test'\nx = " + "[" * 50000 + "]" * 50000 + "\n",
                           encoding="utf-8")
    result = runner.invoke(app, ["--config", str(config_path), "config", "show"])
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "nested too deeply" in result.output


def test_a_host_label_over_63_characters_is_exit_78(runner: CliRunner, config_path: Path) -> None:
    config_path.parent.mkdir(parents=True)
    config_path.write_text("[profiles.default]\nemail = 'a@b.test'\nservice = 'smtp'\n[profiles.default.smtp]\n"
                           f"host = '{'a' * 64}.example.com'\nport = 587\n", encoding="utf-8")
    result = runner.invoke(app, ["--config", str(config_path), "validate", "--no-send"],
                           env={"XOROMAIL_PASSWORD": "x"})
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "longer than 63" in result.output


def ledger_path(home: Path) -> Path:
    return home / "state" / "xoromail" / "ledger.sqlite3"


def sent_once(runner: CliRunner, server: SinkServer, tls: TLSFiles, config_path: Path,
              tmp_path: Path) -> tuple[SinkServer, list[str], Path]:
    """A two-row batch sent through `server`, so the ledger exists: the server, the global options, the batch."""
    base = configure(config_path, server, tls)
    batch = csv_batch(tmp_path / "r.csv", 2)
    assert runner.invoke(app, [*base, *SEND, "--batch", str(batch)]).exit_code == 0
    return server, base, batch


def test_a_ledger_row_damaged_by_hand_stops_send_with_a_clear_error(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path) -> None:
    server, base, batch = sent_once(runner, smtp_server(), tls, config_path, tmp_path)
    database = sqlite3.connect(ledger_path(isolated_environment))
    with database:
        database.execute("UPDATE messages SET created_at = 'last tuesday'")
    database.close()
    result = runner.invoke(app, [*base, *SEND, "--batch", str(batch)])
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "is damaged" in result.output and "does not read as a message" in result.output
    assert len(server.messages) == 2


def test_pages_damaged_inside_the_ledger_are_a_clear_error_when_counting_the_days_sends(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    account = account_key("billing@company.test")
    with Ledger(path) as ledger:
        for number in range(2000):
            ledger.record(account, "overdue-invoice", f"k{number}", ("x@client.test",), f"<{number}@company.test>",
                          number, "sent", "250 ok")
    data = bytearray(path.read_bytes())
    for offset in range(8192, len(data), 4096):  # every page after the schema's
        data[offset + 100:offset + 600] = bytes(range(250)) * 2
    path.write_bytes(bytes(data))
    with Ledger(path) as ledger, pytest.raises(ConfigError, match="cannot read the ledger"):
        ledger.count_since(account, datetime.now(UTC) - timedelta(days=1))  # the daily quota's count


def test_an_empty_ledger_file_is_not_taken_for_a_new_one(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path) -> None:
    server, base, batch = sent_once(runner, smtp_server(), tls, config_path, tmp_path)
    path = ledger_path(isolated_environment)
    for leftover in path.parent.glob("ledger.sqlite3-*"):
        leftover.unlink()
    path.write_bytes(b"")  # emptied by a full disk or a stray `>`
    again = runner.invoke(app, [*base, *SEND, "--batch", str(batch)])
    assert again.exit_code == ExitCode.DATAERR, again.output
    assert "empty file" in again.output and "backup" in again.output
    assert len(server.messages) == 2, "the rows already sent went out again"
    for reading in (["log"], [*SEND, "--batch", str(batch), "--dry-run", "--pending"]):
        shown = runner.invoke(app, [*base, *reading])  # read-only, not "damaged: move it away"
        assert shown.exit_code == ExitCode.DATAERR, shown.output
        assert "empty file" in shown.output and "backup" in shown.output and "move the ledger" not in shown.output


def test_an_existing_outbox_open_to_everyone_is_tightened_to_0700(
        runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    os.chmod(outbox, 0o777)  # noqa: S103  # the mistake under test: a folder open to everyone
    result = runner.invoke(app, [*base, *SEND, "--batch", str(csv_batch(tmp_path / "r.csv", 1)),
                                 "--outbox", str(outbox)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    assert [stat.S_IMODE(f.stat().st_mode) for f in outbox.glob("*.eml")] == [0o600]
