"""The Google profile's own table: the OAuth client's public parts and where the Gmail API is.

The client secret of the downloaded client-secrets JSON goes to the secret store, never into this table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from xoromail_cli.errors import ConfigError, DataError, NoInputError

DEFAULT_API_URL = "https://gmail.googleapis.com"
DEFAULT_REDIRECT_PORT = 8765
"""A fixed loopback port, so that `ssh -L 8765:localhost:8765 server` can be typed before signing in."""
DEFAULT_SIGN_IN_TIMEOUT = 300.0
CONSOLE_CREDENTIALS = "https://console.cloud.google.com/apis/credentials"


@dataclass(frozen=True)
class ClientSecrets:
    """What the Google Cloud console's JSON holds for a "Desktop app" client."""

    client_id: str
    client_secret: str
    auth_uri: str
    token_uri: str


@dataclass(frozen=True, kw_only=True)
class GoogleSettings:
    """`[profiles.NAME.google]`: no secrets, only what is needed to find the endpoints again."""

    client_id: str
    auth_uri: str = "https://accounts.google.com/o/oauth2/auth"
    token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105  # an endpoint URL, not a secret
    api_url: str = DEFAULT_API_URL
    redirect_port: int = DEFAULT_REDIRECT_PORT
    sign_in_timeout: float = DEFAULT_SIGN_IN_TIMEOUT
    client_secrets_file: str | None = None
    """Where the JSON was read from (shown, never re-read when sending)."""
    account: str | None = None
    """The Google account that signed in (from the ID token's `email`)."""
    sign_in_expires: str | None = None
    """ISO time the refresh token dies (consent screen in Testing: 7 days), when Google said so."""
    service_account: str | None = None
    """The service account's email when it signs in as the mailbox (domain-wide delegation); then `client_id` is
    the service account's numeric client ID and the key JSON lives in the secret store."""
    service_account_file: str | None = None
    """Where the key JSON was read from at setup (shown only; the file may be deleted since)."""

    @property
    def revoke_uri(self) -> str:
        """Google's revoke endpoint sits at /revoke on the token endpoint's host."""
        parts = urlsplit(self.token_uri)
        return f"{parts.scheme}://{parts.netloc}/revoke"

    @property
    def send_url(self) -> str:
        return f"{self.api_url.rstrip('/')}/gmail/v1/users/me/messages/send"

    def check(self) -> None:
        """The checks a hand-edited table gets, for settings built in code."""
        type(self).from_table(self.to_table())

    def to_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {
            "client_id": self.client_id, "auth_uri": self.auth_uri, "token_uri": self.token_uri,
            "api_url": self.api_url, "redirect_port": self.redirect_port,
            "sign_in_timeout": self.sign_in_timeout, "client_secrets_file": self.client_secrets_file,
            "account": self.account, "sign_in_expires": self.sign_in_expires,
            "service_account": self.service_account, "service_account_file": self.service_account_file,
        }
        return {key: value for key, value in table.items() if value not in (None, "")}

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> GoogleSettings:
        """Read the table back; raise DataError(field=KEY) on a bad value."""
        client_id = table.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise DataError("the Google profile has no client_id", "run `xoromail setup --service google "
                            "--client-secrets FILE` again", field="client_id")
        values: dict[str, Any] = {"client_id": client_id}
        for key in ("auth_uri", "token_uri", "api_url"):
            if key in table:
                values[key] = check_https_url(table[key], key)
        for key in ("client_secrets_file", "account", "sign_in_expires", "service_account", "service_account_file"):
            if isinstance(table.get(key), str):
                values[key] = table[key]
        if "redirect_port" in table:
            values["redirect_port"] = check_port(table["redirect_port"])
        if "sign_in_timeout" in table:
            values["sign_in_timeout"] = check_timeout(table["sign_in_timeout"])
        return cls(**values)


def check_https_url(value: object, field: str) -> str:
    """Tokens travel only over HTTPS; anything else is a typo or a trap."""
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme != "https" or not parts.netloc:
        raise DataError(f"{field} must be an https:// URL, not {text!r}",
                        "give the full https:// address (e.g. https://gmail.googleapis.com)", field=field)
    return text.rstrip("/")


def check_port(value: object) -> int:
    try:
        port = int(str(value))
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise DataError(f"redirect port {value!r} is not a port number",
                        "give a free local port such as 8765 (it is where the browser returns after Allow)",
                        field="redirect_port")
    return port


def check_timeout(value: object) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise DataError(f"sign-in timeout {value!r} is not a positive number of seconds",
                        "give the seconds to wait for the browser, e.g. 300", field="sign_in_timeout")
    return seconds


def read_client_secrets(path: str | Path) -> ClientSecrets:
    """Read the console's JSON ("installed" for a Desktop app client); say plainly what is wrong with it."""
    file = Path(path).expanduser()
    hint = ("download the JSON of an OAuth client of type \"Desktop app\" from " + CONSOLE_CREDENTIALS
            + " (see docs/setup-google.md)")
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NoInputError(f"cannot read client-secrets file {file}: {exc.strerror}", hint) from None
    except ValueError:
        raise DataError(f"client-secrets file {file} is not JSON", hint, field="client_secrets") from None
    if not isinstance(document, dict):
        raise DataError(f"client-secrets file {file} is not a client-secrets JSON", hint, field="client_secrets")
    if "web" in document:
        raise ConfigError(f"{file} is for a \"Web application\" client, which cannot use the loopback sign-in",
                          "create an OAuth client of type \"Desktop app\" instead and download its JSON")
    entry = document.get("installed")
    keys = ("client_id", "client_secret", "auth_uri", "token_uri")
    if not isinstance(entry, dict) or not all(isinstance(entry.get(key), str) and entry[key] for key in keys):
        raise DataError(f"client-secrets file {file} lacks an \"installed\" client with {', '.join(keys)}",
                        hint, field="client_secrets")
    return ClientSecrets(entry["client_id"], entry["client_secret"], check_https_url(entry["auth_uri"], "auth_uri"),
                         check_https_url(entry["token_uri"], "token_uri"))
