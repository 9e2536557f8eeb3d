"""Deadlines for whole network operations, not single reads.

A socket timeout bounds one `recv`: a server that drips one byte a second, or sends an endless multi-line
reply, never trips it. Here a reply, a TLS handshake and a message's transfer each get a deadline of their own,
and every wait inside them is cut to what is left of it. No threads: each wait is a `select` or a socket
timeout no longer than the time remaining.
"""

from __future__ import annotations

import select
import socket
import ssl
import time

MIN_TRANSFER_RATE = 16 * 1024
"""Bytes per second a message's transfer may not fall below on average: 25 MB gets about 27 minutes."""


class DeadlineExceededError(TimeoutError):
    """An operation did not finish within its deadline. `started` says whether the peer had sent anything."""

    def __init__(self, what: str, seconds: float, *, started: bool = True) -> None:
        super().__init__(f"{what} did not finish within {seconds:g} s")
        self.what = what
        self.seconds = seconds
        self.started = started


class Deadline:
    """A point in time (monotonic clock); `wait()` is the longest a single wait may still take."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def wait(self, *, started: bool = True) -> float:
        """Seconds left, or DeadlineExceededError when none are."""
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceededError(self.what, self.seconds, started=started)
        return left

    def sooner(self, other: Deadline | None) -> Deadline:
        """Whichever of the two ends first."""
        if other is None or self.remaining() <= other.remaining():
            return self
        return other


def transfer_seconds(size: int, timeout: float) -> float:
    """The bound on sending `size` bytes: the profile's timeout plus the time at the slowest allowed rate."""
    return timeout + size / MIN_TRANSFER_RATE


def recv(sock: socket.socket, deadline: Deadline, *, started: bool = True, size: int = 65536) -> bytes:
    """One receive that returns data, b"" at the end of the stream, or raises when the deadline passes."""
    sock.settimeout(deadline.wait(started=started))
    try:
        return sock.recv(size)
    except TimeoutError:
        raise DeadlineExceededError(deadline.what, deadline.seconds, started=started) from None


def send_all(sock: socket.socket, data: bytes, deadline: Deadline, timeout: float) -> None:
    """Send everything before the deadline; a stalled peer fails after `timeout` (or sooner)."""
    view = memoryview(data)
    previous = sock.gettimeout()
    try:
        while view:
            sock.settimeout(min(timeout, deadline.wait()))
            try:
                sent = sock.send(view[:65536])
            except TimeoutError:
                raise DeadlineExceededError(deadline.what, deadline.seconds) from None
            view = view[sent:]
    finally:
        sock.settimeout(previous)


def handshake(context: ssl.SSLContext, sock: socket.socket, host: str, seconds: float) -> ssl.SSLSocket:
    """Wrap `sock` in TLS and finish the handshake within `seconds`, however slowly the server answers."""
    deadline = Deadline(seconds, f"the TLS handshake with {host}")
    previous = sock.gettimeout()
    tls = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    tls.setblocking(False)
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                select.select([tls], [], [], deadline.wait())
            except ssl.SSLWantWriteError:
                select.select([], [tls], [], deadline.wait())
    except BaseException:
        tls.close()
        raise
    tls.settimeout(previous)
    return tls
