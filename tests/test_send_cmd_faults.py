"""Cron-grade guarantees, proven with real processes: SIGKILL mid-batch, overlapping runs, bad ledgers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.cli import send_command
from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, profile_for
from tests.support.samples import csv_batch
from tests.support.servers import SlowHandler, delivered
from xoromail_cli import config
from xoromail_cli import ledger as ledger_doors
from xoromail_cli.ledger.accounts import account_key
from xoromail_cli.ledger.locking import ProfileLock
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.local.sink import CaptureHandler


def environment(config_path: Path) -> dict[str, str]:
    env = os.environ.copy()
    env.update(XOROMAIL_CONFIG=str(config_path), XOROMAIL_PASSWORD=PASSWORD)
    return env


def test_sigkill_mid_batch_then_rerun_delivers_every_row_with_at_most_one_reported_duplicate(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path) -> None:
    server = smtp_server(handler=SlowHandler())
    config.save_profile(config_path, profile_for(server, tls))
    rows = 150
    batch = csv_batch(tmp_path / "rows.csv", rows)
    env = environment(config_path)
    first = subprocess.Popen(send_command(batch), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while len(server.messages) < 40 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert 0 < len(server.messages) < rows, "the kill must land mid-batch"
    with Ledger(isolated_environment / "state" / "xoromail" / "ledger.sqlite3") as ledger:
        left_in_flight = [entry.recipients[0] for entry in ledger.interrupted(account_key(USER))]
    assert len(left_in_flight) <= 1
    second = subprocess.run(send_command(batch), env=env, capture_output=True, text=True, timeout=120, check=False)
    assert second.returncode == 0, second.stdout + second.stderr
    counts = delivered(server.handler)
    assert set(counts) == {f"c{n}@client.test" for n in range(1, rows + 1)}
    duplicates = [address for address, seen in counts.items() if seen > 1]
    assert len(duplicates) <= 1
    assert set(duplicates) <= set(left_in_flight)
    for address in left_in_flight:
        assert "interrupted" in second.stderr and address in second.stderr


def test_two_overlapping_runs_never_send_the_same_row_twice(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    server = smtp_server(handler=SlowHandler())
    config.save_profile(config_path, profile_for(server, tls))
    batch = csv_batch(tmp_path / "rows.csv", 60)
    env = environment(config_path)
    runs = [subprocess.Popen(send_command(batch, "--wait", "60"), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    counts = delivered(server.handler)
    assert len(counts) == 60 and set(counts.values()) == {1}
    assert any("60 skipped" in out for out, _ in outputs)


def test_a_held_lock_without_wait_exits_75_naming_the_holder(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path) -> None:
    server = smtp_server()
    profile = profile_for(server, tls)
    config.save_profile(config_path, profile)
    with ProfileLock(ledger_doors.lock_path(profile)):
        result = subprocess.run(send_command(csv_batch(tmp_path / "rows.csv", 3)), env=environment(config_path),
                                capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 75
    assert f"process {os.getpid()}" in result.stderr
    assert server.messages == []


def test_a_damaged_ledger_stops_sending_with_exit_78(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path) -> None:
    server = smtp_server()
    config.save_profile(config_path, profile_for(server, tls))
    ledger = isolated_environment / "state" / "xoromail" / "ledger.sqlite3"
    ledger.parent.mkdir(parents=True)
    ledger.write_bytes(b"garbage" * 1000)
    result = subprocess.run(send_command(csv_batch(tmp_path / "rows.csv", 3)), env=environment(config_path),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 78, result.stderr
    assert "ledger" in result.stderr and "Traceback" not in result.stderr
    assert server.messages == []


def test_a_run_stopped_by_a_setting_says_to_fix_it_before_re_running(
        tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    """A Google profile that is not signed in (disconnected): nothing was attempted, and 're-run to finish'
    alone promised that running the job again would finish it."""
    from typer.testing import CliRunner

    from tests.support.fakes.google_server import GoogleServer
    from tests.support.google_helpers import settings_for
    from xoromail_cli.cli import app
    from xoromail_cli.profile import Profile

    server = GoogleServer(tls.server_context).start()
    try:
        settings, _ = settings_for(server, tmp_path, account=USER)
        config.save_profile(config_path, Profile(name="default", email=USER, service="google", display_name="B",
                                                 settings=settings, ca_file=str(tls.ca_file), timeout=5.0))
        result = CliRunner().invoke(app, ["--config", str(config_path), "send", "--event", "overdue-invoice",
                                          "--batch", str(csv_batch(tmp_path / "rows.csv", 2))])
    finally:
        server.stop()
    said = " ".join(result.output.split())
    assert result.exit_code == 78, result.output
    assert "2 not attempted; fix the error above, then re-run to finish" in said


class NoDataReply(CaptureHandler):
    """Keeps each message and never answers its DATA in time: the client's deadline ends the wait."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await CaptureHandler.handle_DATA(self, server, session, envelope)
        await asyncio.sleep(30)
        return reply


def test_rows_an_earlier_run_left_in_doubt_are_not_counted_as_this_runs_and_the_words_fit_a_timeout(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    """Was: '0 sent, 0 failed, 0 skipped, 2 interrupted, 2 not attempted' for a 2-row batch, and each row 'was in
    flight when an earlier run stopped' though that run ended normally after its DATA replies timed out."""
    server = smtp_server(handler=NoDataReply())
    config.save_profile(config_path, profile_for(server, tls, timeout=1.0))
    batch = csv_batch(tmp_path / "rows.csv", 2)
    env = environment(config_path)
    first = subprocess.run(send_command(batch, "--no-retry-in-doubt", "--retries", "0"), env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 75, first.stdout + first.stderr
    server.stop()  # the next run finds no server: it reaches no row of its own
    second = subprocess.run(send_command(batch, "--retries", "0"), env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    said = " ".join(second.stderr.split())
    assert "2 not attempted, 2 left in doubt by an earlier run" in said, said
    assert "interrupted," not in said and "an earlier run stopped" not in said
    assert said.count("its answer never came: that run was stopped, or the server did not answer the data") == 2
