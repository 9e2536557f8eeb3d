from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, profile_for
from tests.support.samples import csv_batch
from tests.support.servers import RefuseRecipient
from xoromail_cli import config, credentials
from xoromail_cli.cli import app


def test_log_lists_sent_messages_and_failed_shows_what_needs_attention(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    server = smtp_server(handler=RefuseRecipient("c2@client.test"))
    config.save_profile(config_path, profile_for(server, tls))
    credentials.store_password("default", PASSWORD)
    base = ["--config", str(config_path)]
    runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(csv_batch(tmp_path / "r.csv", 3))])
    everything = [json.loads(line) for line in runner.invoke(app, [*base, "log", "--json"]).stdout.splitlines()]
    assert [entry["status"] for entry in everything] == ["sent", "failed", "sent"]
    assert everything[0]["message_id"].endswith("@company.test>") and everything[0]["reply"].startswith("250")
    failed = [json.loads(line) for line in runner.invoke(app, [*base, "log", "--failed", "--json"]).stdout.splitlines()]
    assert [entry["recipients"] for entry in failed] == [["c2@client.test"]]
    to_one = runner.invoke(app, [*base, "log", "--to", "c3@client.test", "--json"]).stdout.splitlines()
    assert len(to_one) == 1
    table = runner.invoke(app, [*base, "log", "--since", "1d", "--event", "overdue-invoice"])
    assert table.exit_code == 0 and "c3@client.test" in table.output and "550 5.1.1" in table.output


def test_log_without_a_ledger_says_nothing_to_show(runner: CliRunner, tls: TLSFiles, config_path: Path,
                                                   smtp_server: ServerFactory) -> None:
    config.save_profile(config_path, profile_for(smtp_server(), tls))
    result = runner.invoke(app, ["--config", str(config_path), "log", "--failed"])
    assert result.exit_code == 0 and "Nothing to show that needs attention" in result.output


def test_log_rejects_a_bad_since(runner: CliRunner, tls: TLSFiles, config_path: Path,
                                 smtp_server: ServerFactory) -> None:
    config.save_profile(config_path, profile_for(smtp_server(), tls))
    assert runner.invoke(app, ["--config", str(config_path), "log", "--since", "yesterday-ish"]).exit_code == 2


def test_reading_the_log_never_writes_to_the_ledger(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path) -> None:
    server = smtp_server()
    config.save_profile(config_path, profile_for(server, tls))
    credentials.store_password("default", PASSWORD)
    base = ["--config", str(config_path)]
    runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(csv_batch(tmp_path / "r.csv", 2))])
    ledger = isolated_environment / "state" / "xoromail" / "ledger.sqlite3"
    before = ledger.read_bytes()
    assert runner.invoke(app, [*base, "log", "--json"]).exit_code == 0
    assert ledger.read_bytes() == before
    wal = ledger.with_name("ledger.sqlite3-wal")
    assert not wal.exists() or wal.read_bytes() == b""


def test_log_reads_a_ledger_of_the_first_schema_without_upgrading_it(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path,
        isolated_environment: Path) -> None:
    import sqlite3

    config.save_profile(config_path, profile_for(smtp_server(), tls))
    ledger = isolated_environment / "state" / "xoromail" / "ledger.sqlite3"
    ledger.parent.mkdir(parents=True)
    with sqlite3.connect(ledger) as db:
        db.executescript("""
            CREATE TABLE messages (id INTEGER PRIMARY KEY, profile TEXT NOT NULL, event TEXT NOT NULL,
                idem_key TEXT NOT NULL, recipients TEXT NOT NULL, recipient_count INTEGER NOT NULL,
                message_id TEXT NOT NULL, status TEXT NOT NULL, reply TEXT, row INTEGER,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
            INSERT INTO messages VALUES (1, 'default', 'overdue-invoice', 'k', 'a@x.test', 1, '<1@x>', 'sent',
                '250 OK', 2, '2026-11-01T00:00:00+00:00', '2026-11-01T00:00:00+00:00');
            PRAGMA user_version = 1;
        """)
    result = runner.invoke(app, ["--config", str(config_path), "log", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pending"] == []


def test_log_at_80_columns_prints_one_block_per_message_with_whole_ids(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    import os

    server = smtp_server(handler=RefuseRecipient("c2@client.test"))
    config.save_profile(config_path, profile_for(server, tls))
    credentials.store_password("default", PASSWORD)
    base = ["--config", str(config_path)]
    CliRunner().invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch",
                             str(csv_batch(tmp_path / "r.csv", 2))])
    logged = CliRunner().invoke(app, [*base, "log", "--json"]).stdout.splitlines()
    ids = [json.loads(line)["message_id"] for line in logged]
    from tests.support.terminal import Terminal

    term = Terminal([*base, "log"], {**os.environ, "COLUMNS": "80", "NO_COLOR": "1"})  # a person's 80 columns
    assert term.wait() == 0, term.text
    lines = term.text.replace("\r\n", "\n").splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert not any(line.startswith(("┏", "│", "┃")) for line in lines), "no table at 80 columns"
    for message_id in ids:
        assert any(line.strip() == message_id for line in lines), f"{message_id} is not on a line of its own"
    assert "  to: c2@client.test" in lines and any("550 5.1.1" in line for line in lines)
