"""`xoromail explain` with a profile: the commands it suggests fit the profile's service (a Microsoft 365 or Google
profile is never told to switch to an SMTP password) and carry the run's --config and --profile, in its `run:`
commands and in the commands its fixes quote."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer._click.exceptions import BadParameter, ClickException, MissingParameter  # Typer's own Click
from typer.testing import CliRunner

from tests.support.common import USER
from xoromail_cli import config
from xoromail_cli.cli import app
from xoromail_cli.explain import Context, catalogue, explain
from xoromail_cli.profile import Profile
from xoromail_cli.services.google.settings import GoogleSettings
from xoromail_cli.services.microsoft365.settings import Microsoft365Settings

TENANT, CLIENT_ID = "company.test", "5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f"
SMTP_ONLY = re.compile(r"--service smtp|--security|--port|--host|--preset|--username")
"""Options only an SMTP profile has: on another service's profile, setup refuses them or switches the service."""


def m365(**settings: Any) -> Profile:
    return Profile(name="m365", email=USER, service="microsoft365",
                   settings=Microsoft365Settings(tenant=TENANT, client_id=CLIENT_ID, **settings))


def gmail() -> Profile:
    return Profile(name="gmail", email=USER, service="google",
                   settings=GoogleSettings(client_id="1234-abc.apps.googleusercontent.com"))


def explained(runner: CliRunner, config_path: Path, profile: Profile, text: str,
              entry: str | None = None) -> dict[str, Any]:
    """The match `entry` (else the first) of `explain --json` run with the profile's --config and --profile."""
    config.save_profile(config_path, profile)
    result = runner.invoke(app, ["--config", str(config_path), "--profile", profile.name, "explain", "--json", text])
    assert result.exit_code == 0, result.output
    matches: list[dict[str, Any]] = json.loads(result.stdout)["matches"]
    return next(match for match in matches if entry in (None, match["id"]))


M365_SETUP = f"setup --service microsoft365 --tenant {TENANT} --client-id {CLIENT_ID} --email {USER}"


@pytest.mark.parametrize(("text", "entry"), [
    ("550 5.7.57 Client not authenticated to send mail. Error: 535 5.7.3 Authentication unsuccessful", "smtp-5.7.57"),
    ("The SMTP server requires a secure connection or the client was not authenticated. The server response was: "
     "5.7.0 Authentication Required", "smtp-auth-required"),
    ("554 5.7.1 <ap@customer.test>: Relay access denied", "smtp-relay-denied"),
    ("534-5.7.9 Application-specific password required.", "smtp-gmail-5.7.9"),
])
def test_on_a_microsoft_365_profile_a_missing_sign_in_is_the_oauth_setup_not_an_smtp_password(
        runner: CliRunner, config_path: Path, text: str, entry: str) -> None:
    match = explained(runner, config_path, m365(), text, entry)
    assert match["command"] == f"xoromail --config {config_path} --profile m365 {M365_SETUP}"
    assert "--service smtp" not in match["command"]
    if entry in ("smtp-5.7.57", "smtp-auth-required"):
        assert "Microsoft 365 OAuth, never with a password" in match["fix"]
        assert "set the username and password" not in match["fix"]


@pytest.mark.parametrize("text", [
    "535 5.7.139 Authentication unsuccessful, the user credentials were incorrect.",
    "535 5.7.139 Authentication unsuccessful",
    "535 5.7.3 Authentication unsuccessful [smtp.office365.com]",
])
def test_on_a_microsoft_365_profile_a_refused_smtp_sign_in_is_the_oauth_fix(
        runner: CliRunner, config_path: Path, text: str) -> None:
    match = explained(runner, config_path, m365(send_via="smtp"), text)
    assert match["command"] == f"xoromail --config {config_path} --profile m365 {M365_SETUP} --send-via graph"
    assert "OAuth, never a password" in match["fix"] and "SMTP.Send" in match["fix"]
    assert "re-check the username and password" not in match["fix"]


def test_on_a_google_profile_a_missing_sign_in_is_googles_own_setup(runner: CliRunner, config_path: Path) -> None:
    match = explained(runner, config_path, gmail(), "530 5.7.57 Client not authenticated to send mail")
    assert match["command"] == f"xoromail --config {config_path} --profile gmail setup --service google"
    assert "Google (OAuth or a service account)" in match["fix"]


def test_on_an_smtp_profile_or_none_the_smtp_commands_stay() -> None:
    [found] = explain("535 5.7.57 Client not authenticated to send mail")
    assert found.command == "xoromail setup --service smtp --username ADDRESS"
    assert found.fix == "the server requires sign-in before sending: set the username and password"
    [tls] = explain("530 5.7.0 Must issue a STARTTLS command first")
    assert tls.command == "xoromail setup --security starttls"


