"""A PostgreSQL ledger whose table another session holds locked: every ledger statement has a deadline, so `send`
stops with exit 75 naming the lock (and how to find its holder) instead of waiting forever with the account's lock
held; a message already handed to the server stays in flight; once the lock is gone a re-run sends what is left
once. Real PostgreSQL, real `xoromail send` processes, a real SMTP server."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from tests.support.cli import pg_send_environment, send_command
from tests.support.common import ServerFactory, TLSFiles
from tests.support.samples import csv_batch
from tests.support.servers import HeldThirdReply, delivered
from xoromail_cli.errors import TemporaryError
from xoromail_cli.ledger.pg_failures import FLOOR, statement_deadline
from xoromail_cli.ledger.postgres import PostgresLedger

ACCOUNT = "billing@company.test"
GENEROUS = 120
"""The test's own limit on a run: far beyond the ledger's deadline, only so a regression fails instead of hanging."""


def _statuses(url: str) -> Counter[tuple[str, str]]:
    """(recipient list, status) → how many ledger rows say so."""
    with psycopg.connect(url) as db:
        return Counter((row[0], row[1]) for row in db.execute("SELECT recipients, status FROM xoromail_messages"))


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=GENEROUS, check=False)


def test_the_deadline_follows_the_profiles_timeout_with_a_floor() -> None:
    assert statement_deadline(2.0) == FLOOR
    assert statement_deadline(45.0) == 45.0


def test_every_statement_of_the_session_has_a_deadline_and_the_urls_own_setting_wins(pg_url: str) -> None:
    with PostgresLedger(pg_url, deadline=12) as ledger:  # the session's own settings, read on its connection
        settings = dict(ledger._db.execute("SELECT name, setting FROM pg_settings "
                                           "WHERE name IN ('lock_timeout', 'statement_timeout')").fetchall())
    assert settings == {"lock_timeout": "12000", "statement_timeout": "24000"}
    with PostgresLedger(pg_url + "?options=-c%20lock_timeout%3D3s", deadline=12) as ledger:
        found = ledger._db.execute("SHOW lock_timeout").fetchone()
    assert found == ("3s",)


def test_a_write_behind_a_locked_table_ends_with_exit_75_and_a_way_to_find_the_holder(pg_url: str) -> None:
    with PostgresLedger(pg_url, deadline=1) as ledger, psycopg.connect(pg_url) as locker:
        locker.execute("LOCK TABLE xoromail_messages IN EXCLUSIVE MODE")
        with pytest.raises(TemporaryError) as caught:
            ledger.begin(ACCOUNT, "e", "k1", ("a@x.test",), "<1@x>", 1)
        locker.rollback()
        assert ledger.interrupted(ACCOUNT) == []  # the connection still works: the run stops cleanly
    assert caught.value.message.startswith("the ledger table xoromail_messages stayed locked by another database "
                                           "session for 1 s while recording a message")
    assert "\n" not in caught.value.message
    assert "pg_stat_activity" in (caught.value.hint or "") and "pg_locks" in (caught.value.hint or "")


def test_a_table_locked_before_the_run_stops_send_with_75_and_a_rerun_sends_each_once(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path, pg_url: str) -> None:
    server = smtp_server()
    env = pg_send_environment(tmp_path, server, tls, pg_url, timeout=2.0)
    command = send_command(csv_batch(tmp_path / "rows.csv", 3))
    PostgresLedger(pg_url).close()  # the table exists, so another session can lock it
    locker = psycopg.connect(pg_url)
    try:
        locker.execute("LOCK TABLE xoromail_messages IN ACCESS EXCLUSIVE MODE")  # kept: the transaction stays open
        stopped = _run(command, env)
    finally:
        locker.rollback()
        locker.close()
    assert stopped.returncode == 75, stopped.stderr
    assert f"stayed locked by another database session for {FLOOR:g} s" in stopped.stderr
    assert "pg_stat_activity" in stopped.stderr and "Traceback" not in stopped.stderr
    assert server.handler.messages == []  # nothing goes out before the ledger can record it
    rerun = _run(command, env)
    assert rerun.returncode == 0, rerun.stderr
    assert delivered(server.handler) == Counter({f"c{n}@client.test": 1 for n in (1, 2, 3)})
    assert _statuses(pg_url) == Counter({(f"c{n}@client.test", "sent"): 1 for n in (1, 2, 3)})


def test_a_table_locked_mid_batch_stops_send_with_75_leaving_the_delivered_message_in_flight(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path, pg_url: str) -> None:
    handler = HeldThirdReply()
    server = smtp_server(handler=handler)
    env = pg_send_environment(tmp_path, server, tls, pg_url, timeout=2.0)
    command = send_command(csv_batch(tmp_path / "rows.csv", 6))
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    locker = psycopg.connect(pg_url)
    try:
        assert handler.arrived.wait(GENEROUS)
        locker.execute("LOCK TABLE xoromail_messages IN EXCLUSIVE MODE")  # reads go on; the third's `sent` waits
        handler.go.set()
        _, stderr = process.communicate(timeout=GENEROUS)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        locker.rollback()
        locker.close()
    assert process.returncode == 75, stderr
    assert "stayed locked by another database session" in stderr and "while recording a delivery" in stderr
    assert "Traceback" not in stderr
    assert _statuses(pg_url) == Counter({("c1@client.test", "sent"): 1, ("c2@client.test", "sent"): 1,
                                         ("c3@client.test", "in_flight"): 1})  # accepted, not recorded: in doubt
    assert "handed to the server, but the ledger could not record it" in stderr  # reported in doubt, ...
    assert "2 sent, 0 failed, 1 temporary, 0 skipped, 3 not attempted" in stderr  # ... never as not attempted
    rerun = _run(command, env)
    assert "c3@client.test" in rerun.stdout + rerun.stderr  # the run left in doubt is reported
    got = delivered(handler)
    assert {address: got[address] for address in got if address != "c3@client.test"} == {
        f"c{n}@client.test": 1 for n in (1, 2, 4, 5, 6)}
    assert _statuses(pg_url)[("c3@client.test", "interrupted")] == 1
    assert all(_statuses(pg_url)[(f"c{n}@client.test", "sent")] == 1 for n in range(1, 7))
