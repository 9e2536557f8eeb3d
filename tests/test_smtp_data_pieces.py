"""The message's data goes to an SMTP server in dot-stuffed pieces, never as whole copies (the relay delivers
messages of up to the service's maximum; smtplib's data() held three copies of each besides the original)."""

from __future__ import annotations

import random
import re
import socket
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.samples import smtp_profile
from xoromail_cli import credentials, services
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.services.smtp.pipelining import message_data, message_pieces


def smtplib_quoting(data: bytes) -> bytes:
    """What smtplib.SMTP.data() sends after 354 (its own code, restated)."""
    quoted = re.sub(rb"(?m)^\.", b"..", data)
    if quoted[-2:] != b"\r\n":
        quoted += b"\r\n"
    return quoted + b".\r\n"


def test_the_pieces_are_smtplibs_dot_stuffing_wherever_they_are_cut() -> None:
    generator = random.Random(20)
    alphabet = [b".", b"\r\n", b"\n", b"x", b"\r"]
    for _ in range(3000):
        data = b"".join(generator.choice(alphabet) for _ in range(generator.randint(0, 40)))
        size = generator.randint(1, 12)
        assert b"".join(message_pieces(data, size)) == smtplib_quoting(data), (data, size)
        assert message_data(data) == smtplib_quoting(data)


class DiscardServer:
    """An SMTP server on loopback that reads the message's data and keeps only its length and last bytes."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = 0
        self.tail = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as reader:
            conn.sendall(b"220 discard\r\n")
            while line := reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-discard\r\n250 8BITMIME\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go on\r\n")
                    while (chunk := reader.readline()) and chunk != b".\r\n":
                        self.received += len(chunk)
                        self.tail = (self.tail + chunk)[-200:]
                    conn.sendall(b"250 2.0.0 discarded\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")


@pytest.fixture
def discard() -> Iterator[DiscardServer]:
    server = DiscardServer()
    yield server
    server.listener.close()


def test_a_large_message_is_sent_without_a_copy_of_it(discard: DiscardServer) -> None:
    profile = smtp_profile(name="default", email="billing@company.test", host="127.0.0.1", port=discard.port,
                           security="none", timeout=20.0)
    line = b"." + bytes(range(65, 91)) * 3 + b"\r\n"  # every line dot-stuffed on the way
    data = b"Subject: large\r\n\r\n" + line * (24_000_000 // len(line))
    envelope = Envelope(sender="billing@company.test", to=("customer@client.test",), data=data,
                        message_id="<large@company.test>")
    transport = services.open_transport(profile, credentials.Secrets(profile), timeout=20.0)
    transport.open()
    tracemalloc.start()
    try:
        delivery = transport.send(envelope)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        transport.close()
    assert delivery.status == "sent"
    assert discard.received == len(data) + data.count(b"\r\n.") and discard.tail.endswith(b"." + line)
    assert peak < len(data) // 4, f"{peak:,} bytes allocated while sending {len(data):,}"


def test_a_spooled_message_is_read_back_into_one_buffer(tmp_path: Path) -> None:
    from xoromail_cli.relay.spool import Spool

    spool = Spool(tmp_path / "spool")
    data = b"Subject: large\r\n\r\n" + b"x" * 76 * 250_000 + b"\r\n"
    spool_id = spool.put(Envelope(sender="billing@company.test", to=("customer@client.test",), data=data,
                                  message_id="<large@company.test>"))
    tracemalloc.start()
    try:
        loaded = spool.load(spool_id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert loaded.envelope.data == data and loaded.envelope.message_id == "<large@company.test>"
    assert peak < len(data) * 1.25, f"{peak:,} bytes allocated to read {len(data):,}"
