"""The installed `xoromail` command and the argument lists the CLI tests share."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from tests.support.common import USER, TLSFiles

SCRIPT = str(Path(sys.executable).with_name("xoromail"))
"""The console script of this venv, for tests that run the CLI as a real process."""


def as_from_a_terminal() -> None:
    """`preexec_fn` for a command a test interrupts with SIGINT. A shell starts background jobs (so this suite,
    when run as one) with SIGINT ignored, and Python keeps an ignored SIGINT ignored; the command gets Ctrl-C's
    default, as when typed at a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def setup_args(config_path: Path, port: int, tls: TLSFiles, *extra: str) -> list[str]:
    """A scripted `setup` of the test account against a local SMTP server (the password comes on stdin)."""
    return ["--config", str(config_path), "setup", "--service", "webmail", "--email", USER,
            "--display-name", "Company Billing", "--host", "127.0.0.1", "--port", str(port),
            "--security", "starttls", "--ca-file", str(tls.ca_file), "--password-stdin", *extra]


def send_command(batch: Path, *extra: str) -> list[str]:
    """`xoromail send` of an overdue-invoice batch, as cron would run it."""
    return [SCRIPT, "send", "--event", "overdue-invoice", "--batch", str(batch), "--retry-delay", "0", *extra]
