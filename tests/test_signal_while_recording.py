"""A Ctrl-C or SIGTERM that comes while a message's outcome is written to the ledger waits until the summary counts
it (interrupts.recording_outcome). That write can itself wait without end: a PostgreSQL ledger whose table another
session has locked (a DBA's open transaction, a migration). A second signal then stops the run at once, as a
second Ctrl-C does in most tools, instead of being held too (the run could only be killed)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.support.cli import send_command
from tests.support.common import PASSWORD, ServerFactory, TLSFiles, profile_for
from tests.support.pg_server import APP_PASSWORD
from tests.support.samples import csv_batch
from xoromail_cli import config
from xoromail_cli.local.sink import CaptureHandler, SinkServer

__all__: list[str] = []


class HeldThirdReply(CaptureHandler):
    """Holds the third message's reply until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived, self.go = threading.Event(), threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if len(self.messages) == 2:
            self.arrived.set()
            while not self.go.is_set():
                await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


def _environment(tmp_path: Path, server: SinkServer, tls: TLSFiles, url: str) -> dict[str, str]:
    """A home of its own whose settings file names the PostgreSQL ledger."""
    env = os.environ.copy()
    for variable, folder in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                             ("XDG_DATA_HOME", "data"), ("HOME", "")):
        (tmp_path / "home" / folder).mkdir(parents=True, exist_ok=True)
        env[variable] = str(tmp_path / "home" / folder)
    settings = tmp_path / "home" / "config" / "xoromail.toml"
    config.save_profile(settings, profile_for(server, tls, ledger=url))
    env.update(XOROMAIL_CONFIG=str(settings), XOROMAIL_PASSWORD=PASSWORD, PGPASSWORD=APP_PASSWORD)
    return env


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
    env = _environment(tmp_path, server, tls, pg_url)
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
