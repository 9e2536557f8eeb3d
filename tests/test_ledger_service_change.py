"""The history follows the sending mailbox: a batch sent through Web Mail is not sent again once the same
profile (or another with the same From) sends through Exchange, on SQLite and on PostgreSQL; older ledgers
whose rows were keyed by `service:address` are adopted, and every row says which service carried it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, EwsFactory, ServerFactory, TLSFiles, configure
from tests.support.pg_server import PostgresServer
from tests.support.samples import csv_batch
from xoromail_cli.cli import app
from xoromail_cli.ledger.postgres import PostgresLedger
from xoromail_cli.ledger.sqlite import Ledger

BATCH = ["send", "--event", "overdue-invoice", "--json", "--batch"]


def setup_args(config_path: Path, url: str, tls: TLSFiles) -> list[str]:
    """The same profile moved to Exchange (the password comes on stdin)."""
    return ["--config", str(config_path), "setup", "--service", "ews", "--ews-url", url, "--domain", "company.test",
            "--username", "billing", "--auth", "basic", "--email", USER, "--display-name", "Company Billing",
            "--ca-file", str(tls.ca_file), "--password-stdin"]


def statuses(output: str) -> list[str]:
    return [json.loads(line)["status"] for line in output.splitlines() if line.startswith('{"')
            and '"status"' in line and '"event"' in line]


def move_and_resend(runner: CliRunner, smtp_server: ServerFactory, ews: EwsFactory, tls: TLSFiles,
                    config_path: Path, rows: Path) -> list[dict[str, object]]:
    """Batch via Web Mail, the profile moved to Exchange (validated by a test message), the batch again."""
    smtp = smtp_server()
    base = configure(config_path, smtp, tls)
    first = runner.invoke(app, [*base, *BATCH, str(rows)])
    assert first.exit_code == 0 and statuses(first.stdout) == ["sent"] * 3, first.output
    exchange = ews()
    moved = runner.invoke(app, setup_args(config_path, exchange.url, tls), input=PASSWORD + "\n")
    assert moved.exit_code == 0, moved.output
    validation_messages = len(exchange.received)
    again = runner.invoke(app, [*base, *BATCH, str(rows)])
    assert again.exit_code == 0, again.output
    assert statuses(again.stdout) == ["skipped"] * 3, again.output
    assert len(exchange.received) == validation_messages and len(smtp.messages) == 3
    log = runner.invoke(app, [*base, "log", "--json"])
    return [json.loads(line) for line in log.stdout.splitlines()]


def test_a_batch_sent_through_web_mail_is_not_sent_again_through_exchange(
        runner: CliRunner, smtp_server: ServerFactory, ews: EwsFactory, tls: TLSFiles, config_path: Path,
        tmp_path: Path) -> None:
    entries = move_and_resend(runner, smtp_server, ews, tls, config_path, csv_batch(tmp_path / "rows.csv", 3))
    assert [(e["account"], e["service"]) for e in entries] == [(USER, "smtp")] * 3


def test_on_a_postgresql_ledger_too(runner: CliRunner, smtp_server: ServerFactory, ews: EwsFactory, tls: TLSFiles,
                                    config_path: Path, tmp_path: Path, pg_url: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XOROMAIL_LEDGER", pg_url)
    entries = move_and_resend(runner, smtp_server, ews, tls, config_path, csv_batch(tmp_path / "rows.csv", 3))
    assert {e["service"] for e in entries} == {"smtp"} and len(entries) == 3


def schema_3_ledger(path: Path) -> None:
    """A ledger as the release before this one wrote it: rows keyed by `service:address`."""
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE messages (id INTEGER PRIMARY KEY, profile TEXT NOT NULL, account TEXT NOT NULL DEFAULT '',
                event TEXT NOT NULL, idem_key TEXT NOT NULL, recipients TEXT NOT NULL,
                recipient_count INTEGER NOT NULL, message_id TEXT NOT NULL, status TEXT NOT NULL, reply TEXT,
                row INTEGER, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, pending TEXT NOT NULL DEFAULT '',
                refused TEXT NOT NULL DEFAULT '');
            PRAGMA user_version = 3;""")
        db.execute("INSERT INTO messages (profile, account, event, idem_key, recipients, recipient_count, "
                   "message_id, status, reply, row, created_at, updated_at) VALUES ('default', ?, "
                   "'overdue-invoice', 'k1', 'ann@client.test', 1, '<1.a@company.test>', 'sent', '250 OK', 1, "
                   "'2026-11-01T08:00:00+00:00', '2026-11-01T08:00:00+00:00')", (f"smtp:{USER}",))


