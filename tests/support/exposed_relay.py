"""The relay facing attackers, in this process: its server (no delivery) on 127.0.0.1 with its log, spool and a
stepped clock for the login throttle; the ERP connects from 127.0.0.1, the attacker from 127.0.0.2."""

from __future__ import annotations

import base64
import smtplib
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.common import USER
from tests.support.relay_helpers import RELAY_PASSWORD, RELAY_USER
from xoromail_cli.relay.auth_limits import AuthGuard, AuthPolicy
from xoromail_cli.relay.handler import RelayHandler
from xoromail_cli.relay.limits import SessionLimits
from xoromail_cli.relay.message import SenderPolicy
from xoromail_cli.relay.server import RelayCredential, RelayServer
from xoromail_cli.relay.spool import Spool

ERP, ATTACKER = "127.0.0.1", "127.0.0.2"
WRONG = base64.b64encode(f"\0{RELAY_USER}\0wrong-guess".encode()).decode()
RIGHT = base64.b64encode(f"\0{RELAY_USER}\0{RELAY_PASSWORD}".encode()).decode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Exposed:
    """A relay server (no delivery) with its log, spool and stepped clock."""

    def __init__(self, folder: Path, limits: SessionLimits, tls: ssl.SSLContext | None = None) -> None:
        self.lines: list[str] = []
        self.clock = Clock()
        self.spool = Spool(folder / "spool")
        handler = RelayHandler(self.spool, SenderPolicy(mailbox=USER), self.lines.append, lambda: None)
        self.server = RelayServer(handler, RelayCredential(RELAY_USER, RELAY_PASSWORD), "127.0.0.1", 0, tls=tls,
                                  limits=limits, guard=AuthGuard(self.lines.append, AuthPolicy(), self.clock)).start()
        self.port = self.server.port

    def logged(self, kind: str) -> list[str]:
        return [line for line in list(self.lines) if line.split(" ", 1)[0] == kind]

    def client(self, source: str = ERP) -> smtplib.SMTP:
        client = smtplib.SMTP("127.0.0.1", self.port, timeout=10, source_address=(source, 0))
        client.ehlo("client.test")
        return client


@pytest.fixture
def exposed(tmp_path: Path) -> Iterator[Callable[..., Exposed]]:
    started: list[Exposed] = []

    def start(tls: ssl.SSLContext | None = None, **limits: object) -> Exposed:
        instance = Exposed(tmp_path, SessionLimits(**limits), tls)  # type: ignore[arg-type]  # test keywords
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.server.stop()


def guess(client: smtplib.SMTP, token: str = WRONG) -> tuple[int, bytes]:
    return client.docmd("AUTH", f"PLAIN {token}")
