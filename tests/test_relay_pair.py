"""Two relay hosts, one PostgreSQL ledger: the ERP fails over between them, and a message it submitted to both
(it did not hear the first 250) is delivered once. Two real `xoromail relay` processes, each with its own home
(settings, spool, keyring), one real PostgreSQL server, one aiosmtpd upstream."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, accepting_authenticator, profile_for
from tests.support.relay_helpers import RELAY_PASSWORD, RELAY_USER, RelayProcess, erp_message, submit, wait_for
from xoromail_cli import config
from xoromail_cli.ledger.postgres import PostgresLedger
from xoromail_cli.local.sink import CaptureHandler, SinkServer, free_port


def host(home: Path, upstream: SinkServer, tls: TLSFiles, pg_url: str) -> RelayProcess:
    """One relay host: its own home (settings, state, keyring), the shared PostgreSQL ledger."""
    environment = dict(os.environ)
    for variable, folder in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                             ("XDG_DATA_HOME", "data"), ("HOME", "")):
        (home / folder).mkdir(parents=True, exist_ok=True)
        environment[variable] = str(home / folder)
    environment["XOROMAIL_PASSWORD"] = PASSWORD  # the mailbox's password, as a service's environment gives it
    settings = home / "config" / "xoromail" / "config.toml"
    config.save_profile(settings, profile_for(upstream, tls, ledger=pg_url))
    return RelayProcess(["--config", str(settings), "relay", "--listen", "127.0.0.1:0", "--user", RELAY_USER,
                         "--password-stdin", "--retry-delay", "0.2"], environment)


def test_a_message_submitted_to_both_relays_is_delivered_once(smtp_server: ServerFactory, tls: TLSFiles,
                                                              pg_url: str, tmp_path: Path) -> None:
    upstream = smtp_server()
    first = host(tmp_path / "host-a", upstream, tls, pg_url)
    second = host(tmp_path / "host-b", upstream, tls, pg_url)
    try:
        message = erp_message(1)
        submit(first.port, message, user=RELAY_USER, password=RELAY_PASSWORD)
        submit(second.port, message, user=RELAY_USER, password=RELAY_PASSWORD)  # the ERP's failover
        other = erp_message(2)
        submit(second.port, other)
        wait_for(lambda: bool(first.logged("delivered")) or bool(first.logged("already-delivered")), timeout=40,
                 what="the first host's verdict")
        wait_for(lambda: len(second.logged("delivered")) + len(second.logged("already-delivered")) == 2,
                 timeout=40, what="the second host's verdicts")
        time.sleep(0.5)  # time enough for a second copy, were one coming
        received = [str(m.parsed()["Message-ID"]) for m in upstream.messages]
        assert sorted(received) == sorted([message["Message-ID"], other["Message-ID"]])
        verdicts = [line.split(" ", 1)[0] for line in (*first.lines, *second.lines)
                    if message["Message-ID"] in line and line.split(" ", 1)[0] in ("delivered", "already-delivered")]
        assert sorted(verdicts) == ["already-delivered", "delivered"]
        assert first.terminate() == 0 and second.terminate() == 0
    finally:
        for process in (first, second):
            if process.process.poll() is None:
                process.kill()
    ledger = PostgresLedger(pg_url)
    try:
        rows = [row for row in ledger.entries(account=profile_for(upstream, tls).email)
                if row.message_id == message["Message-ID"]]
    finally:
        ledger.close()
    assert [row.status for row in rows] == ["sent"]


def test_both_relays_retrying_at_once_when_the_upstream_returns_deliver_the_message_once(
        tls: TLSFiles, pg_url: str, tmp_path: Path) -> None:
    """The upstream is down while the ERP submits the same message to both hosts; when it returns, both retry
    within moments of each other: the account's lock in PostgreSQL lets one deliver, the other finds it sent."""
    port = free_port()
    upstream = SinkServer(port=port, handler=CaptureHandler(), security="starttls", tls_context=tls.server_context,
                          authenticator=accepting_authenticator(), auth_required=True)
    first = host(tmp_path / "host-a", upstream, tls, pg_url)
    second = host(tmp_path / "host-b", upstream, tls, pg_url)
    try:
        messages = [erp_message(number) for number in range(1, 11)]
        for message in messages:
            submit(first.port, message)
            submit(second.port, message)
        wait_for(lambda: bool(first.logged("paused")) and bool(second.logged("paused")), what="both paused")
        upstream.start()
        wait_for(lambda: sum(len(p.logged("delivered")) + len(p.logged("already-delivered"))
                             for p in (first, second)) == 20, timeout=60, what="twenty verdicts")
        time.sleep(0.5)
        received = sorted(str(m.parsed()["Message-ID"]) for m in upstream.messages)
        assert received == sorted(message["Message-ID"] for message in messages)
        assert first.terminate() == 0 and second.terminate() == 0
    finally:
        upstream.stop()
        for process in (first, second):
            if process.process.poll() is None:
                process.kill()


def test_a_locked_ledger_table_pauses_the_relay_which_delivers_once_it_is_released(
        smtp_server: ServerFactory, tls: TLSFiles, pg_url: str, tmp_path: Path) -> None:
    """A session holding the ledger's table locked: the relay's burst ends at the ledger's deadline (the profile's
    timeout, at least 10 s) with a pause naming the lock, never waits forever; once it is released the message
    goes out, once."""
    upstream = smtp_server()
    PostgresLedger(pg_url).close()  # the table exists, so another session can lock it
    locker = psycopg.connect(pg_url)
    relay = host(tmp_path / "host-a", upstream, tls, pg_url)
    try:
        locker.execute("LOCK TABLE xoromail_messages IN ACCESS EXCLUSIVE MODE")  # kept: the transaction stays open
        message = erp_message(1)
        submit(relay.port, message, user=RELAY_USER, password=RELAY_PASSWORD)
        wait_for(lambda: bool(relay.logged("paused")), timeout=60, what="the relay's pause")
        assert "stayed locked by another database session" in relay.logged("paused")[0]
        assert upstream.messages == []
        locker.rollback()
        wait_for(lambda: bool(relay.logged("delivered")), timeout=60, what="the delivery")
        time.sleep(0.5)  # time enough for a second copy, were one coming
        assert [str(m.parsed()["Message-ID"]) for m in upstream.messages] == [message["Message-ID"]]
        assert relay.terminate() == 0
    finally:
        locker.close()
        if relay.process.poll() is None:
            relay.kill()