def test_a_schema_3_sqlite_ledger_is_read_as_the_mailbox_and_upgraded_on_the_next_send(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    schema_3_ledger(path)
    with Ledger(path, read_only=True) as reading:
        [entry] = reading.entries(account=USER)
        assert (entry.account, entry.service) == (USER, "smtp")
        assert reading.last_sent(USER, "k1") is not None
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3  # reading changed nothing
    with Ledger(path) as writing:
        found = writing.last_sent(USER, "k1")
        assert found is not None and (found.account, found.service) == (USER, "smtp")
        writing.begin(USER, "overdue-invoice", "k2", ("bob@client.test",), "<2.a@company.test>", 2,
                      service="exchange")
        assert [e.service for e in writing.entries(account=USER)] == ["smtp", "exchange"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4


def schema_1_database(postgres: PostgresServer, url: str) -> None:
    """A PostgreSQL ledger of the release before this one: rows keyed by `service:address`, schema 1."""
    import psycopg

    from tests.support.pg_server import APP_PASSWORD

    with psycopg.connect(url, password=APP_PASSWORD, autocommit=True) as db:
        db.execute("CREATE TABLE xoromail_schema (version INTEGER NOT NULL)")
        db.execute("INSERT INTO xoromail_schema VALUES (1)")
        db.execute("""CREATE TABLE xoromail_messages (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            account TEXT NOT NULL DEFAULT '', profile TEXT NOT NULL, event TEXT NOT NULL, idem_key TEXT NOT NULL,
            recipients TEXT NOT NULL, recipient_count INTEGER NOT NULL, message_id TEXT NOT NULL,
            status TEXT NOT NULL, reply TEXT, "row" INTEGER, created_at TIMESTAMPTZ NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL, pending TEXT NOT NULL DEFAULT '', refused TEXT NOT NULL DEFAULT '')""")
        db.execute("INSERT INTO xoromail_messages (account, profile, event, idem_key, recipients, recipient_count, "
                   "message_id, status, reply, \"row\", created_at, updated_at) VALUES (%s, 'default', "
                   "'overdue-invoice', 'k1', 'ann@client.test', 1, '<1.a@company.test>', 'sent', '250 OK', 1, "
                   "now(), now())", (f"smtp:{USER}",))


def test_a_schema_1_postgresql_ledger_is_read_as_the_mailbox_and_upgraded_on_the_next_send(
        postgres: PostgresServer, pg_url: str) -> None:
    schema_1_database(postgres, pg_url)
    with PostgresLedger(pg_url, read_only=True) as reading:
        [entry] = reading.entries(account=USER)
        assert (entry.account, entry.service) == (USER, "smtp")
    with PostgresLedger(pg_url) as writing:
        found = writing.last_sent(USER, "k1")
        assert found is not None and (found.account, found.service) == (USER, "smtp")
        writing.record(USER, "overdue-invoice", "k2", ("bob@client.test",), "<2.a@company.test>", 2, "failed",
                       "550 no", service="microsoft365")
        assert [e.service for e in writing.entries(account=USER)] == ["smtp", "microsoft365"]
    with PostgresLedger(pg_url) as again:  # the upgrade runs once
        assert [e.account for e in again.entries(account=USER)] == [USER, USER]


def test_two_runs_opening_a_schema_3_ledger_at_once_both_upgrade_it_safely(tmp_path: Path) -> None:
    import threading

    path = tmp_path / "ledger.sqlite3"
    schema_3_ledger(path)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Ledger(path).close()
        except BaseException as exc:  # noqa: BLE001  # reported below
            errors.append(exc)

    runs = [threading.Thread(target=open_it) for _ in range(4)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(30)
    assert errors == []
    with Ledger(path) as ledger:
        [entry] = ledger.entries(account=USER)
        assert (entry.account, entry.service) == (USER, "smtp")


def test_moving_to_microsoft_365_removes_the_web_mail_password_it_no_longer_uses(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    """The move README and cron.md recommend: the mailbox password stayed in the secret store, unused and unseen
    (`config show` of a Microsoft 365 profile does not list it); it is removed, and the saved line says so."""
    from tests.support.fakes.microsoft_server import CLIENT_ID, CLIENT_SECRET, TENANT, MicrosoftServer
    from xoromail_cli import credentials

    base = configure(config_path, smtp_server(), tls)
    with MicrosoftServer(tls.server_context) as server:
        moved = runner.invoke(app, [*base, "setup", "--service", "microsoft365", "--tenant", TENANT, "--client-id",
                                    CLIENT_ID, "--client-secret-stdin", "--authority-host", server.authority_host,
                                    "--graph-url", server.graph_url], input=CLIENT_SECRET + "\n")
    assert moved.exit_code == 0, moved.output
    assert credentials.read_secret("default", "password") is None
    assert credentials.read_secret("default", "client_secret") == CLIENT_SECRET
    assert "the password of its earlier service was removed" in " ".join(moved.output.split())