def test_on_a_microsoft_365_profile_a_tls_setting_of_another_client_is_checked_not_set(
        runner: CliRunner, config_path: Path) -> None:
    match = explained(runner, config_path, m365(), "530 5.7.0 Must issue a STARTTLS command first")
    assert match["command"] == f"xoromail --config {config_path} --profile m365 validate --no-send"


@pytest.mark.parametrize("profile", [m365(), m365(send_via="smtp"), gmail()], ids=["graph", "smtp", "google"])
def test_no_entry_suggests_an_smtp_option_to_a_profile_of_another_service(profile: Profile) -> None:
    """Every command the catalogue can suggest, as a Microsoft 365 or Google profile would be shown it."""
    context = Context.from_profile(profile)
    for entry in catalogue():
        if entry.command is None:
            continue
        command = context.fill(entry.command(context) if callable(entry.command) else entry.command)
        assert not SMTP_ONLY.search(command), (entry.id, command)


def test_the_commands_a_fix_quotes_carry_the_runs_config_and_profile(runner: CliRunner, config_path: Path) -> None:
    match = explained(runner, config_path, m365(), "AADSTS70008: The provided authorization code or refresh token "
                                                   "has expired due to inactivity.")
    assert f"run `xoromail --config {config_path} --profile m365 setup --service microsoft365` again" in match["fix"]
    plain = explain("AADSTS70008: The refresh token has expired due to inactivity.")[0]
    assert "run `xoromail setup --service microsoft365` again" in plain.fix
    text = runner.invoke(app, ["--config", str(config_path), "--profile", "m365", "explain",
                               "554 5.7.1 <ap@customer.test>: Relay access denied"])
    assert f"run:     xoromail --config {config_path} --profile m365 {M365_SETUP}" in text.stdout


def parse_error(command_line: str) -> str | None:
    """What xoromail's own command line parser says about `command_line`, typed as shown (None: it parses).
    Placeholders the user replaces are let through: a file not there yet (KEY.json) and the rest of a command
    elided with `…`; an unknown option, a missing option value, an extra argument or a command that does not exist
    is not. (Setup's values such as `--service` or `--sign-in` are strings checked by the service, not the parser.)"""
    words = shlex.split(command_line)
    assert words[0] == "xoromail", command_line
    root = typer.main.get_command(app)
    context = root.make_context("xoromail", [], resilient_parsing=True)
    command, name, args = root, "xoromail", [word for word in words[1:] if word != "…"]
    while hasattr(command, "get_command") and args and not args[0].startswith("-"):
        sub = command.get_command(context, args[0])
        if sub is None:
            return f"no command {args[0]!r}"
        command, name, args = sub, args[0], args[1:]
    try:
        command.make_context(name, args, parent=context)
    except MissingParameter as error:
        return None if "…" in words else error.format_message()
    except BadParameter as error:
        return None if "does not exist" in error.format_message() else error.format_message()
    except ClickException as error:
        return error.format_message()
    return None


@pytest.mark.parametrize("profile", [None, m365(), m365(send_via="smtp"), m365(mode="app"), gmail()],
                         ids=["none", "graph", "smtp", "app-only", "google"])
def test_every_command_explain_shows_parses_as_typed(profile: Profile | None) -> None:
    """The `run:` command and every `xoromail …` command a fix quotes, for each entry, name commands and options
    that exist, with their values: an option renamed in the CLI fails here, not in front of a user who typed the
    hint."""
    context = Context.from_profile(profile)
    for entry in catalogue():
        fix = context.fill(entry.fix(context) if callable(entry.fix) else entry.fix)
        run = entry.command(context) if callable(entry.command) else entry.command
        for command in [*([context.fill(run)] if run else []), *re.findall(r"`(xoromail [^`]*)`", fix)]:
            assert parse_error(command) is None, (entry.id, command, parse_error(command))


def test_the_parse_check_catches_a_wrong_option_value_and_command() -> None:
    assert parse_error("xoromail setup --service microsoft365 --sign-in browser --redirect-port 8765") is None
    assert "--no-such-option" in (parse_error("xoromail setup --no-such-option") or "")
    assert parse_error("xoromail setup --service microsoft365 --redirect-port") is not None  # its value missing
    assert parse_error("xoromail relay --tls-cert CERT.pem --tls-key KEY.pem") is None  # files named, not there yet
    assert parse_error("xoromail sned --to x") == "no command 'sned'"
    assert parse_error("xoromail validate --no-send extra") is not None
