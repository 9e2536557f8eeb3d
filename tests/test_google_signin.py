"""Connect and Allow against a fake Google: the real InstalledAppFlow, a thread playing the browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import TLSFiles
from tests.fakes.google_server import CLIENT_SECRET, GoogleServer
from tests.google_helpers import Browser, KeyringStore, google, settings_for
from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services.google import oauth

__all__ = ["google"]


def test_sign_in_runs_the_loopback_flow_and_learns_the_account_from_the_id_token(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings, secret = settings_for(google, tmp_path)
    browser = Browser(tls.ca_file)
    result = oauth.sign_in(settings, secret, notify=browser.notify, open_browser=False, ca_file=str(tls.ca_file))
    browser.join()
    assert result.account == "billing@company.test"
    assert result.refresh_token in google.state.refresh_tokens
    assert oauth.SEND_SCOPE in result.scopes and "https://mail.google.com/" not in result.scopes
    assert google.state.grants == ["authorization_code"]
    assert browser.landed is not None and "Signed in" in browser.landed
    assert "ssh -L" in browser.messages[0] and "localhost:" in browser.messages[0]
    assert result.refresh_token not in repr(result) and result.access.token not in repr(result)
