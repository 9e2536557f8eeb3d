"""Shared pieces of the Microsoft 365 tests: the fake Graph as a fixture, settings and an app-only profile for it,
a browser."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.support.common import USER, TLSFiles
from tests.support.fakes.microsoft_server import CLIENT_ID, CLIENT_SECRET, TENANT, MicrosoftServer
from xoromail_cli import credentials
from xoromail_cli.profile import Profile
from xoromail_cli.services.microsoft365.auth import CLIENT_SECRET as SECRET_KIND
from xoromail_cli.services.microsoft365.settings import Microsoft365Settings


@pytest.fixture
def graph(tls: TLSFiles) -> Iterator[MicrosoftServer]:
    """A running Microsoft identity platform and Graph fake (import it into a test module to use it)."""
    with MicrosoftServer(tls.server_context) as fake:
        yield fake


def settings_for(server: MicrosoftServer, **overrides: Any) -> Microsoft365Settings:
    values: dict[str, Any] = {"tenant": TENANT, "client_id": CLIENT_ID, "authority_host": server.authority_host,
                              "graph_url": server.graph_url, "sign_in_timeout": 20.0}
    values.update(overrides)
    return Microsoft365Settings(**values)


def app_only_profile(server: MicrosoftServer, tls: TLSFiles, timeout: float = 10.0) -> Profile:
    """An app-only Microsoft 365 profile (client secret in the keyring) sending through the local Graph."""
    credentials.write_secret("default", SECRET_KIND, CLIENT_SECRET)
    return Profile(name="default", email=USER, settings=settings_for(server, mode="app"), service="microsoft365",
                   display_name="Company Billing", ca_file=str(tls.ca_file), timeout=timeout)


def approving(server: MicrosoftServer, user: str | None = None,
              seen: list[str] | None = None) -> Callable[[str], None]:
    """A notify callback that, like the person at microsoft.com/devicelogin, enters the code from a thread."""

    def notify(message: str) -> None:
        if seen is not None:
            seen.append(message)
        code = re.search(r"enter the code (\w+)", message)
        assert code, message
        threading.Timer(0.2, server.approve, args=(code.group(1), user)).start()

    return notify


def browsing(ca_file: str, seen: list[str]) -> Callable[[str], None]:
    """A notify callback that acts as the user's browser: opens the printed address, posts the form back."""

    def visit(url: str) -> None:
        page = requests.get(url, verify=ca_file, timeout=10).text
        action = re.search(r'action="([^"]+)"', page)
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page))
        assert action, page
        requests.post(action.group(1), data=fields, timeout=10)

    def notify(message: str) -> None:
        seen.append(message)
        url = re.search(r"(https://\S+)", message)
        assert url, message
        threading.Thread(target=visit, args=(url.group(1),), daemon=True).start()

    return notify
