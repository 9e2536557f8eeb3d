"""`demo` and `sink` through the CLI, including real subprocesses of the installed console script."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from typer.testing import CliRunner

from tests.support.cli import SCRIPT, as_from_a_terminal
from tests.support.terminal import Terminal
from xoromail_cli.cli import app
from xoromail_cli.local.sink import free_port


def test_demo_exits_0_and_lists_what_the_server_received(runner: CliRunner, config_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_path), "demo"])
    assert result.exit_code == 0, result.output
    assert "All checks passed" in result.output
    assert "The server received" in result.output
    assert not config_path.exists()


def test_demo_json(runner: CliRunner) -> None:
    result = runner.invoke(app, ["demo", "--json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["ok"] is True and data["received"]


def test_demo_runs_as_a_real_process_without_a_terminal(isolated_environment: Path) -> None:
    completed = subprocess.run([SCRIPT, "demo"], capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL, env=os.environ.copy(), check=False)
    assert completed.returncode == 0, completed.stderr
    assert "All checks passed" in completed.stdout
    assert "\x1b[" not in completed.stdout
    assert list((isolated_environment / "config").iterdir()) == []


def test_demo_shows_validations_stages_as_plain_lines_on_stderr_off_a_terminal(isolated_environment: Path) -> None:
    """Was: nothing between the banner and the report while the demo checked (the wizard shows each stage)."""
    completed = subprocess.run([SCRIPT, "demo"], capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL, env=os.environ.copy(), check=False)
    assert completed.returncode == 0, completed.stderr
    lines = completed.stderr.splitlines()
    assert lines[0] == "Checking profile 'demo' …", lines
    assert "  auth …" in lines and "  send …" in lines
    assert lines.index("  auth …") < lines.index(next(x for x in lines if x.startswith("  auth: ok (")))
    assert "\x1b" not in completed.stderr, repr(completed.stderr)
    assert "Checking profile 'demo' …" not in completed.stdout


def test_demo_at_a_terminal_shows_checking_with_the_stages_it_ran() -> None:
    term = Terminal(["demo"], {**os.environ, "NO_COLOR": "1"})
    assert term.wait() == 0, term.text
    checking = term.text.split("Checking profile 'demo' …")  # the wizard's live list, which the report replaces
    assert len(checking) > 1, term.text
    assert "✓ auth" in checking[-1] and "✓ send" in checking[-1] and "All checks passed" in checking[-1]


def test_sink_prints_a_line_per_message_and_fills_the_maildir(tmp_path: Path) -> None:
    port = free_port()
    maildir = tmp_path / "Maildir"
    process = subprocess.Popen([SCRIPT, "sink", "--port", str(port), "--maildir", str(maildir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=as_from_a_terminal)
    try:
        assert process.stdout is not None
        assert "Listening on 127.0.0.1" in process.stdout.readline()
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "erp@company.test", "c@x.test", "Invoice 42"
        message.set_content("hello")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(message)
        line = process.stdout.readline()
        assert "from erp@company.test to c@x.test: Invoice 42" in line
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert len(list((maildir / "new").iterdir())) == 1


def test_help_loads_no_heavy_library() -> None:
    code = ("import sys\nfrom xoromail_cli.cli import app\nfrom typer.testing import CliRunner\n"
            "CliRunner().invoke(app, ['--help'])\n"
            "heavy = {'exchangelib', 'google', 'jinja2', 'aiosmtpd', 'msal', 'keyring', 'requests', 'dns',"
            " 'psycopg', 'checkdmarc'}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_the_overview_summaries_are_the_commands_own_first_help_lines() -> None:
    from xoromail_cli.cli import COMMANDS, load_command

    for name, spec in COMMANDS.items():
        command = load_command(name)
        assert (command.help or "").strip().splitlines()[0] == spec.summary, name


def test_a_busy_port_fails_at_once(runner: CliRunner) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["sink", "--port", str(port)])
    assert result.exit_code == 69 and "cannot listen on" in result.output
