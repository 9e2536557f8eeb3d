"""Two hosts (two homes: settings, keyring, state) share one PostgreSQL ledger and one mail server."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import SCRIPT, send_command
from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, profile_for
from tests.support.pg_server import APP_PASSWORD, PostgresServer
from tests.support.samples import csv_batch
from tests.support.servers import SlowHandler, delivered
from xoromail_cli import config
from xoromail_cli.ledger.accounts import account_key
from xoromail_cli.ledger.postgres import PostgresLedger
from xoromail_cli.local.sink import SinkServer

ACCOUNT = account_key(USER)


def host(tmp_path: Path, name: str, server: SinkServer, tls: TLSFiles, url: str, *,
         by_environment: bool = False) -> dict[str, str]:
    """A host of its own: its settings file (the URL in it, or in $XOROMAIL_LEDGER as a container has it)."""
    home = tmp_path / name
    env = os.environ.copy()
    for variable, folder in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                             ("XDG_DATA_HOME", "data"), ("HOME", "")):
        (home / folder).mkdir(parents=True, exist_ok=True)
        env[variable] = str(home / folder)
    settings = home / "config" / "xoromail.toml"
    config.save_profile(settings, profile_for(server, tls, ledger=None if by_environment else url))
    env.update(XOROMAIL_CONFIG=str(settings), XOROMAIL_PASSWORD=PASSWORD, PGPASSWORD=APP_PASSWORD, COLUMNS="400")
    if by_environment:
        env["XOROMAIL_LEDGER"] = url
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_overlapping_runs_of_one_batch_on_two_hosts_send_every_row_exactly_once(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path, pg_url: str) -> None:
    server = smtp_server(handler=SlowHandler())
    batch = csv_batch(tmp_path / "rows.csv", 60)
    hosts = [host(tmp_path, "app1", server, tls, pg_url), host(tmp_path, "app2", server, tls, pg_url,
                                                              by_environment=True)]
    runs = [subprocess.Popen(send_command(batch, "--wait", "60"), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for env in hosts]
    outputs = [process.communicate(timeout=120) for process in runs]
    assert [process.returncode for process in runs] == [0, 0], outputs
    counts = delivered(server.handler)
    assert len(counts) == 60 and set(counts.values()) == {1}
    assert any("60 skipped" in out for out, _ in outputs)
    log = run(hosts[1], "log", "--json")
    assert log.stdout.count('"status": "sent"') == 60


def test_a_host_killed_mid_batch_leaves_at_most_one_in_doubt_which_the_other_host_reports(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path, pg_url: str) -> None:
    server = smtp_server(handler=SlowHandler())
    rows = 120
    batch = csv_batch(tmp_path / "rows.csv", rows)
    first = subprocess.Popen(send_command(batch), env=host(tmp_path, "app1", server, tls, pg_url),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while len(server.messages) < 30 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert 0 < len(server.messages) < rows, "the kill must land mid-batch"
    with PostgresLedger(pg_url) as ledger:
        in_doubt = [entry.recipients[0] for entry in ledger.interrupted(ACCOUNT)]
    assert len(in_doubt) <= 1
    other = host(tmp_path, "app2", server, tls, pg_url)
    failed = run(other, "log", "--failed", "--json")
    assert [address in failed.stdout for address in in_doubt] == [True] * len(in_doubt), failed.stdout
    second = run(other, *send_command(batch)[1:])
    assert second.returncode == 0, second.stdout + second.stderr
    counts = delivered(server.handler)
    assert set(counts) == {f"c{n}@client.test" for n in range(1, rows + 1)}
    duplicates = [address for address, seen in counts.items() if seen > 1]
    assert len(duplicates) <= 1 and set(duplicates) <= set(in_doubt)
    for address in in_doubt:
        assert "interrupted" in second.stderr and address in second.stderr


def test_a_database_that_is_down_stops_the_run_before_the_first_message(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path, pg_url: str, postgres: PostgresServer) -> None:
    server = smtp_server()
    env = host(tmp_path, "app1", server, tls, pg_url)
    postgres.stop()
    try:
        result = run(env, *send_command(csv_batch(tmp_path / "rows.csv", 3))[1:])
    finally:
        postgres.start()
    assert result.returncode == 75, result.stdout + result.stderr
    assert "cannot reach the ledger database postgresql://xoromail_app@127.0.0.1" in result.stderr
    assert "Connection refused" in result.stderr and "nothing was sent" in result.stderr
    assert server.messages == []


def test_a_database_stopped_mid_batch_stops_it_at_once_and_a_rerun_completes_it(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path, pg_url: str, postgres: PostgresServer) -> None:
    server = smtp_server(handler=SlowHandler())
    rows = 120
    batch = csv_batch(tmp_path / "rows.csv", rows)
    env = host(tmp_path, "app1", server, tls, pg_url)
    process = subprocess.Popen(send_command(batch), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 30
        while len(server.messages) < 20 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.005)
        postgres.stop()
        at_stop = len(server.messages)
        _, stderr = process.communicate(timeout=60)
    finally:
        if not postgres.running():
            postgres.start()
    assert process.returncode == 75, stderr
    assert "lost the ledger database" in stderr and "batch stopped" in stderr
    assert len(server.messages) <= at_stop + 1 < rows
    rerun = run(env, *send_command(batch)[1:])
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    counts = delivered(server.handler)
    assert set(counts) == {f"c{n}@client.test" for n in range(1, rows + 1)}
    assert len([address for address, seen in counts.items() if seen > 1]) <= 1


def test_a_wrong_database_password_stops_before_sending_and_is_never_shown(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path, pg_url: str) -> None:
    server = smtp_server()
    env = host(tmp_path, "app1", server, tls, pg_url)
    env["PGPASSWORD"] = "not-the-password-42"  # a deliberately wrong test password
    result = run(env, *send_command(csv_batch(tmp_path / "rows.csv", 2))[1:])
    assert result.returncode == 75
    assert 'password authentication failed for user "xoromail_app"' in result.stderr
    assert "not-the-password-42" not in result.stdout + result.stderr and server.messages == []


def test_a_ledger_from_a_newer_release_is_refused_and_nothing_is_sent(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path, pg_url: str) -> None:
    import psycopg

    PostgresLedger(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("UPDATE xoromail_schema SET version = 7")
    server = smtp_server()
    result = run(host(tmp_path, "app1", server, tls, pg_url), *send_command(csv_batch(tmp_path / "r.csv", 2))[1:])
    assert result.returncode == 78 and "newer xoromail (schema 7" in result.stderr
    assert server.messages == []


@pytest.mark.parametrize("given_from", [False, True])
def test_a_sqlite_ledger_copied_to_postgresql_keeps_every_row_and_a_second_copy_adds_nothing(
        given_from: bool, smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path, pg_url: str) -> None:
    server = smtp_server()
    batch = csv_batch(tmp_path / "rows.csv", 5)
    local = tmp_path / "local.sqlite3"
    env = host(tmp_path, "app1", server, tls, str(local))
    assert run(env, *send_command(batch)[1:]).returncode == 0
    source = ["--from", f"sqlite://{local}"] if given_from else []
    first = run(env, "ledger", "copy", *source, "--to", pg_url)
    again = run(env, "ledger", "copy", *source, "--to", pg_url)
    assert first.returncode == 0 and "Copied 5 row(s)" in first.stdout, first.stdout + first.stderr
    assert "Copied 0 row(s)" in again.stdout and "5 already there" in again.stdout
    with PostgresLedger(pg_url) as ledger:
        rows = list(ledger.entries())
    assert len(rows) == 5 and {row.status for row in rows} == {"sent"} and {row.account for row in rows} == {ACCOUNT}
    moved = host(tmp_path, "app2", server, tls, pg_url)
    rerun = run(moved, *send_command(batch)[1:])
    assert rerun.returncode == 0 and "5 skipped" in rerun.stderr + rerun.stdout
    assert len(server.messages) == 5
