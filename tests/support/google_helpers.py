"""Shared parts of the Google tests: the fake Google, a browser played by a thread, a signed-in Gmail transport
and its messages, and a service account's key file."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from tests.support.common import TLSFiles
from tests.support.fakes.google_server import GoogleServer
from tests.support.fakes.google_workspace import key_json
from tests.support.keyring_store import KeyringStore
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.services.google import oauth
from xoromail_cli.services.google.settings import GoogleSettings, read_client_secrets
from xoromail_cli.services.google.transport import GmailTransport

SENDER = "billing@company.test"


class Browser:
    """Plays the user's browser: takes the URL the tool shows, follows Google's redirect to the loopback server."""

    def __init__(self, ca_file: Path, *, visit: bool = True) -> None:
        self.ca_file = ca_file
        self.visit = visit
        self.messages: list[str] = []
        self.landed: str | None = None
        self.error: BaseException | None = None
        self._threads: list[threading.Thread] = []

    def notify(self, message: str) -> None:
        self.messages.append(message)
        if self.visit:
            url = re.search(r"https://\S+", message)
            assert url is not None
            thread = threading.Thread(target=self._open, args=(url.group(0),), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _open(self, url: str) -> None:
        try:
            consent = requests.get(url, verify=str(self.ca_file), allow_redirects=False, timeout=10)
            location = consent.headers["Location"]
            assert location.startswith("http://localhost:"), location
            landing = requests.get(location, timeout=10)
            self.landed = landing.text
        except BaseException as exc:  # noqa: BLE001  # reported to the test by join()
            self.error = exc

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=10)
        if self.error is not None:
            raise self.error


@pytest.fixture
def google(tls: TLSFiles) -> Iterator[GoogleServer]:
    server = GoogleServer(tls.server_context).start()
    yield server
    server.stop()


def settings_for(server: GoogleServer, tmp_path: Path, **overrides: object) -> tuple[GoogleSettings, str]:
    """Settings read from a client-secrets JSON pointing at the fake server, and the client secret."""
    client = read_client_secrets(server.client_secrets(tmp_path / "client_secret.json"))
    values: dict[str, object] = {"client_id": client.client_id, "auth_uri": client.auth_uri,
                                 "token_uri": client.token_uri, "api_url": server.url, "redirect_port": 0,
                                 "sign_in_timeout": 10.0}
    values.update(overrides)
    return GoogleSettings(**values), client.client_secret  # type: ignore[arg-type]  # test overrides by name


def signed_in(server: GoogleServer, tls: TLSFiles, tmp_path: Path, **overrides: object) -> GoogleSettings:
    """Connect and Allow for real (flow, browser thread), then store the secrets as setup does."""
    settings, secret = settings_for(server, tmp_path, **overrides)
    browser = Browser(tls.ca_file)
    result = oauth.sign_in(settings, secret, notify=browser.notify, open_browser=False, ca_file=str(tls.ca_file))
    browser.join()
    oauth.store(result, secret, KeyringStore("google-test"))
    return oauth.remember(settings, result)


def envelope(number: int = 1, *, bcc: tuple[str, ...] = ()) -> Envelope:
    message = EmailMessage()
    message["From"] = f"Company Billing <{SENDER}>"
    message["To"] = "customer@example.test"
    message["Subject"] = f"Invoice {number}"
    message["Message-ID"] = f"<invoice-{number}@company.test>"
    message.set_content("Please find the invoice attached.\n")
    message.add_attachment(b"%PDF-1.7 fake\x00\xff", maintype="application", subtype="pdf",
                           filename=f"invoice-{number}.pdf")
    data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
    return Envelope(sender=SENDER, to=("customer@example.test",), data=data,
                    message_id=f"<invoice-{number}@company.test>", bcc=bcc)


def transport(settings: GoogleSettings, tls: TLSFiles, **options: object) -> GmailTransport:
    return GmailTransport(settings, SENDER, KeyringStore("google-test"), ca_file=str(tls.ca_file), timeout=5.0,
                          **options)  # type: ignore[arg-type]  # test passes keyword options through


def expire_stored_token() -> None:
    store = KeyringStore("google-test")
    access = oauth.AccessToken.from_secret(store.get(oauth.ACCESS_TOKEN))
    assert access is not None
    store.set(oauth.ACCESS_TOKEN, oauth.AccessToken(access.token, datetime.now(UTC) - timedelta(1)).to_secret())


def key_file(server: GoogleServer, tmp_path: Path, **options: object) -> tuple[Path, dict[str, str]]:
    key = server.state.workspace.new_key(f"{server.url}/token", **options)  # type: ignore[arg-type]  # name/delegate
    path = tmp_path / "xoromail-sender.json"
    path.write_text(key_json(key), encoding="utf-8")
    path.chmod(0o600)
    return path, key
