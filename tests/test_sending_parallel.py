"""`send --connections N`: rows shared over N real connections, each row sent once, its ledger row right."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword
from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, configure
from tests.support.pipelined import Pipelining, Scripted
from tests.support.samples import csv_batch
from xoromail_cli.cli import app
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.local.sink import CaptureHandler
from xoromail_cli.pacing import RateLimiter


def send(runner: CliRunner, base: list[str], batch: Path, *extra: str) -> Any:
    """`--timeout 30`: a server that gathers its connections holds the first MAIL up to 10 s, until the others
    have signed in — on a loaded machine longer than the test profile's 5 s, which would cut and reopen one."""
    return runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(batch), "--json",
                               "--retry-delay", "0", "--timeout", "30", *extra])


def lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def once_each(handler: CaptureHandler, rows: int) -> bool:
    got = Counter(recipient for message in handler.messages for recipient in message.recipients)
    return got == Counter(f"c{number}@client.test" for number in range(1, rows + 1))


def ledger_rows(isolated_environment: Path) -> Counter[str]:
    path = isolated_environment / "state" / "xoromail" / "ledger.sqlite3"
    with Ledger(path) as ledger:
        return Counter(entry.status for entry in ledger.entries())


def test_three_connections_share_a_batch_and_send_each_row_once_in_row_order(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path) -> None:
    handler = Pipelining(gather=3)
    server = smtp_server(handler=handler)
    result = send(runner, configure(config_path, server, tls), csv_batch(tmp_path / "rows.csv", 30),
                  "--connections", "3")
    assert result.exit_code == 0, result.output
    assert len(handler.sessions) == 3 and len({m.peer for m in server.messages}) == 3
    assert once_each(handler, 30)
    rows = [line["row"] for line in lines(result.stdout)]
    assert rows == sorted(rows) and len(set(rows)) == 30
    assert ledger_rows(isolated_environment) == {"sent": 30}


def test_the_profile_sets_connections_and_the_option_overrides_it(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    handler = Pipelining(gather=2)
    server = smtp_server(handler=handler)
    base = configure(config_path, server, tls, connections=2)
    result = send(runner, base, csv_batch(tmp_path / "rows.csv", 12))
    assert result.exit_code == 0, result.output
    assert len({m.peer for m in server.messages}) == 2
    result = send(runner, base, csv_batch(tmp_path / "more.csv", 12), "--connections", "1", "--resend")
    assert result.exit_code == 0, result.output
    assert len({m.peer for m in server.messages}) == 3


def test_a_connection_killed_in_the_middle_sends_nothing_twice(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path) -> None:
    handler = Scripted(mail={8: "drop"}, gather=3)
    server = smtp_server(handler=handler)
    result = send(runner, configure(config_path, server, tls), csv_batch(tmp_path / "rows.csv", 30),
                  "--connections", "3")
    assert result.exit_code == 0, result.output
    assert once_each(handler, 30)
    assert len({m.peer for m in server.messages}) == 4  # the killed one came back once
    assert ledger_rows(isolated_environment) == {"sent": 30}


def two_logins_only() -> Any:
    """Gmail's answer to one sign-in too many: the first two connections get in, later ones never do."""
    allowed = [2]
    lock = threading.Lock()

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER
              and auth_data.password.decode() == PASSWORD)
        with lock:
            if ok and allowed[0]:
                allowed[0] -= 1
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False,
                          message="454 4.7.0 Too many login attempts, please try again later")

    return authenticate


def test_a_connection_that_cannot_sign_in_hands_its_rows_to_the_others(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path) -> None:
    handler = Pipelining(gather=3)
    server = smtp_server(handler=handler, authenticator=two_logins_only())
    result = send(runner, configure(config_path, server, tls), csv_batch(tmp_path / "rows.csv", 20),
                  "--connections", "3")
    assert result.exit_code == 0, result.output
    assert "one connection stopped" in result.stderr and "Too many login attempts" in result.stderr
    assert once_each(handler, 20)
    assert [line["status"] for line in lines(result.stdout)] == ["sent"] * 20
    assert ledger_rows(isolated_environment) == {"sent": 20}


