"""The setup wizard's Google questions in a real pseudo-terminal: it asks how to sign in (a person in a browser,
or a Workspace service account with domain-wide delegation) and, for the service account, the key file, checked
where its path is typed; the local Google fake's token endpoint checks the JWT assertion the key signs."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.support.common import USER, TLSFiles
from tests.support.fakes.google_server import GoogleServer
from tests.support.google_helpers import google, key_file
from tests.support.terminal import Terminal
from xoromail_cli import config, credentials, services
from xoromail_cli.services.google.oauth import SERVICE_ACCOUNT_KEY

__all__ = ["google"]  # the fixture, used by name

HOW = "How should xoromail sign in to Google?"


def _env(config_path: Path) -> dict[str, str]:
    return {**os.environ, "XOROMAIL_CONFIG": str(config_path)}


def _choice(term: Terminal, label: str) -> str:
    found = re.findall(rf"(\d+)\. {re.escape(label)}", term.text)
    assert found, f"no menu entry {label!r} in {term.text[-800:]!r}"
    return str(found[-1])


def test_the_wizard_asks_how_to_sign_in_and_a_service_account_needs_only_its_key(
        google: GoogleServer, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    path, key = key_file(google, tmp_path)
    oauth_client = google.client_secrets(tmp_path / "client_secret.json")
    term = Terminal(["setup", "--email", USER, "--display-name", "Company Billing", "--api-url", google.url,
                     "--ca-file", str(tls.ca_file)], _env(config_path))
    term.expect(HOW)
    term.answer("[1/2]", _choice(term, "a Google Workspace service account with domain-wide delegation"))
    term.expect("admin.google.com")
    term.answer("Path of the service account's key JSON", str(oauth_client))
    term.expect('its "type" is not')  # refused where it is typed, asked again
    term.answer("Path of the service account's key JSON", str(path))
    assert term.wait() == 0, term.text
    assert "Path of the OAuth client's JSON" not in term.text and "Open a browser" not in term.text
    claims = google.state.workspace.assertions[-1]
    assert claims["sub"] == USER and claims["iss"] == key["client_email"]
    profile = config.load_profile(config_path, "default")
    assert profile.settings.service_account == key["client_email"]
    assert "BEGIN PRIVATE KEY" in (credentials.Secrets(profile).get(SERVICE_ACCOUNT_KEY) or "")
    assert "refresh_token" not in google.state.grants


def test_choosing_google_in_the_menu_asks_how_and_a_browser_sign_in_asks_for_the_oauth_client(
        config_path: Path) -> None:
    term = Terminal(["setup", "--no-validate", "--email", USER, "--display-name", "B"], _env(config_path))
    term.expect("Service type")
    term.answer("(1)", _choice(term, services.get("google").label))
    term.expect(HOW)
    assert "7 days" in term.text and "7-day" in term.text
    term.answer("[1/2]", "")  # the default: a person's account in the browser
    term.expect("Path of the OAuth client's JSON")
    assert "Path of the service account's key JSON" not in term.text
    os.write(term.fd, b"\x04")  # Ctrl-D: setup stops, nothing saved
    assert term.wait() == 2, term.text  # a usage error: setup stopped at a question
    assert not config_path.exists()


def test_the_google_menu_line_names_the_workspace_service_account_on_one_line() -> None:
    entry = services.REGISTRY["google"]
    line = f"{entry.label} — {entry.summary}"  # as the wizard's service menu shows it
    assert "Workspace service account" in line and "Connect, then Allow" in line and "no password" in line
    assert "\n" not in line and len(line) <= 140, line
