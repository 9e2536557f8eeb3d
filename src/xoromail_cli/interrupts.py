"""Ctrl-C and SIGTERM stop a batch cleanly: the message in flight settles in the ledger, the run reports
what it sent and what it did not attempt, and exits 130 (SIGINT) or 143 (SIGTERM), as shells report them.

SIGTERM (what `systemctl stop`, `kill` and schedulers at their time limit send) is turned into `Terminated`,
a KeyboardInterrupt, so every `except KeyboardInterrupt`/`finally` that already makes Ctrl-C safe makes
SIGTERM safe too; without the handler Python dies at once and the transport is never closed.
"""

from __future__ import annotations

import signal
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
    if isinstance(stop, Terminated):
        return XoromailError("stopped by SIGTERM", "re-run the same command to finish: what was sent is skipped",
                             exit_code=ExitCode.TERMINATED)
    return XoromailError("interrupted (Ctrl-C)", "re-run the same command to finish: what was sent is skipped",
                         exit_code=ExitCode.INTERRUPTED)


def _raise_terminated(signal_number: int, frame: FrameType | None) -> None:
    raise Terminated


@contextmanager
def sigterm_stops() -> Iterator[None]:
    """While inside, SIGTERM raises `Terminated` in the main thread; the previous handler comes back after."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread (a test runner's worker): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
