"""A Ctrl-C or SIGTERM that comes while a message's outcome is written to the ledger waits until the summary counts
it (interrupts.recording_outcome). That write can itself wait without end: a PostgreSQL ledger whose table another
session has locked (a DBA's open transaction, a migration). A second signal then stops the run at once, as a
second Ctrl-C does in most tools, instead of being held too (the run could only be killed)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psycopg

from tests.support.cli import pg_send_environment, send_command
from tests.support.common import ServerFactory, TLSFiles
from tests.support.samples import csv_batch
from tests.support.servers import HeldThirdReply

__all__: list[str] = []


def _waiting_on_a_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as watcher:
        row = watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'xoromail' "
                              "AND wait_event_type = 'Lock'").fetchone()
    return bool(row and row[0])


def _interrupt_until_it_ends(process: subprocess.Popen[str]) -> str:
    """Ctrl-C, then Ctrl-C again until the run ends (two signals that come before Python's handler runs are one):
    the first is held while the outcome is recorded, the next is not."""
    for _ in range(30):
        process.send_signal(signal.SIGINT)
        try:
            return process.communicate(timeout=1)[1]
        except subprocess.TimeoutExpired:
            continue
    raise AssertionError("the run did not stop after 30 Ctrl-C")


def test_a_second_signal_stops_a_run_whose_ledger_write_waits_on_a_lock(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path, pg_url: str) -> None:
    handler = HeldThirdReply()
    server = smtp_server(handler=handler)
    env = pg_send_environment(tmp_path, server, tls, pg_url, timeout=60.0)  # the ledger's own deadline: later
    process = subprocess.Popen(send_command(csv_batch(tmp_path / "rows.csv", 10)), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    locker = psycopg.connect(pg_url)
    try:
        assert handler.arrived.wait(30)
        locker.execute("LOCK TABLE xoromail_messages IN EXCLUSIVE MODE")  # reads go on; the row's update waits
        handler.go.set()
        deadline = time.monotonic() + 30
        while not _waiting_on_a_lock(pg_url):
            assert time.monotonic() < deadline, "the run never waited on the lock"
            time.sleep(0.05)
        stderr = _interrupt_until_it_ends(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        locker.rollback()
        locker.close()
    assert process.returncode == 130, stderr
    assert "interrupted (Ctrl-C)" in stderr and "Traceback" not in stderr
