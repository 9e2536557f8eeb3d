"""The relay facing attackers at the TLS handshake and over IPv6: stalled and failing handshakes are counted out
and logged once an interval, an IPv6 subscriber's /64 counts as one address, and `[::]` takes IPv4 clients too.
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.common import USER, TLSFiles
from tests.support.exposed_relay import ATTACKER, ERP, Clock, Exposed, exposed
from tests.support.relay_helpers import RELAY_PASSWORD, RELAY_USER, wait_for
from xoromail_cli.relay.auth_limits import AuthGuard, AuthPolicy
from xoromail_cli.relay.handler import RelayHandler
from xoromail_cli.relay.limits import SessionLimits, parse_networks
from xoromail_cli.relay.message import SenderPolicy
from xoromail_cli.relay.server import RelayCredential, RelayServer
from xoromail_cli.relay.spool import Spool

__all__ = ["exposed"]  # the fixture, imported for pytest


def test_connections_that_stall_in_the_tls_handshake_are_counted_out_when_their_login_time_is_up(
        exposed: Callable[..., Exposed], tls: TLSFiles) -> None:
    """STARTTLS, then no handshake: the login timeout ends the connection and frees its place; otherwise a
    scanner doing this max-connections times would lock the ERP out for good."""
    relay = exposed(tls=tls.server_context, login_within=0.5, max_connections=3)
    stall_in_the_handshake(relay, tls)


def test_a_login_time_longer_than_the_idle_time_still_ends_a_stalled_handshake(
        exposed: Callable[..., Exposed], tls: TLSFiles) -> None:
    relay = exposed(tls=tls.server_context, login_within=300.0, idle=0.5, max_connections=3)
    stall_in_the_handshake(relay, tls)


def stall_in_the_handshake(relay: Exposed, tls: TLSFiles) -> None:
    stalled = []
    for _ in range(3):
        raw = socket.create_connection(("127.0.0.1", relay.port), timeout=20, source_address=(ATTACKER, 0))
        reader = raw.makefile("rb")
        assert reader.readline().startswith(b"220")
        raw.sendall(b"EHLO attacker.test\r\nSTARTTLS\r\n")
        while not reader.readline().startswith(b"220"):
            pass
        stalled.append(raw)
    try:
        wait_for(lambda: relay.server.gate.total == 0, what="the stalled connections to be counted out")
        assert len(relay.logged("login-timeout")) == 1, "one line per address and interval"
        for raw in stalled:
            assert raw.recv(100) == b"", "the relay closed the connection"
    finally:
        for raw in stalled:
            raw.close()
    with relay.client(ERP) as erp:
        context = tls.client_context()
        erp.starttls(context=context)
        erp.login(RELAY_USER, RELAY_PASSWORD)


def test_failed_handshakes_in_a_loop_write_one_line_per_address_and_reason_an_interval(
        exposed: Callable[..., Exposed], tls: TLSFiles) -> None:
    relay = exposed(tls=tls.server_context)
    for source in (ATTACKER,) * 20 + ("127.0.0.3",):
        with socket.create_connection(("127.0.0.1", relay.port), timeout=20, source_address=(source, 0)) as raw:
            reader = raw.makefile("rb")
            assert reader.readline().startswith(b"220")
            raw.sendall(b"STARTTLS\r\n")
            assert reader.readline().startswith(b"220")
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert raw.recv(100) == b""
    wait_for(lambda: relay.server.gate.total == 0, what="the connections to be counted out")
    lines = relay.logged("tls-failed")
    assert [line.split()[1] for line in lines] == ["ip=127.0.0.2", "ip=127.0.0.3"], lines
    assert "HTTP" in lines[0]


def test_ipv6_guesses_and_connections_count_per_64_so_a_subscribers_many_addresses_are_one() -> None:
    """An IPv6 subscriber has a /64 (2^64 addresses): counted apart, each would get its own five guesses."""
    from xoromail_cli.relay.limits import ConnectionGate

    lines: list[str] = []
    clock = Clock()
    guard = AuthGuard(lines.append, AuthPolicy(), clock)
    replies = [guard.failed(f"2001:db8:1:2::{n:x}", "?", "PLAIN") for n in range(1, 7)]
    assert replies[:5] == [None] * 5 and replies[5] is not None and replies[5].startswith("454 4.7.0")
    assert guard.throttled("2001:db8:1:2:ffff::1") is not None and guard.throttled("2001:db8:1:3::1") is None
    assert "ip=2001:db8:1:2::6 " in lines[-1], "the log names the address itself (fail2ban bans what it reads)"
    gate = ConnectionGate(limits=SessionLimits(per_address=2), log=lines.append)
    assert [gate.admit(f"2001:db8:1:2::{n}") for n in (1, 2)] == [None, None]
    assert gate.admit("2001:db8:1:2::3") is not None and gate.admit("2001:db8:1:3::1") is None
    gate.release("2001:db8:1:2::1")
    assert gate.admit("2001:db8:1:2::9") is None
    assert [gate.admit(ip) for ip in ("192.0.2.1", "192.0.2.2")] == [None, None], "IPv4: each address apart"


def test_listening_on_every_ipv6_address_takes_ipv4_clients_too_and_counts_them_by_their_ipv4_address(
        tmp_path: Path) -> None:
    """`--listen [::]:587` for a name with A and AAAA records: both kinds of client get in, and --allow-ip with
    an IPv4 block matches an IPv4 client (not its ::ffff: form)."""
    lines: list[str] = []
    handler = RelayHandler(Spool(tmp_path / "spool"), SenderPolicy(mailbox=USER), lines.append, lambda: None)
    limits = SessionLimits(allow=parse_networks(["127.0.0.1/32", "::1"]))
    server = RelayServer(handler, RelayCredential(RELAY_USER, RELAY_PASSWORD), "::", 0, tls=None,
                         limits=limits).start()
    try:
        for host in ("127.0.0.1", "::1"):
            with smtplib.SMTP(host, server.port, timeout=10) as client:
                assert client.noop()[0] == 250
        with pytest.raises(smtplib.SMTPConnectError):
            smtplib.SMTP("127.0.0.1", server.port, timeout=10, source_address=(ATTACKER, 0))
    finally:
        server.stop()
    assert [line.split()[1] for line in lines if line.startswith("refused-ip")] == ["ip=127.0.0.2"]
