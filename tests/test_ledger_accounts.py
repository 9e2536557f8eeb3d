"""Ledger rows and the lock belong to the sending account, not to a profile's name or a settings file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, profile_for
from tests.support.samples import OVERDUE, smtp_profile
from xoromail_cli import config, credentials
from xoromail_cli import ledger as ledger_doors
from xoromail_cli.cli import app
from xoromail_cli.ledger.accounts import account_key
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.local.sink import SinkServer

SEND = ["send", "--event", "overdue-invoice", "--to", "ann@client.test", *OVERDUE]


def settings_file(path: Path, server: SinkServer, tls: TLSFiles, email: str, **overrides: object) -> list[str]:
    config.save_profile(path, profile_for(server, tls, email=email, username="billing@company.test", **overrides))
    credentials.store_password("default", PASSWORD)
    return ["--config", str(path)]


def test_the_account_key_is_the_mailbox_in_lower_case_whatever_service_carries_it() -> None:
    assert account_key(" Billing@Company.Test ") == "billing@company.test"


def test_two_companies_with_profile_default_on_one_machine_never_skip_each_other(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> None:
    server = smtp_server()
    company_a = settings_file(tmp_path / "a.toml", server, tls, "billing@company-a.test")
    company_b = settings_file(tmp_path / "b.toml", server, tls, "billing@company-b.test")
    first = runner.invoke(app, [*company_a, *SEND])
    second = runner.invoke(app, [*company_b, *SEND])
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert "already sent" not in second.output and "1 sent" in second.output
    assert [message.parsed()["From"].split("<")[-1].rstrip(">") for message in server.messages] == [
        "billing@company-a.test", "billing@company-b.test"]
    again = runner.invoke(app, [*company_b, *SEND])
    assert "already sent" in again.output and len(server.messages) == 2


def test_two_companies_take_different_locks_and_one_account_the_same(tmp_path: Path) -> None:
    a = smtp_profile(name="default", email="billing@company-a.test", host="h", port=25)
    b = smtp_profile(name="default", email="billing@company-b.test", host="h", port=25)
    a_elsewhere = smtp_profile(name="erp", email="Billing@Company-A.test", host="h2", port=587,
                                 ledger=str(tmp_path / "shared.sqlite3"))
    assert ledger_doors.lock_path(a) != ledger_doors.lock_path(b)
    assert ledger_doors.lock_path(a).name == ledger_doors.lock_path(a_elsewhere).name


def test_two_hosts_of_one_company_with_their_own_settings_files_share_one_ledger(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = smtp_server()
    shared = tmp_path / "nfs" / "ledger.sqlite3"
    host_one = settings_file(tmp_path / "host1.toml", server, tls, "billing@company.test", ledger=str(shared))
    assert runner.invoke(app, [*host_one, *SEND]).exit_code == 0
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "host2-state"))
    config.save_profile(tmp_path / "host2.toml", profile_for(server, tls, name="nightly", ledger=str(shared)))
    credentials.store_password("nightly", PASSWORD)
    second = runner.invoke(app, ["--config", str(tmp_path / "host2.toml"), "--profile", "nightly", *SEND])
    assert second.exit_code == 0 and "already sent" in second.output, second.output
    assert len(server.messages) == 1


def old_ledger(path: Path, message_domain: str) -> None:
    """A schema-2 ledger as the previous release wrote it: rows keyed by the profile's name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE messages (id INTEGER PRIMARY KEY, profile TEXT NOT NULL, event TEXT NOT NULL,
                idem_key TEXT NOT NULL, recipients TEXT NOT NULL, recipient_count INTEGER NOT NULL,
                message_id TEXT NOT NULL, status TEXT NOT NULL, reply TEXT, row INTEGER,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL, pending TEXT NOT NULL DEFAULT '',
                refused TEXT NOT NULL DEFAULT '');
            PRAGMA user_version = 2;""")
        db.execute("INSERT INTO messages (profile, event, idem_key, recipients, recipient_count, message_id, status, "
                   "reply, row, created_at, updated_at) VALUES ('default', 'overdue-invoice', ?, 'ann@client.test', "
                   "1, ?, 'sent', '250 OK', 0, '2026-11-01T08:00:00+00:00', '2026-11-01T08:00:00+00:00')",
                   ("overdue-invoice:INV-1:ann@client.test", f"<1.abc@{message_domain}>"))


def test_rows_of_an_older_ledger_still_count_for_the_account_of_their_profile(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path,
        isolated_environment: Path) -> None:
    server = smtp_server()
    ledger_file = isolated_environment / "state" / "xoromail" / "ledger.sqlite3"
    old_ledger(ledger_file, "company-a.test")
    company_a = settings_file(tmp_path / "a.toml", server, tls, "billing@company-a.test")
    result = runner.invoke(app, [*company_a, *SEND])
    assert result.exit_code == 0 and "already sent on 2026-11-01 08:00" in result.output, result.output
    assert server.messages == []
    with Ledger(ledger_file) as ledger:
        [row] = ledger.entries(account=account_key("billing@company-a.test"))
        assert row.profile == "default" and row.status == "sent"


def test_an_older_row_of_one_company_is_not_inherited_by_another_with_the_same_profile_name(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path,
        isolated_environment: Path) -> None:
    server = smtp_server()
    old_ledger(isolated_environment / "state" / "xoromail" / "ledger.sqlite3", "company-a.test")
    company_b = settings_file(tmp_path / "b.toml", server, tls, "billing@company-b.test")
    result = runner.invoke(app, [*company_b, *SEND])
    assert result.exit_code == 0 and "1 sent" in result.output, result.output
    assert len(server.messages) == 1
    log_a = runner.invoke(app, [*settings_file(tmp_path / "a.toml", server, tls, "billing@company-a.test"),
                                "log", "--json"])
    assert log_a.output.count('"message_id"') == 1 and "company-a.test" in log_a.output, log_a.output
