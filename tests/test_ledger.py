from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from xoromail_cli.errors import ConfigError, ExitCode, TemporaryError
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.pacing import now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.sqlite3"


def test_a_sent_message_is_found_by_its_key(path: Path) -> None:
    with Ledger(path) as ledger:
        entry = ledger.begin("default", "overdue-invoice", "k1", ("a@x.test",), "<m1@x>", 2)
        assert ledger.last_sent("default", "k1") is None
        ledger.finish(entry, "sent", "250 OK")
        found = ledger.last_sent("default", "k1")
        assert found is not None and found.message_id == "<m1@x>" and found.row == 2
        assert ledger.last_sent("other-profile", "k1") is None


def test_in_flight_entries_survive_and_are_reported_once(path: Path) -> None:
    with Ledger(path) as ledger:
        ledger.begin("default", "e", "k", ("a@x.test",), "<m@x>", None)
    with Ledger(path) as reopened:
        [entry] = reopened.interrupted("default")
        reopened.settle_interrupted(entry.id)
        assert reopened.interrupted("default") == []
        assert next(reopened.entries(failed=True)).status == "interrupted"


def test_failed_view_hides_what_a_later_run_sent(path: Path) -> None:
    with Ledger(path) as ledger:
        ledger.record("default", "e", "k", ("a@x.test",), "<1@x>", 1, "temporary", "451 busy")
        assert [e.status for e in ledger.entries(failed=True)] == ["temporary"]
        ledger.finish(ledger.begin("default", "e", "k", ("a@x.test",), "<2@x>", 1), "sent", "250 OK")
        assert list(ledger.entries(failed=True)) == []


def test_filters_by_time_event_and_recipient(path: Path) -> None:
    with Ledger(path) as ledger:
        ledger.record("default", "a", "k1", ("Ann@X.test",), "<1@x>", 1, "sent", "250")
        ledger.record("default", "b", "k2", ("bob@x.test", "cc@x.test"), "<2@x>", 2, "sent", "250")
        assert [e.event for e in ledger.entries(to="ann@x.test")] == ["a"]
        assert [e.event for e in ledger.entries(to="cc@x.test")] == ["b"]
        assert [e.event for e in ledger.entries(event="b")] == ["b"]
        assert list(ledger.entries(since=now() + timedelta(minutes=1))) == []
        assert ledger.count_since("default", now() - timedelta(days=1)) == (2, 3)


def test_ledger_is_a_plain_sqlite_file_in_wal_mode(path: Path) -> None:
    with Ledger(path) as ledger:
        ledger.record("default", "e", "k", ("a@x.test",), "<1@x>", 1, "sent", "250 OK")
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("SELECT status FROM messages").fetchall() == [("sent",)]
    connection.close()
    # As an operator reads it without any sqlite3 command installed: Python's own sqlite3, another process.
    reader = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall())"
    shown = subprocess.run([sys.executable, "-c", reader, str(path), "SELECT message_id, status FROM messages"],
                           capture_output=True, text=True, check=True, timeout=60)
    assert shown.stdout.strip() == "[('<1@x>', 'sent')]"


def test_a_damaged_ledger_is_a_config_error_not_a_silent_reset(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ConfigError, match=r"damaged|cannot be used") as caught:
        Ledger(path)
    assert caught.value.exit_code == ExitCode.CONFIG
    assert path.read_bytes().startswith(b"this is not a database")


def test_a_locked_ledger_is_a_temporary_error(path: Path) -> None:
    Ledger(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("CREATE TABLE IF NOT EXISTS hold (x)")
    try:
        with pytest.raises(TemporaryError, match="locked"):
            Ledger(path, busy_timeout=0.1)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_the_ledger_and_its_folder_are_private(tmp_path: Path) -> None:
    import stat

    path = tmp_path / "new" / "state" / "ledger.sqlite3"
    Ledger(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


def test_a_ledger_of_the_first_schema_is_upgraded_in_place(path: Path) -> None:
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE messages (id INTEGER PRIMARY KEY, profile TEXT NOT NULL, event TEXT NOT NULL,
            idem_key TEXT NOT NULL, recipients TEXT NOT NULL, recipient_count INTEGER NOT NULL,
            message_id TEXT NOT NULL, status TEXT NOT NULL, reply TEXT, row INTEGER,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
        INSERT INTO messages VALUES (1, 'default', 'e', 'k', 'a@x.test', 1, '<1@x>', 'sent', '250', 1,
            '2026-11-01T00:00:00+00:00', '2026-11-01T00:00:00+00:00');
        PRAGMA user_version = 1;
    """)
    old.close()
    with Ledger(path) as ledger:
        assert ledger.adopt("smtp:billing@x", "default", "x") == 1
        found = ledger.last_sent("smtp:billing@x", "k")
        assert found is not None and found.pending == () and found.account == "smtp:billing@x"


def test_a_newer_ledger_is_refused_rather_than_misread(path: Path) -> None:
    Ledger(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(ConfigError, match="newer xoromail"):
        Ledger(path)
