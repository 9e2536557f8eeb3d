"""The page Google's sign-in returns to tells the truth, and the loopback port can be used again at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.common import TLSFiles
from tests.support.fakes.google_server import GoogleServer
from tests.support.google_helpers import Browser, google, settings_for  # noqa: F401  # `google` is a fixture
from xoromail_cli.errors import StageFailedError
from xoromail_cli.local.sink import free_port
from xoromail_cli.services.google import oauth
from xoromail_cli.services.google.loopback import page_for


def test_the_page_says_cancelled_when_the_user_cancelled(google: GoogleServer, tls: TLSFiles,  # noqa: F811  # the imported fixture, used by name
                                                         tmp_path: Path) -> None:
    google.state.deny = True
    settings, secret = settings_for(google, tmp_path)
    browser = Browser(tls.ca_file)
    with pytest.raises(StageFailedError):
        oauth.sign_in(settings, secret, notify=browser.notify, open_browser=False, ca_file=str(tls.ca_file))
    browser.join()
    assert browser.landed is not None and browser.landed.startswith("Sign-in cancelled: nothing was saved")


def test_the_page_says_signed_in_only_when_signed_in() -> None:
    assert page_for("http://localhost:8765/?state=s&code=4/x&scope=a").startswith("Signed in")
    assert page_for("http://localhost:8765/?error=access_denied&state=s").startswith("Sign-in cancelled")
    refused = page_for("http://localhost:8765/?error=<b>bad</b>&state=s")
    assert refused.startswith("Google did not sign you in (bbadb)") and "<" not in refused


def test_signing_in_again_right_after_a_failed_sign_in_reuses_the_port(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:  # noqa: F811  # the imported fixture, used by name
    port = free_port()
    google.state.deny = True
    settings, secret = settings_for(google, tmp_path, redirect_port=port)
    first = Browser(tls.ca_file)
    with pytest.raises(StageFailedError):
        oauth.sign_in(settings, secret, notify=first.notify, open_browser=False, ca_file=str(tls.ca_file))
    first.join()
    google.state.deny = False
    again = Browser(tls.ca_file)
    result = oauth.sign_in(settings, secret, notify=again.notify, open_browser=False, ca_file=str(tls.ca_file))
    again.join()
    assert result.refresh_token and f"localhost:{port}" in again.messages[0]
