"""Ctrl-C and SIGTERM stop a batch cleanly: the message in flight settles in the ledger, the run reports
what it sent and what it did not attempt, and exits 130 (SIGINT) or 143 (SIGTERM), as shells report them.

SIGTERM (what `systemctl stop`, `kill` and schedulers at their time limit send) is turned into `Terminated`,
a KeyboardInterrupt, so every `except KeyboardInterrupt`/`finally` that already makes Ctrl-C safe makes
SIGTERM safe too; without the handler Python dies at once and the transport is never closed.

While a message's outcome is written to the ledger and counted in the run's summary (`recording_outcome`), a
signal waits until both are done: raised between the two, the ledger would say sent and the summary "not
attempted". A second signal meanwhile stops the run at once: the ledger's write may wait without end (a PostgreSQL
table another session has locked), and the run must stay stoppable.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from xoromail_cli.errors import ExitCode, XoromailError


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived."""


def interruption(stop: KeyboardInterrupt, command: str | None = None) -> XoromailError:
    """The error a run that was stopped by a signal ends with (`command`: the subcommand that was running)."""
    if command == "setup":  # setup saves only at its very end, and a half-done save puts the old file back
        return XoromailError("Setup stopped; nothing was saved.", None,
                             exit_code=ExitCode.TERMINATED if isinstance(stop, Terminated) else ExitCode.INTERRUPTED)
    # only a send has rows left to finish, and a ledger that skips what went out; another command just ran again
    hint = "re-run the same command to finish: what was sent is skipped" if command == "send" else None
    if isinstance(stop, Terminated):
        return XoromailError("stopped by SIGTERM", hint, exit_code=ExitCode.TERMINATED)
    return XoromailError("interrupted (Ctrl-C)", hint, exit_code=ExitCode.INTERRUPTED)


class _Held:
    """The main thread's outcomes being recorded (a depth), and the stop that came meanwhile."""

    depth = 0
    pending: KeyboardInterrupt | None = None


def _stop(signal_number: int, frame: FrameType | None) -> None:
    stop = Terminated() if signal_number == signal.SIGTERM else KeyboardInterrupt()
    if _Held.depth and _Held.pending is None:
        _Held.pending = stop
        return
    _Held.pending = None  # a second signal is not held: the recording may wait without end (a locked ledger)
    raise stop


@contextmanager
def recording_outcome(stopping: KeyboardInterrupt | None = None) -> Iterator[None]:
    """A Ctrl-C or SIGTERM that comes inside waits until the outermost one ends, a second one does not (main
    thread only: the signals' Python handlers run there; other threads are never interrupted by them).
    `stopping`: the stop already under way while its message's outcome is recorded, held as if it came inside
    (raised again at the end): the next signal stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _Held.depth += 1
    if stopping is not None and _Held.pending is None:
        _Held.pending = stopping
    try:
        yield
    finally:
        _Held.depth -= 1
        if not _Held.depth and _Held.pending is not None:
            stop, _Held.pending = _Held.pending, None
            raise stop


@contextmanager
def sigterm_stops() -> Iterator[None]:
    """While inside, SIGTERM raises `Terminated` in the main thread, and Ctrl-C KeyboardInterrupt as always
    (both held back by `recording_outcome`); the previous handlers come back after. An ignored SIGINT (a
    background job's) stays ignored."""
    try:
        previous = signal.signal(signal.SIGTERM, _stop)
    except ValueError:  # not the main thread (a test runner's worker): leave signals alone
        yield
        return
    interrupt = signal.getsignal(signal.SIGINT)
    if interrupt is signal.default_int_handler:
        signal.signal(signal.SIGINT, _stop)
    try:
        yield
    finally:
        _Held.pending = None  # a stop that came as the run ended belongs to this run only
        signal.signal(signal.SIGTERM, previous)
        if interrupt is signal.default_int_handler:
            signal.signal(signal.SIGINT, interrupt)
