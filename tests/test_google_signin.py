"""Connect and Allow against a fake Google: the real InstalledAppFlow, a thread playing the browser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.common import TLSFiles
from tests.support.fakes.google_server import CLIENT_SECRET, GoogleServer
from tests.support.google_helpers import Browser, google, settings_for
from tests.support.keyring_store import KeyringStore
from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services.google import oauth
from xoromail_cli.services.google.settings import GoogleSettings

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


def test_sign_in_times_out_cleanly_with_exit_75_and_stores_nothing(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings, secret = settings_for(google, tmp_path, sign_in_timeout=0.5)
    browser = Browser(tls.ca_file, visit=False)
    store = KeyringStore("google-test")
    with pytest.raises(StageFailedError) as failure:
        oauth.sign_in(settings, secret, notify=browser.notify, open_browser=False, ca_file=str(tls.ca_file))
    assert failure.value.exit_code == ExitCode.TEMPFAIL and failure.value.stage == "sign-in"
    assert "0.5 s" in failure.value.message and "nothing was saved" in failure.value.message
    assert all(store.get(kind) is None for kind in oauth.SECRET_KINDS)
    assert google.state.grants == []


def test_sign_in_cancelled_in_the_browser_is_an_auth_failure(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    google.state.deny = True
    settings, secret = settings_for(google, tmp_path)
    browser = Browser(tls.ca_file)
    with pytest.raises(StageFailedError) as failure:
        oauth.sign_in(settings, secret, notify=browser.notify, open_browser=False, ca_file=str(tls.ca_file))
    browser.join()
    assert failure.value.exit_code == ExitCode.NOPERM and "access_denied" in failure.value.message


def test_sign_in_without_the_send_permission_ticked_is_refused(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    google.state.granted = "openid https://www.googleapis.com/auth/userinfo.email"
    settings, secret = settings_for(google, tmp_path)
    browser = Browser(tls.ca_file)
    with pytest.raises(StageFailedError) as failure:
        oauth.sign_in(settings, secret, notify=browser.notify, open_browser=False, ca_file=str(tls.ca_file))
    browser.join()
    assert failure.value.exit_code == ExitCode.NOPERM
    assert "Send email on your behalf" in (failure.value.hint or "")


def test_sign_in_with_a_wrong_client_secret_names_the_client_not_the_secret(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings, _ = settings_for(google, tmp_path)
    browser = Browser(tls.ca_file)
    with pytest.raises(StageFailedError) as failure:
        oauth.sign_in(settings, "GOCSPX-wrong", notify=browser.notify, open_browser=False, ca_file=str(tls.ca_file))
    browser.join()
    assert failure.value.exit_code == ExitCode.CONFIG and "invalid_client" in failure.value.message
    assert "GOCSPX" not in f"{failure.value.message} {failure.value.hint}"


def test_sign_in_on_a_taken_redirect_port_says_to_choose_another(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings, secret = settings_for(google, tmp_path, redirect_port=taken.getsockname()[1])
        with pytest.raises(StageFailedError) as failure:
            oauth.sign_in(settings, secret, notify=Browser(tls.ca_file, visit=False).notify, open_browser=False,
                          ca_file=str(tls.ca_file))
    assert failure.value.exit_code == ExitCode.UNAVAILABLE and "--redirect-port" in (failure.value.hint or "")


def test_a_testing_consent_screen_sign_in_says_when_it_expires(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    google.state.refresh_token_expires_in = 604799
    settings, secret = settings_for(google, tmp_path)
    browser = Browser(tls.ca_file)
    result = oauth.sign_in(settings, secret, notify=browser.notify, open_browser=False, ca_file=str(tls.ca_file))
    browser.join()
    assert result.refresh_expires is not None
    remembered = oauth.remember(settings, result)
    note = oauth.expiry_note(remembered.sign_in_expires)
    assert note is not None and f"{result.refresh_expires:%Y-%m-%d}" in note
    assert "Testing" in note and "publish" in note.lower()
    assert GoogleSettings.from_table(remembered.to_table()) == remembered


def test_a_sign_in_as_another_account_names_both_addresses(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    google.state.account = "someone.else@gmail.com"
    settings, secret = settings_for(google, tmp_path)
    browser = Browser(tls.ca_file)
    result = oauth.sign_in(settings, secret, notify=browser.notify, open_browser=False, ca_file=str(tls.ca_file))
    browser.join()
    warning = oauth.account_mismatch(result.account, "billing@company.test")
    assert warning is not None and "someone.else@gmail.com" in warning and "billing@company.test" in warning
    assert oauth.account_mismatch("Billing@Company.test", "billing@company.test") is None


def test_stored_sign_in_keeps_every_secret_in_the_keyring_only(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    settings, secret = settings_for(google, tmp_path)
    browser = Browser(tls.ca_file)
    result = oauth.sign_in(settings, secret, notify=browser.notify, open_browser=False, ca_file=str(tls.ca_file))
    browser.join()
    store = KeyringStore("google-test")
    oauth.store(result, secret, store)
    table = oauth.remember(settings, result).to_table()
    assert store.get("client_secret") == CLIENT_SECRET and store.get("refresh_token") == result.refresh_token
    assert oauth.AccessToken.from_secret(store.get("access_token")) == result.access
    flat = repr(table)
    assert CLIENT_SECRET not in flat and result.refresh_token not in flat and result.access.token not in flat



SIGN_IN_SCRIPT = """
import sys
from xoromail_cli.services.google import oauth
from xoromail_cli.services.google.settings import GoogleSettings
settings = GoogleSettings(client_id=sys.argv[1], auth_uri=sys.argv[2] + "/o/oauth2/auth",
                          token_uri=sys.argv[2] + "/token", redirect_port=0, sign_in_timeout=15)
shown = []
result = oauth.sign_in(settings, sys.argv[3], notify=shown.append, open_browser=True, ca_file=sys.argv[4])
assert shown[0].startswith("A browser window opens"), shown
print(result.account)
"""


def test_sign_in_opens_the_users_browser_when_there_is_one(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    """The default path: Python's webbrowser starts $BROWSER, which follows the consent redirect back."""
    import os
    import subprocess
    import sys

    from tests.support.fakes.google_server import CLIENT_ID

    launcher = tmp_path / "browser"
    script = Path(__file__).parent / "support" / "fakes" / "play_browser.py"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} {script} \"$1\"\n", encoding="utf-8")
    launcher.chmod(0o755)
    env = {**os.environ, "BROWSER": str(launcher), "XOROMAIL_TEST_CA": str(tls.ca_file)}
    done = subprocess.run([sys.executable, "-c", SIGN_IN_SCRIPT, CLIENT_ID, google.url, CLIENT_SECRET,
                           str(tls.ca_file)], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "billing@company.test"
    assert google.state.grants == ["authorization_code"]


def test_without_a_display_or_browser_the_sign_in_falls_back_to_showing_the_url() -> None:
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items()
           if key not in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "TERM")}
    env["PATH"] = "/nonexistent"
    code = "from xoromail_cli.services.google import oauth; assert oauth._browser_available() is False"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
