"""The Google service as the setup and validate code will use it: flags, wizard, stages, notes, fast start."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import trustme

from tests.support.common import TLSFiles
from tests.support.fakes.google_server import CLIENT_ID, CLIENT_SECRET, GoogleServer
from tests.support.google_helpers import Browser, google
from tests.support.keyring_store import KeyringStore
from tests.test_boundaries import service_libraries
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import ConfigError, DataError, ExitCode, NoInputError
from xoromail_cli.services.google import oauth
from xoromail_cli.services.google.service import SERVICE
from xoromail_cli.services.google.settings import GoogleSettings

__all__ = ["google"]
EMAIL = "billing@company.test"


@dataclass(frozen=True, kw_only=True)
class PromisedProfile:
    """The fields of the refactored `profile.Profile` that the adapter reads."""

    settings: GoogleSettings
    email: str = EMAIL
    ca_file: str | None = None
    timeout: float = 5.0
    name: str = "google-test"


def profile(settings: GoogleSettings, tls: TLSFiles) -> Any:
    return cast(Any, PromisedProfile(settings=settings, ca_file=str(tls.ca_file)))


def test_importing_the_service_loads_no_google_or_http_library() -> None:
    watched = sorted(service_libraries("google"))  # google, google_auth_oauthlib, requests, … from the table
    code = ("import sys, xoromail_cli.services.google.service as s; s.SERVICE.setup_options; "
            f"heavy = [m for m in sys.modules if m.split('.')[0] in {watched!r}]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_setup_flags_read_the_endpoints_from_the_json_and_keep_the_secret_out_of_the_table(
        google: GoogleServer, tmp_path: Path) -> None:
    path = google.client_secrets(tmp_path / "client_secret.json")
    assert SERVICE.missing({}, None, False) == ["--client-secrets (or --service-account)"]
    settings = SERVICE.build_settings({"client_secrets": str(path), "redirect_port": 9123, "sign_in_timeout": 60,
                                       "api_url": google.url + "/"}, None, EMAIL)
    assert (settings.client_id, settings.token_uri, settings.api_url) == (CLIENT_ID, f"{google.url}/token", google.url)
    assert settings.revoke_uri == f"{google.url}/revoke" and settings.redirect_port == 9123
    table = settings.to_table()
    assert CLIENT_SECRET not in json.dumps(table)
    assert SERVICE.settings_from_table(table) == settings
    assert {option.flag for option in SERVICE.setup_options} == {
        "--client-secrets", "--service-account", "--no-browser", "--redirect-port", "--sign-in-timeout", "--api-url"}


def test_google_defaults_are_googles_own_endpoints() -> None:
    settings = GoogleSettings(client_id=CLIENT_ID)
    assert settings.send_url == "https://gmail.googleapis.com/gmail/v1/users/me/messages/send"
    assert settings.revoke_uri == "https://oauth2.googleapis.com/revoke"
    assert settings.redirect_port == 8765 and settings.sign_in_timeout == 300


def test_a_bad_client_secrets_file_is_explained(tmp_path: Path) -> None:
    with pytest.raises(NoInputError):
        SERVICE.build_settings({"client_secrets": str(tmp_path / "missing.json")}, None, EMAIL)
    web = tmp_path / "web.json"
    web.write_text(json.dumps({"web": {"client_id": "x"}}), encoding="utf-8")
    with pytest.raises(ConfigError, match="Web application") as refused:
        SERVICE.build_settings({"client_secrets": str(web)}, None, EMAIL)
    assert "Desktop app" in (refused.value.hint or "")
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"installed": {"client_id": "x", "client_secret": "y", "auth_uri": "https://a.test",
                                               "token_uri": "http://evil.test/token"}}), encoding="utf-8")
    with pytest.raises(DataError, match="https"):
        SERVICE.build_settings({"client_secrets": str(plain)}, None, EMAIL)


def test_the_wizard_explains_the_client_then_asks_about_the_browser_and_the_port(
        google: GoogleServer, tmp_path: Path) -> None:
    path = str(google.client_secrets(tmp_path / "client_secret.json"))
    how = SERVICE.next_question({}, None, EMAIL)
    assert how is not None and how.key == "signs_in" and how.choices == ("browser", "service_account")
    assert how.default == "browser" and "7-day" in how.labels[1] and "domain-wide delegation" in how.labels[1]
    first = SERVICE.next_question({"signs_in": "browser"}, None, EMAIL)
    assert first is not None and first.key == "client_secrets" and first.check is not None
    assert "Gmail API" in (first.explain or "") and "7 days" in (first.explain or "")
    assert first.check(path) == path
    second = SERVICE.next_question({"signs_in": "browser", "client_secrets": path}, None, EMAIL)
    assert second is not None and second.key == "no_browser" and second.check is not None
    assert second.check("no") is True
    third = SERVICE.next_question({"client_secrets": path, "no_browser": True}, None, EMAIL)
    assert third is not None and third.key == "redirect_port" and "ssh -L 8765:localhost:8765" in (third.explain or "")
    assert SERVICE.next_question({"client_secrets": path, "no_browser": True, "redirect_port": 8765},
                                 None, EMAIL) is None


def test_connect_then_validate_stages_then_a_test_message_through_the_service(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    google.state.refresh_token_expires_in = 604799
    path = str(google.client_secrets(tmp_path / "client_secret.json"))
    settings = SERVICE.build_settings({"client_secrets": path, "api_url": google.url, "redirect_port": 0}, None,
                                      EMAIL)
    browser = Browser(tls.ca_file)
    store = KeyringStore("google-test")
    connected = SERVICE.connect(settings, EMAIL, store, notify=browser.notify, open_browser=False,
                                ca_file=str(tls.ca_file), timeout=5.0)
    browser.join()
    asked = google.state.authorize_requests[0]
    assert asked["login_hint"] == EMAIL and asked["prompt"] == "consent" and asked["access_type"] == "offline"
    assert asked["code_challenge_method"] == "S256" and "mail.google.com" not in asked["scope"]
    assert connected.settings.account == EMAIL and len(connected.warnings) == 1 and "7 days" in connected.warnings[0]
    assert store.get("client_secret") == CLIENT_SECRET
    ready = profile(connected.settings, tls)
    assert SERVICE.planned_stages(ready, send=True) == ["config", "token", "send"]
    SERVICE.check_offline(ready)
    stages: list[str] = []
    gmail = SERVICE.open_transport(ready, store, validating=True)
    gmail.open(lambda stage, detail: stages.append(stage))
    data = (b"From: billing@company.test\r\nTo: billing@company.test\r\nSubject: xoromail test\r\n"
            b"Message-ID: <t@company.test>\r\n\r\nTest.\r\n")
    assert gmail.send(Envelope(sender=EMAIL, to=(EMAIL,), data=data, message_id="<t@company.test>")).ok
    gmail.close()
    assert stages == ["token"] and google.state.sent == [data]
    assert any("Testing" in note for note in SERVICE.notes(ready))
    assert "Gmail API" in SERVICE.describe(ready) and SERVICE.limits(ready) is not None


def test_a_setup_that_fails_validation_can_take_its_sign_in_back(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path) -> None:
    path = str(google.client_secrets(tmp_path / "client_secret.json"))
    settings = SERVICE.build_settings({"client_secrets": path, "redirect_port": 0}, None, EMAIL)
    staged: dict[str, str] = {}

    class Staged:
        """What setup's staged Secrets look like from here: nothing reaches the keyring."""

        def get(self, kind: str) -> str | None:
            return staged.get(kind)

        def set(self, kind: str, value: str) -> None:
            staged[kind] = value

        def delete(self, kind: str) -> None:
            staged.pop(kind, None)

    browser = Browser(tls.ca_file)
    SERVICE.connect(settings, EMAIL, Staged(), notify=browser.notify, open_browser=False, ca_file=str(tls.ca_file))
    browser.join()
    assert set(staged) == set(oauth.SECRET_KINDS) - {oauth.SERVICE_ACCOUNT_KEY}  # a user sign-in, no key
    assert all(KeyringStore("google-test").get(kind) is None for kind in oauth.SECRET_KINDS)
    result = SERVICE.disconnect(profile(settings, tls), Staged())
    assert "revoked" in result and staged == {} and google.state.refresh_tokens == set()


