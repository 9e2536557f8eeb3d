"""A refused interactive sign-in in the wizard (Microsoft 365, delegated) is shown as a failed check is: the
stage table, then the retry menu whose default is the answer the hint names; the corrected answer signs in."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from tests.support.common import USER, TLSFiles
from tests.support.fakes.microsoft_server import CLIENT_ID, TENANT, MicrosoftServer
from tests.support.terminal import Terminal


def test_a_wrong_client_id_shows_the_table_and_the_menu_then_the_right_one_signs_in(
        tls: TLSFiles, config_path: Path) -> None:
    with MicrosoftServer(tls.server_context) as server:
        term = Terminal(["setup", "--service", "microsoft365", "--tenant", TENANT, "--client-id",
                         "00000000-0000-0000-0000-000000000000", "--sign-in", "device-code", "--send-via", "graph",
                         "--authority-host", server.authority_host, "--graph-url", server.graph_url,
                         "--email", USER, "--display-name", "Company Billing", "--ca-file", str(tls.ca_file)],
                        {**os.environ, "XOROMAIL_CONFIG": str(config_path)})
        term.answer("Sign in as the mailbox (delegated) or as the app", "delegated")
        term.expect("Failed at stage 'sign-in'")
        term.expect("the client (application) ID")
        term.answer("Change which answer and try again?", "")  # the default: what the hint names
        term.answer("Application (client) ID", CLIENT_ID)
        deadline = time.monotonic() + 30
        while not (code := re.search(r"enter the code (\w+)", term.text)):
            assert time.monotonic() < deadline, term.text
            term._read()
        server.approve(code.group(1))
        assert term.wait(60) == 0, term.text
    screen = " ".join(term.text.split())
    assert "FAILED" in screen and "not reached" in screen and "All checks passed" in screen
    assert f'client_id = "{CLIENT_ID}"' in config_path.read_text()


def test_a_cancelled_google_sign_in_is_signed_in_again_by_the_menus_default(
        tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    """The user clicked Cancel at Google: the menu's default signs in again with the same answers (it used to be
    'the loopback port', asked again as if it were at fault)."""
    from tests.support.fakes.google_server import GoogleServer
    from tests.support.google_helpers import Browser
    from xoromail_cli.local.sink import free_port

    google = GoogleServer(tls.server_context).start()
    try:
        google.state.deny = True
        secrets_file = google.client_secrets(tmp_path / "client_secret.json")
        term = Terminal(["setup", "--service", "google", "--client-secrets", str(secrets_file), "--api-url",
                         google.url, "--no-browser", "--redirect-port", str(free_port()), "--email", USER,
                         "--display-name", "Company Billing", "--ca-file", str(tls.ca_file)],
                        {**os.environ, "XOROMAIL_CONFIG": str(config_path)})
        term.expect("click Allow:")
        term.expect("Waiting up to")
        cancelled = Browser(tls.ca_file)
        cancelled.notify(term.text)
        cancelled.join()
        term.expect("none: sign in again with the same answers")
        google.state.deny = False
        before = len(term.text)
        term.answer("Change which answer and try again?", "")  # the default: sign in again
        term.expect("Waiting up to")
        assert "Loopback port" not in term.text[before:]
        allowed = Browser(tls.ca_file)
        allowed.notify(term.text[before:])
        allowed.join()
        assert term.wait(60) == 0, term.text
    finally:
        google.stop()
    assert "All checks passed" in term.text and 'service = "google"' in config_path.read_text()
