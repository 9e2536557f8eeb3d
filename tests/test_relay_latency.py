"""The relay answers each command at once: its replies are not held back waiting for the client's ACK.

aiosmtpd writes a multi-line reply (EHLO's) one line at a time. Without TCP_NODELAY on the connection, the
kernel holds each line after the first until the client acknowledges the one before, and a client that is only
reading acknowledges late (delayed ACK, 40 ms on Linux): every ERP connection paid that per EHLO, and the relay
delivered 19 messages a second to an ERP that connects per message (benchmarks/relay_throughput.py).
"""

from __future__ import annotations

import smtplib
import socket

from tests.support.common import ServerFactory, TLSFiles, profile_for
from tests.support.relay_helpers import RELAY_PASSWORD, RELAY_USER, RelayFactory, relay, wait_for

__all__ = ["relay"]  # the fixture, imported for pytest


def test_every_connection_the_relay_accepts_sends_small_replies_without_delay(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    running = relay(profile_for(smtp_server(), tls))
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        client.ehlo()
        client.login(RELAY_USER, RELAY_PASSWORD)
        sessions = list(running.server._sessions)
        wait_for(lambda: all(session.transport is not None for session in sessions), what="the session")
        assert sessions
        for session in sessions:
            accepted = session.transport.get_extra_info("socket")
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