def test_sign_in_trusts_the_ca_file_when_requests_ca_bundle_names_another(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other))
    path = str(google.client_secrets(tmp_path / "client_secret.json"))
    settings = SERVICE.build_settings({"client_secrets": path, "redirect_port": 0}, None, EMAIL)
    browser = Browser(tls.ca_file)
    connected = SERVICE.connect(settings, EMAIL, KeyringStore("google-test"), notify=browser.notify, open_browser=False,
                                ca_file=str(tls.ca_file))
    browser.join()
    assert connected.settings.account == EMAIL


def test_a_profile_never_signed_in_fails_the_token_stage_saying_to_run_setup(tls: TLSFiles) -> None:
    from xoromail_cli.errors import StageFailedError

    with pytest.raises(StageFailedError) as failure:
        SERVICE.open_transport(profile(GoogleSettings(client_id=CLIENT_ID), tls), KeyringStore("google-test")).open()
    assert failure.value.exit_code == ExitCode.CONFIG and "setup" in (failure.value.hint or "")


def test_the_adapter_keeps_the_service_and_transport_contracts(tls: TLSFiles) -> None:
    from xoromail_cli.services.base import Service, Transport

    service: Service = SERVICE  # mypy checks the whole protocol here
    gmail: Transport = SERVICE.open_transport(profile(GoogleSettings(client_id=CLIENT_ID), tls),
                                              KeyringStore("google-test"))
    assert service.name == "google" and service.label == "Email services"
    assert service.secret_kinds == ("refresh_token", "access_token", "client_secret", "service_account_key")
    assert gmail.subset_retries is False and gmail.accepted_as == "sent" and gmail.max_message_size
