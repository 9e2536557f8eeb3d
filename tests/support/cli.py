"""The installed `xoromail` command and the argument lists the CLI tests share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.common import USER, TLSFiles

if TYPE_CHECKING:
    from xoromail_cli.local.sink import SinkServer

SCRIPT = str(Path(sys.executable).with_name("xoromail"))
"""The console script of this venv, for tests that run the CLI as a real process."""


def as_from_a_terminal() -> None:
    """`preexec_fn` for a command a test interrupts with SIGINT. A shell starts background jobs (so this suite,
    when run as one) with SIGINT ignored, and Python keeps an ignored SIGINT ignored; the command gets Ctrl-C's
    default, as when typed at a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def signalled(command: list[str], env: dict[str, str], ready: threading.Event,
              signal_number: int) -> subprocess.CompletedProcess[str]:
    """Run `command`, send it `signal_number` once `ready` is set (as Ctrl-C at a terminal would come, or
    SIGTERM), and wait for it to end; killed if it does not end within 30 s (the test then fails on its code)."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=as_from_a_terminal)
    try:
        assert ready.wait(30), "the command never got where the signal is meant to come"
        process.send_signal(signal_number)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def setup_args(config_path: Path, port: int, tls: TLSFiles, *extra: str) -> list[str]:
    """A scripted `setup` of the test account against a local SMTP server (the password comes on stdin)."""
    return ["--config", str(config_path), "setup", "--service", "webmail", "--email", USER,
            "--display-name", "Company Billing", "--host", "127.0.0.1", "--port", str(port),
            "--security", "starttls", "--ca-file", str(tls.ca_file), "--password-stdin", *extra]


def send_command(batch: Path, *extra: str) -> list[str]:
    """`xoromail send` of an overdue-invoice batch, as cron would run it."""
    return [SCRIPT, "send", "--event", "overdue-invoice", "--batch", str(batch), "--retry-delay", "0", *extra]


def pg_send_environment(tmp_path: Path, server: SinkServer, tls: TLSFiles, url: str,
                        **overrides: object) -> dict[str, str]:
    """The environment of a `send` run as a real process: a home of its own whose settings file names the
    PostgreSQL ledger `url` (its password in PGPASSWORD), the test profile changed by `overrides`."""
    from tests.support.common import PASSWORD, profile_for
    from tests.support.pg_server import APP_PASSWORD
    from xoromail_cli import config

    env = os.environ.copy()
    for variable, folder in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                             ("XDG_DATA_HOME", "data"), ("HOME", "")):
        (tmp_path / "home" / folder).mkdir(parents=True, exist_ok=True)
        env[variable] = str(tmp_path / "home" / folder)
    settings = tmp_path / "home" / "config" / "xoromail.toml"
    config.save_profile(settings, profile_for(server, tls, ledger=url, **overrides))
    env.update(XOROMAIL_CONFIG=str(settings), XOROMAIL_PASSWORD=PASSWORD, PGPASSWORD=APP_PASSWORD)
    return env
