"""Validation is never mute: "Checking …" and each stage as it starts and ends, with a spinner on the running
one in a terminal (the wizard, driven in a pseudo-terminal) and as plain lines on stderr off one."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles
from tests.support.terminal import Terminal
from xoromail_cli import validate
from xoromail_cli.credentials import MemorySecrets
from xoromail_cli.local.sink import CaptureHandler

SCRIPT = str(Path(sys.executable).with_name("xoromail"))


class HeldData(CaptureHandler):
    """A server that takes its time over the test message, as a busy one does: its reply waits until the
    test has looked at the screen (`release`), however slowly a loaded machine lets the test read it."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.to_thread(self.release.wait, 30)
        return str(await super().handle_DATA(server, session, envelope))


def flags(port: int, tls: TLSFiles) -> list[str]:
    return ["setup", "--service", "smtp", "--email", USER, "--display-name", "Company Billing", "--host",
            "127.0.0.1", "--port", str(port), "--security", "starttls", "--ca-file", str(tls.ca_file)]


def test_the_core_tells_each_stage_as_it_starts_and_ends(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    from tests.support.common import profile_for

    server = smtp_server()
    told: list[tuple[str, str]] = []
    report = validate.run(profile_for(server, tls), MemorySecrets({"password": PASSWORD}), check_domain=False,
                          on_stage=lambda name, outcome: told.append(
                              (name, "start" if outcome is None else ("ok" if outcome.ok else "failed"))))
    assert report.ok
    names = [stage.name for stage in report.stages]
    assert told == [item for name in names for item in ((name, "start"), (name, "ok"))]


def test_the_wizard_shows_checking_and_a_spinner_on_the_running_stage(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    handler = HeldData()
    server = smtp_server(handler=handler)
    term = Terminal(flags(server.port, tls), {**os.environ, "XOROMAIL_CONFIG": str(config_path)})
    try:
        term.answer("Username", "")
        term.answer("Password (input hidden)", PASSWORD, hidden=True)
        term.expect("Checking profile 'default' …")
        term.expect("send …")  # while the server holds the test message
        assert "All checks passed" not in term.text
        assert "✓ auth" in term.text.split("Checking profile 'default' …")[-1]
    finally:
        handler.release.set()
    assert term.wait() == 0, term.text
    assert "All checks passed" in term.text


def test_off_a_terminal_the_stages_are_plain_lines_on_stderr(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    done = subprocess.run([SCRIPT, "--config", str(config_path), *flags(server.port, tls), "--password-stdin"],
                          input=PASSWORD + "\n", capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "Checking profile 'default' …"
    assert "  config …" in lines and "  send …" in lines
    assert any(line.startswith("  send: ok (") for line in lines), lines
    assert lines.index("  auth …") < lines.index(next(x for x in lines if x.startswith("  auth: ok")))
    assert "\x1b" not in done.stderr and "Checking profile 'default' …" not in done.stdout


def test_ctrl_c_at_a_question_says_setup_stopped_on_a_line_of_its_own(config_path: Path) -> None:
    term = Terminal(["setup"], {**os.environ, "XOROMAIL_CONFIG": str(config_path)})
    term.expect("Company email address")
    time.sleep(0.2)
    os.write(term.fd, b"bill\x03")
    assert term.wait() == 130, term.text
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", term.text).replace("\r", "")
    lines = [line.strip() for line in plain.split("\n")]
    assert "error: Setup stopped; nothing was saved." in lines, term.text
    assert "re-run the same command" not in term.text and not config_path.exists()


def test_no_sign_in_is_an_explicit_choice_and_the_saved_line_claims_no_password(
        smtp_server: ServerFactory, config_path: Path) -> None:
    server = smtp_server("none", authenticator=None)
    term = Terminal(["setup", "--email", USER, "--display-name", "ERP", "--host", "127.0.0.1", "--port",
                     str(server.port), "--security", "none"], {**os.environ, "XOROMAIL_CONFIG": str(config_path)})
    term.expect("sign in with a username and password")
    term.answer("Sign-in", "1")  # no sign-in
    assert term.wait() == 0, term.text
    text = " ".join(term.text.split())
    assert "Username" not in text and "Password" not in text
    assert "no sign-in: the server accepts mail without one" in text and "password in" not in text
    assert len(server.messages) == 1


def test_a_relay_that_signs_in_asks_the_username_and_password(
        smtp_server: ServerFactory, config_path: Path) -> None:
    server = smtp_server("none")
    term = Terminal(["setup", "--email", USER, "--display-name", "ERP", "--host", "127.0.0.1", "--port",
                     str(server.port), "--security", "none", "--no-validate"],
                    {**os.environ, "XOROMAIL_CONFIG": str(config_path)})
    term.expect("sign in with a username and password")
    term.answer("Sign-in", "2")
    term.answer("Username", "relay-user")
    term.answer("Password (input hidden)", PASSWORD, hidden=True)
    assert term.wait() == 0, term.text
    assert "; password in plain file" in " ".join(term.text.split())  # the store the tests chose
