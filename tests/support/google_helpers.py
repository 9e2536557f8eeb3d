"""Shared parts of the Google tests: the fake Google and a browser played by a thread."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.common import TLSFiles
from tests.support.fakes.google_server import GoogleServer
from xoromail_cli.services.google.settings import GoogleSettings, read_client_secrets


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
