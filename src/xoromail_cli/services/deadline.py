"""Deadlines for whole network operations, not single reads.

A socket timeout bounds one `recv`: a server that drips one byte a second, or sends an endless multi-line
reply, never trips it. Here a reply, a TLS handshake and a message's transfer each get a deadline of their own,
and every wait inside them is cut to what is left of it: each wait is a `select` or a socket timeout no longer
than the time remaining. Requests made through requests/urllib3, whose reads we do not drive, are bounded by a
`Watchdog` instead, which shuts their socket down when the time is up.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable

_HAS_POLL = hasattr(select, "poll")
WRITE_CHUNK = 65536
"""The most bytes one write of `send_all` hands the socket."""
MIN_TRANSFER_RATE = 16 * 1024
"""Bytes per second a message's transfer may not fall below on average: 25 MB gets about 27 minutes."""


class DeadlineExceededError(TimeoutError):
    """An operation did not finish within its deadline. `started` says whether the peer had sent anything;
    `stalled`, that a write ended because the peer took nothing for `seconds`, long before the whole's deadline."""

    def __init__(self, what: str, seconds: float, *, started: bool = True, stalled: bool = False) -> None:
        super().__init__(f"{what} stopped: the server took no data for {seconds:g} s" if stalled
                         else f"{what} did not finish within {seconds:g} s")
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
    """One receive that returns data, b"" at the end of the stream, or raises when the deadline passes.

    The socket is left non-blocking; each read waits first with a `poll` cut to the deadline (a reply is rarely
    there before it is asked for, and a read that finds nothing costs a raised exception). No system call goes
    to changing the socket's timeout, as `settimeout` does on every call."""
    _nonblocking(sock)
    writing = False
    while True:
        left = deadline.wait(started=started)  # also when data keeps coming: a server dripping bytes
        if writing or not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            _wait(sock, writing, left)
        try:
            return sock.recv(size)
        except (BlockingIOError, ssl.SSLWantReadError):  # nothing yet, or part of a TLS record: wait again
            writing = False
        except ssl.SSLWantWriteError:  # TLS has to write before it can read (a renegotiation)
            writing = True


def send_all(sock: socket.socket, data: bytes, deadline: Deadline, timeout: float,
             on_sent: Callable[[int], None] | None = None) -> None:
    """Send everything before the deadline; a stalled peer (nothing taken for `timeout`) fails sooner.

    Non-blocking like `recv`: a write the socket's buffer takes is one system call, without a `poll` first.
    `on_sent` hears how many bytes of `data` the socket has taken so far, after each write that took some: when
    this raises, the bytes after the last count it heard never went out (the socket took none of them)."""
    view = memoryview(data)
    _nonblocking(sock)
    stalled_at = time.monotonic() + timeout
    while view:
        left = min(stalled_at - time.monotonic(), deadline.wait())
        if left <= 0:
            stalled = deadline.remaining() > 0  # (not "did not finish within" the whole's far longer bound)
            raise DeadlineExceededError(deadline.what, timeout if stalled else deadline.seconds, stalled=stalled)
        try:
            sent = sock.send(view[:WRITE_CHUNK])
        except (BlockingIOError, ssl.SSLWantWriteError):
            _wait(sock, True, left)
        except ssl.SSLWantReadError:
            _wait(sock, False, left)
        else:
            view = view[sent:]
            if sent:
                stalled_at = time.monotonic() + timeout
                if on_sent is not None:
                    on_sent(len(data) - len(view))



class Reached:
    """An `on_sent` for `send_all` that runs `then` once the socket has taken the first `upto` bytes (the end of
    a message written together with the commands behind it), and `nearing` as soon as the next write may take
    them (at once when the first may). A signal's exception can be raised between a write and the count it
    took: before `nearing` ran, those bytes had certainly not all gone out, whatever count was lost."""

    def __init__(self, upto: int, then: Callable[[], None] | None,
                 nearing: Callable[[], None] | None = None) -> None:
        self.upto, self.then, self.nearing = upto, then, nearing
        self._near(0)

    def __call__(self, sent: int) -> None:
        self._near(sent)
        if self.then is not None and sent >= self.upto:
            then, self.then = self.then, None
            then()

    def _near(self, sent: int) -> None:
        if self.nearing is not None and sent + WRITE_CHUNK >= self.upto:
            nearing, self.nearing = self.nearing, None
            nearing()


def _nonblocking(sock: socket.socket) -> None:
    if sock.gettimeout() != 0:
        sock.settimeout(0)


def _wait(sock: socket.socket, writing: bool, seconds: float) -> None:
    """Wait until `sock` can be written (or read) or `seconds` pass; the caller then checks its deadline."""
    if _HAS_POLL:
        poller = select.poll()
        poller.register(sock, select.POLLOUT if writing else select.POLLIN)
        poller.poll(max(1, math.ceil(seconds * 1000)))
    else:  # Windows has no poll(); its select() is not limited to descriptors below 1024
        select.select([] if writing else [sock], [sock] if writing else [], [], seconds)


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


class Watchdog:
    """Shuts down the sockets registered with it once `seconds` have passed: the one way to end a blocking read
    a dripping server keeps alive inside a library whose reads we do not drive (urllib3 under requests).

    Used as a context manager on the thread that makes the request; connections opened or reused on that thread
    meanwhile register their socket with `Watchdog.watch`. One timer thread per watched operation."""

    _active = threading.local()

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Watchdog:
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()
        stack = getattr(self._active, "stack", None)
        if stack is None:
            stack = self._active.stack = []
        stack.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._active.stack.remove(self)

    @classmethod
    def watch(cls, sock: socket.socket | None) -> None:
        """Put `sock` under every watchdog running on this thread (none: nothing happens)."""
        for dog in getattr(cls._active, "stack", ()):
            dog._add(sock)

    def _add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            fired = self.fired
        if fired:
            _shut(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Shut the connection down under any TLS layer (the plain socket's own shutdown: an SSLSocket's would
    drop its TLS state while another thread reads); the blocked read then ends at once."""
    with contextlib.suppress(OSError, TypeError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
