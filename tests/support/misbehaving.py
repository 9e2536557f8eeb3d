"""Misbehaving SMTP servers on 127.0.0.1, scripted at the socket level (aiosmtpd is too well-behaved for these).

Each connection runs a script in its own thread; the server stops every script when the test leaves it. The
scripts answer like a real server until the point where they misbehave: endless multi-line replies, replies
dripped a byte at a time, a 421 to EHLO, data slipped in behind a reply.
"""

from __future__ import annotations

import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

DRIP_PAUSE = 0.05
"""Seconds between two dripped bytes: far under any test's timeout, so only a deadline on the whole reply ends it."""


class Peer:
    """One client connection as a script sees it."""

    def __init__(self, conn: socket.socket, stop: threading.Event) -> None:
        self.conn = conn
        self.stop = stop
        self._buffer = b""

    def say(self, data: bytes) -> None:
        self.conn.sendall(data)

    def drip(self, data: bytes) -> None:
        for byte in data:
            if self.stop.wait(DRIP_PAUSE):
                return
            self.conn.sendall(bytes([byte]))

    def flood(self, line: bytes) -> None:
        """Send the same line until the client hangs up or the test ends."""
        while not self.stop.is_set():
            self.conn.sendall(line * 64)

    def line(self) -> bytes:
        while b"\n" not in self._buffer:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise ConnectionResetError("client closed")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.rstrip(b"\r")

    def message(self) -> bytes:
        """The message data after 354, up to the lone dot."""
        lines = []
        while (line := self.line()) != b".":
            lines.append(line)
        return b"\r\n".join(lines)

    def dialog(self, until: bytes, ehlo: bytes = b"250-mx.test\r\n250-AUTH PLAIN\r\n250 SIZE 1000000\r\n") -> None:
        """Answer like a plain server (no TLS, AUTH PLAIN accepted) up to the command starting with `until`;
        the script takes over from there."""
        while True:
            command = self.line().upper()
            if command.startswith(until):
                return
            if command.startswith(b"EHLO"):
                self.say(ehlo)
            elif command.startswith(b"AUTH"):
                self.say(b"235 2.7.0 Authentication successful\r\n")
            elif command.startswith(b"DATA"):
                self.say(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                self.message()
                self.say(b"250 2.0.0 Ok: queued\r\n")
            elif command.startswith(b"QUIT"):
                self.say(b"221 2.0.0 Bye\r\n")
                return
            else:
                self.say(b"250 2.1.0 Ok\r\n")


Script = Callable[[Peer], None]


class ScriptedServer:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = int(self.listener.getsockname()[1])
        self.connections = 0
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                self.script(Peer(conn, self.stop))
                self.stop.wait(30)  # keep the connection open, silent, until the test ends
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        for thread in self._threads:
            thread.join(timeout=5)


@contextmanager
def scripted(script: Script) -> Iterator[ScriptedServer]:
    server = ScriptedServer(script)
    try:
        yield server
    finally:
        server.close()


def endless_banner(peer: Peer) -> None:
    peer.flood(b"220-mx.test ESMTP still greeting\r\n")


def dripped_banner(peer: Peer) -> None:
    peer.drip(b"220 mx.test ESMTP ready, at last, after a very long greeting indeed\r\n" * 20)


def endless_ehlo(peer: Peer) -> None:
    peer.say(b"220 mx.test ESMTP\r\n")
    peer.line()
    peer.flood(b"250-SOMETHING\r\n")


def dripped_ehlo(peer: Peer) -> None:
    peer.say(b"220 mx.test ESMTP\r\n")
    peer.line()
    peer.drip(b"250-mx.test\r\n" * 200)


def refuses_ehlo(peer: Peer) -> None:
    peer.say(b"220 mx.test ESMTP\r\n")
    peer.line()
    peer.say(b"421 4.3.2 Service shutting down, closing transmission channel\r\n")
    peer.conn.close()


def dripped_data_reply(peer: Peer) -> None:
    """Takes the message, then answers its DATA one byte at a time, without end."""
    peer.say(b"220 mx.test ESMTP\r\n")
    peer.dialog(until=b"DATA")
    peer.say(b"354 End data with <CR><LF>.<CR><LF>\r\n")
    peer.message()
    peer.drip(b"250-2.0.0 still thinking\r\n" * 1000)


FEATURES = b"250-mx.test\r\n250-AUTH PLAIN\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n"
PIPELINING = b"250-mx.test\r\n250-AUTH PLAIN\r\n250-PIPELINING\r\n250 SIZE 100000000\r\n"


def stops_reading(ehlo: bytes = FEATURES, tls: ssl.SSLContext | None = None,
                  stopped: threading.Event | None = None) -> Script:
    """A server (STARTTLS first when `tls` is given) that says 354, reads one line of the message and then
    nothing more, and never answers: the write of a message larger than the sockets' buffers stalls in the
    middle of its data. `stopped` is set once it stops reading (the client is writing the data by then)."""

    def script(peer: Peer) -> None:
        peer.say(b"220 mx.test ESMTP\r\n")
        if tls is not None:
            peer.dialog(until=b"STARTTLS", ehlo=b"250-mx.test\r\n250 STARTTLS\r\n")
            peer.say(b"220 2.0.0 Ready to start TLS\r\n")
            peer.conn = tls.wrap_socket(peer.conn, server_side=True)
        peer.dialog(until=b"DATA", ehlo=ehlo)
        peer.say(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        peer.line()
        if stopped is not None:
            stopped.set()
        peer.stop.wait(30)  # silent, the TLS socket (a new object) kept open until the test ends

    return script


BIG = 12 << 20
"""The attachment's bytes (about 16 MB once encoded): more than any loopback socket buffers hold, so the write
stalls in the middle of the data instead of fitting in the buffers (which would leave it, rightly, in doubt)."""


def big_file(tmp_path: Path) -> Path:
    """An attachment of `BIG` random bytes in `tmp_path`, for a server that `stops_reading`."""
    path = tmp_path / "statement.pdf"
    path.write_bytes(random.Random(7).randbytes(BIG))
    return path


def escape_reply(peer: Peer) -> None:
    """Refuses sign-in with a reply that carries terminal escape sequences."""
    peer.say(b"220 mx.test ESMTP\r\n")
    peer.dialog(until=b"AUTH")
    peer.say(b"535 5.7.8 \x1b]0;owned\x07\x1b[2J\x1b[31mbad\x1b[0m credentials\r\n")


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while not condition() and time.monotonic() < end:
        time.sleep(0.01)
    return condition()
