"""Shared pieces of the Microsoft 365 tests: settings for the fake, a browser."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import requests

from tests.support.fakes.microsoft_server import CLIENT_ID, TENANT, MicrosoftServer
from xoromail_cli.services.microsoft365.settings import Microsoft365Settings


def settings_for(server: MicrosoftServer, **overrides: Any) -> Microsoft365Settings:
    values: dict[str, Any] = {"tenant": TENANT, "client_id": CLIENT_ID, "authority_host": server.authority_host,
                              "graph_url": server.graph_url, "sign_in_timeout": 20.0}
    values.update(overrides)
    return Microsoft365Settings(**values)


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