def test_a_quota_reached_on_one_connection_stops_them_all(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path) -> None:
    handler = Scripted(data={6: "550 5.4.5 Daily user sending quota exceeded."}, gather=3)
    server = smtp_server(handler=handler)
    result = send(runner, configure(config_path, server, tls), csv_batch(tmp_path / "rows.csv", 40),
                  "--connections", "3")
    assert result.exit_code == 75, result.output
    assert "stopped the batch" in result.stderr
    *messages, stopped = lines(result.stdout)
    reported = Counter(line["status"] for line in messages)
    assert reported["temporary"] == 1 and reported["sent"] == len(server.messages) < 40
    assert stopped["ok"] is False and stopped["exit_code"] == 75  # what stopped the run, as JSON too
    assert ledger_rows(isolated_environment) == {"sent": len(server.messages), "temporary": 1}


def test_a_preset_caps_the_connections_and_says_so(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    server = smtp_server(handler=Pipelining())
    base = configure(config_path, server, tls, preset="office365")
    result = send(runner, base, csv_batch(tmp_path / "rows.csv", 6), "--connections", "8", "--rate", "1000/s")
    assert result.exit_code == 0, result.output
    assert "allows 3 connections at a time; sending over 3 instead of 8" in result.stderr
    assert len({m.peer for m in server.messages}) <= 3


def test_one_rate_limit_spaces_the_messages_of_every_connection() -> None:
    """Three threads share 10/s: the 30 messages get 30 distinct slots 0.1 s apart, not 10 each."""
    delays: list[float] = []
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            delays.append(round(seconds, 6))

    limiter = RateLimiter(per_second=10.0, clock=lambda: 0.0, sleep=sleep)
    threads = [threading.Thread(target=lambda: [limiter.wait() for _ in range(10)]) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(delays) == [round(n * 0.1, 6) for n in range(1, 30)]


def test_a_retry_after_holds_every_connection() -> None:
    clock = [100.0]
    limiter = RateLimiter(per_second=None, clock=lambda: clock[0], sleep=lambda seconds: None)
    limiter.hold(30.0)
    assert not limiter.try_take()
    assert limiter.wait() == 30.0
    clock[0] = 131.0
    assert limiter.try_take() and limiter.wait() == 0.0


def test_a_run_killed_with_kill_9_loses_nothing_and_doubts_at_most_one_message_per_connection(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path) -> None:
    handler = Scripted(delay=0.01, gather=3)
    server = smtp_server(handler=handler)
    base = configure(config_path, server, tls)
    batch = csv_batch(tmp_path / "rows.csv", 200)
    command = [sys.executable, "-m", "xoromail_cli", *base, "send", "--event", "overdue-invoice", "--batch",
               str(batch), "--connections", "3", "--quiet"]
    env = {**os.environ, "XOROMAIL_PASSWORD": PASSWORD}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(server.messages) < 30 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    path = isolated_environment / "state" / "xoromail" / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        in_flight = db.execute("SELECT count(*) FROM messages WHERE status = 'in_flight'").fetchone()[0]
    assert in_flight <= 3
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode in (0, 75), done.stderr
    got = Counter(recipient for message in server.messages for recipient in message.recipients)
    assert set(got) == {f"c{number}@client.test" for number in range(1, 201)}
    assert sum(got.values()) - 200 <= in_flight  # a duplicate only where a message was in doubt


def test_the_parallel_runner_loads_no_database_network_or_template_library_on_import() -> None:
    code = ("import sys, xoromail_cli.sending.parallel, xoromail_cli.sending.plan; "
            "print(','.join(m for m in ('sqlite3', 'smtplib', 'ssl', 'jinja2', 'aiosmtpd', 'exchangelib') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_a_refused_password_stops_a_parallel_run_after_one_sign_in(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    """Lockout counters and fail2ban count every failed login: the other connections never try."""
    attempts: list[str] = []

    def refuse(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        attempts.append(mechanism)
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted")

    server = smtp_server(handler=Pipelining(), authenticator=refuse)
    result = send(runner, configure(config_path, server, tls), csv_batch(tmp_path / "rows.csv", 10),
                  "--connections", "3")
    assert result.exit_code == 77, result.output
    assert len(attempts) == 1 and server.messages == []
