"""The setup wizard in a real pseudo-terminal, against real local SMTP servers: answers are checked where
they are typed, a failed validation offers a second chance that keeps the other answers, and a machine
without a keyring is told so before the first question."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

import keyring

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles
from tests.support.terminal import Terminal
from xoromail_cli.config import load
from xoromail_cli.services.smtp.presets import PRESETS


def _env(config_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "XOROMAIL_CONFIG": str(config_path), **extra}


def _server_flags(port: int, *extra: str) -> list[str]:
    return ["setup", "--service", "smtp", "--email", USER, "--display-name", "Company Billing", "--host", "127.0.0.1",
            "--port", str(port), "--security", "starttls", *extra]


def _choice(term: Terminal, label: str) -> str:
    """The number the menu shows for `label`."""
    found = re.findall(rf"(\d+)\. {re.escape(label)}", term.text)
    assert found, f"no menu entry {label!r} in {term.text[-800:]!r}"
    return str(found[-1])


def _stored_password() -> str | None:
    keyring.set_keyring(type(keyring.get_keyring())())  # re-read the file the CLI wrote
    return keyring.get_password("xoromail", "default")


def test_each_answer_is_checked_where_it_is_typed(config_path: Path) -> None:
    term = Terminal(["setup", "--no-validate", "--email", USER], _env(config_path))
    term.answer("Service type", "1")
    term.answer("Provider", str(len(PRESETS) + 1))
    term.answer("Outgoing server", "smtp example.test")
    term.expect("is not a server name")
    term.answer("Outgoing server", "smtp.example.test")
    term.answer("Security", "starttls")
    term.answer("Port", "99999")
    term.expect("is not a port")
    term.answer("Port", "587")
    term.answer("Username", "CORP\\billing")
    term.expect("DOMAIN\\user form")
    term.answer("Display name", "   ")
    term.expect("a display name is needed")
    term.answer("Display name", "Company Billing")
    term.answer("Password (input hidden)", "pw", hidden=True)
    assert term.wait() == 0, term.text
    assert "stdin is not a terminal" not in term.text
    assert term.text.count("DOMAIN\\user form") == 1, "the note is not repeated after the answer"
    settings = load(config_path).profiles["default"].settings
    assert (settings.host, settings.port, settings.username) == ("smtp.example.test", 587, "CORP\\billing")


def test_a_refused_password_is_asked_again_keeping_the_other_answers(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    term = Terminal(_server_flags(server.port, "--ca-file", str(tls.ca_file)), _env(config_path))
    term.answer("Username", "")
    term.answer("Password (input hidden)", "wrong password", hidden=True)
    term.expect("Failed at stage 'auth'")
    term.answer("Change which answer and try again?", "")  # the suggestion: the password
    term.answer("Password (input hidden)", PASSWORD, hidden=True)
    assert term.wait() == 0, term.text
    assert "--no-validate" not in term.text
    assert "Username" not in term.text.split("Change which answer")[1], "only the password is asked again"
    assert len(server.messages) == 1
    assert _stored_password() == PASSWORD


def test_an_untrusted_certificate_asks_for_a_ca_file(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    term = Terminal(_server_flags(server.port), _env(config_path))
    term.answer("Username", "")
    term.answer("Password (input hidden)", PASSWORD, hidden=True)
    term.expect("not trusted")
    term.answer("Change which answer and try again?", "")  # the suggestion: a CA file
    term.answer("CA certificate file (PEM)", str(tls.ca_file.parent / "missing.pem"))
    term.expect("is not a file")
    term.answer("CA certificate file (PEM)", str(tls.ca_file))
    assert term.wait() == 0, term.text
    assert load(config_path).profiles["default"].ca_file == str(tls.ca_file.resolve())
    assert len(server.messages) == 1


def test_giving_up_after_a_refused_password_never_suggests_no_validate(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    term = Terminal(_server_flags(server.port, "--ca-file", str(tls.ca_file)), _env(config_path))
    term.answer("Username", "")
    term.answer("Password (input hidden)", "wrong password", hidden=True)
    term.expect("nothing: stop here")
    term.answer("Change which answer and try again?", _choice(term, "nothing: stop here"))
    assert term.wait() == 77, term.text
    assert "Nothing was saved" in term.text
    assert "--no-validate" not in term.text
    assert not config_path.exists()


def test_an_unreachable_server_suggests_no_validate_and_a_new_port_is_tried(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    server = smtp_server()
    term = Terminal(["setup", "--email", USER, "--display-name", "B", "--ca-file", str(tls.ca_file)],
                    _env(config_path))
    term.answer("Service type", "1")
    term.answer("Provider", str(len(PRESETS) + 1))
    term.answer("Outgoing server", "127.0.0.1")
    term.answer("Security", "starttls")
    term.answer("Port", str(closed_port))
    term.answer("Username", "")
    term.answer("Password (input hidden)", PASSWORD, hidden=True)
    term.expect("refused the connection")
    term.expect("nothing: stop here")
    term.answer("Change which answer and try again?", _choice(term, "the port"))
    term.expect("Port")
    term.answer(f"({closed_port})", str(server.port))  # the earlier answer is offered; the next one kept
    term.answer("Username", "")
    term.expect("Saved profile")
    assert term.wait() == 0, term.text
    assert load(config_path).profiles["default"].settings.port == server.port

    again = Terminal(_server_flags(closed_port), _env(config_path))
    again.answer("Username", "")
    again.answer("Keep the stored password?", "y")
    again.expect("nothing: stop here")
    again.answer("Change which answer and try again?", _choice(again, "nothing: stop here"))
    assert again.wait() == 69, again.text
    assert "--no-validate" in again.text


def test_without_a_keyring_the_first_question_offers_a_password_command(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    term = Terminal(_server_flags(server.port, "--ca-file", str(tls.ca_file)),
                    _env(config_path, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"))
    term.expect("cannot store a password here")
    term.answer("How should xoromail get the password?", "1")
    term.answer("Command that prints the password", f"echo '{PASSWORD}'")
    term.answer("Username", "")
    assert term.wait() == 0, term.text
    assert "Password" not in term.text.split("Command that prints")[1]
    assert load(config_path).profiles["default"].password_command == f"echo '{PASSWORD}'"
    assert len(server.messages) == 1


def test_without_a_keyring_the_environment_variable_is_used_for_the_test_and_nothing_stored(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    term = Terminal(_server_flags(server.port, "--ca-file", str(tls.ca_file)),
                    _env(config_path, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"))
    term.answer("How should xoromail get the password?", "2")
    term.answer("Username", "")
    term.answer("Password for the test only", PASSWORD, hidden=True)
    assert term.wait() == 0, term.text
    assert "comes from $XOROMAIL_PASSWORD and was not stored" in " ".join(term.text.split())
    assert load(config_path).profiles["default"].password_command is None
    assert len(server.messages) == 1


def test_without_a_keyring_stopping_says_what_to_install_before_the_services_questions(config_path: Path) -> None:
    term = Terminal(["setup"], _env(config_path, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"))
    term.answer("Company email address", USER)
    term.expect("Microsoft 365 sign-in")  # the last entry of the menu
    term.answer("Service type", _choice(term, "Web Mail"))
    term.expect("nothing is stored")
    term.answer("How should xoromail get the password?", "3")
    assert term.wait() == 78, term.text
    assert "keyrings.alt" in term.text
    assert "Provider" not in term.text and "Outgoing server" not in term.text


def test_without_a_keyring_a_sign_in_service_stops_at_once_without_offering_a_password_source(
        config_path: Path) -> None:
    term = Terminal(["setup"], _env(config_path, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"))
    term.answer("Company email address", USER)
    term.expect("Microsoft 365 sign-in")
    term.answer("Service type", _choice(term, "Email services"))
    assert term.wait() == 78, term.text
    text = " ".join(term.text.split())
    assert "keeps its sign-in (tokens) in a secret store" in text and "cannot hold tokens" in text
    assert "How should xoromail get the password?" not in text and "client" not in text.lower().split("tokens")[0]


def test_setup_json_at_a_terminal_prompts_on_stderr_and_stdout_is_one_json_object(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    server = smtp_server()
    stdout = tmp_path / "result.json"
    term = Terminal(_server_flags(server.port, "--ca-file", str(tls.ca_file), "--json"), _env(config_path),
                    stdout=stdout)
    term.answer("Username", "")
    term.answer("Password (input hidden)", PASSWORD, hidden=True)
    assert term.wait() == 0, term.text
    data = json.loads(stdout.read_text())
    assert (data["ok"], data["saved"]) == (True, True)
    assert "Username" in term.text


def test_a_refused_password_from_a_command_asks_for_the_command_again(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    term = Terminal(_server_flags(server.port, "--ca-file", str(tls.ca_file)),
                    _env(config_path, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring"))
    term.answer("How should xoromail get the password?", "1")
    term.answer("Command that prints the password", "echo wrong")
    term.answer("Username", "")
    term.expect("Failed at stage 'auth'")
    term.expect("the command that prints the password")
    term.answer("Change which answer and try again?", "")  # the suggestion: the command
    term.answer("Command that prints the password", f"echo '{PASSWORD}'")
    assert term.wait() == 0, term.text
    assert "Password" not in term.text
    assert load(config_path).profiles["default"].password_command == f"echo '{PASSWORD}'"


def test_the_end_of_input_at_a_question_stops_setup_without_a_traceback(config_path: Path) -> None:
    term = Terminal(["setup"], _env(config_path))
    term.expect("Company email address")
    time.sleep(0.2)
    os.write(term.fd, b"\x04")  # Ctrl-D: the terminal reports the end of input
    assert term.wait() == 2, term.text
    assert "the input ended at a question" in " ".join(term.text.split())
    assert "Traceback" not in term.text
    assert not config_path.exists()
