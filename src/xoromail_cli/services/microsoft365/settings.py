"""The Microsoft 365 table of a profile: which tenant and app registration, how to sign in, how to send.

Kept free of msal and requests, so reading a profile stays fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from xoromail_cli.errors import DataError

Mode = Literal["delegated", "app"]
SignIn = Literal["device-code", "browser"]
SendVia = Literal["graph", "smtp"]


@dataclass(frozen=True)
class Cloud:
    """Where one Microsoft cloud signs in and sends (national clouds have their own hosts)."""

    authority_host: str
    graph_url: str
    smtp_host: str
    smtp_resource: str
    """The resource of the SMTP.Send scope (the Outlook host of that cloud)."""


CLOUDS: dict[str, Cloud] = {
    "global": Cloud("https://login.microsoftonline.com", "https://graph.microsoft.com/v1.0",
                    "smtp.office365.com", "https://outlook.office.com"),
    "usgov": Cloud("https://login.microsoftonline.us", "https://graph.microsoft.us/v1.0",
                   "smtp.office365.us", "https://outlook.office365.us"),
    "china": Cloud("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn/v1.0",
                   "smtp.partner.outlook.cn", "https://partner.outlook.cn"),
}
MODES = ("delegated", "app")
SIGN_INS = ("device-code", "browser")
SEND_VIAS = ("graph", "smtp")
DEFAULT_SIGN_IN_TIMEOUT = 300.0
SMTP_PORT = 587


@dataclass(frozen=True, kw_only=True)
class Microsoft365Settings:
    """`[profiles.NAME.microsoft365]`: no secret here (client secret and token cache live in the secret store)."""

    tenant: str
    client_id: str
    mode: Mode = "delegated"
    sign_in: SignIn = "device-code"
    send_via: SendVia = "graph"
    cloud: str = "global"
    authority_host: str | None = None
    """Overrides the cloud's sign-in host (a proxy, a test server)."""
    graph_url: str | None = None
    """Overrides the cloud's Graph base URL, e.g. https://graph.microsoft.com/v1.0."""
    certificate: str | None = None
    """PEM file with the private key and the certificate, for app-only sign-in without a secret."""
    redirect_port: int | None = None
    sign_in_timeout: float = DEFAULT_SIGN_IN_TIMEOUT
    smtp_host: str | None = None
    smtp_port: int = SMTP_PORT
    account: str | None = None
    """The account that signs in when it is not the mailbox (it sends as a shared mailbox with Send As)."""
    client_secret_expires: str | None = None
    """YYYY-MM-DD: when the app-only client secret ends (Entra shows it; `expiry` warns 30 days before)."""

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, MODES)
        check_choice("sign_in", self.sign_in, SIGN_INS)
        check_choice("send_via", self.send_via, SEND_VIAS)
        check_choice("cloud", self.cloud, tuple(CLOUDS))
        for key, value in (("tenant", self.tenant), ("client_id", self.client_id)):
            if not value or any(ch.isspace() or ch == "/" for ch in value):
                raise DataError(f"{key} {value!r} is not a tenant domain/ID or client ID", _ID_HINT, field=key)
        if "@" in self.client_id:
            raise DataError(f"client_id {self.client_id!r} is an email address",
                            "the client ID is the 'Application (client) ID' GUID on the app registration's "
                            "Overview page in the Entra admin center", field="client_id")
        if self.client_secret_expires is not None:
            check_date("client_secret_expires", self.client_secret_expires)
        for key, url in (("authority_host", self.authority_host), ("graph_url", self.graph_url)):
            if url is not None and not url.startswith("https://"):
                raise DataError(f"{key} {url!r} must be an https:// URL", "tokens only travel over TLS",
                                field=key)

    @property
    def authority(self) -> str:
        """`AUTHORITY_HOST/TENANT`, as msal wants it."""
        host = (self.authority_host or CLOUDS[self.cloud].authority_host).rstrip("/")
        return f"{host}/{self.tenant}"

    @property
    def graph_base(self) -> str:
        return (self.graph_url or CLOUDS[self.cloud].graph_url).rstrip("/")

    @property
    def graph_scopes(self) -> list[str]:
        """Delegated `Mail.Send` on Graph; app-only asks for the app's granted permissions (`.default`).

        The resource is the cloud's Graph, also when `graph_url` points at a proxy: tokens name the API."""
        resource = CLOUDS[self.cloud].graph_url.rsplit("/", 1)[0]
        if self.mode == "app":
            return [f"{resource}/.default"]
        return [f"{resource}/Mail.Send"]

    @property
    def smtp_scopes(self) -> list[str]:
        return [f"{CLOUDS[self.cloud].smtp_resource}/SMTP.Send"]

    @property
    def smtp_server(self) -> str:
        return self.smtp_host or CLOUDS[self.cloud].smtp_host

    def admin_consent_url(self) -> str:
        """Where a tenant admin grants consent for this app (printed for AADSTS65001)."""
        return f"{self.authority}/adminconsent?client_id={self.client_id}"

    def check(self) -> None:
        """The checks a hand-edited table gets, for settings built in code."""
        type(self).from_table(self.to_table())

    def to_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {"tenant": self.tenant, "client_id": self.client_id}
        for key, default in _DEFAULTS.items():
            value = getattr(self, key)
            if value is not None and value != default:
                table[key] = value
        return table

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> Microsoft365Settings:
        """Build from the profile's table; unknown keys and wrong types raise DataError naming the key."""
        unknown = sorted(set(table) - {"tenant", "client_id", *_DEFAULTS})
        if unknown:
            raise DataError(f"unknown setting {unknown[0]!r} in the microsoft365 table",
                            "remove it, or run setup again", field=unknown[0])
        for key in ("tenant", "client_id"):
            if not isinstance(table.get(key), str):
                raise DataError(f"{key} is missing in the microsoft365 table", _ID_HINT, field=key)
        values: dict[str, Any] = {}
        for key, value in table.items():
            values[key] = _typed(key, value)
        return cls(**values)


_ID_HINT = ("TENANT is the tenant's domain (contoso.onmicrosoft.com or a verified domain) or its Directory "
            "(tenant) ID; the client ID is the app registration's Application (client) ID")
_DEFAULTS: dict[str, Any] = {
    "mode": "delegated", "sign_in": "device-code", "send_via": "graph", "cloud": "global",
    "authority_host": None, "graph_url": None, "certificate": None, "redirect_port": None,
    "sign_in_timeout": DEFAULT_SIGN_IN_TIMEOUT, "smtp_host": None, "smtp_port": SMTP_PORT, "account": None,
    "client_secret_expires": None,
}
_INTS = {"redirect_port", "smtp_port"}
_FLOATS = {"sign_in_timeout"}


def _typed(key: str, value: Any) -> Any:
    if key in _INTS:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise DataError(f"{key} must be a port number (0-65535), not {value!r}", None, field=key)
        return value
    if key in _FLOATS:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise DataError(f"{key} must be a number of seconds, not {value!r}", None, field=key)
        return float(value)
    if not isinstance(value, str):
        raise DataError(f"{key} must be text, not {value!r}", None, field=key)
    return value


def check_date(key: str, value: str) -> None:
    from datetime import date

    try:
        date.fromisoformat(value)
        valid = len(value) == 10
    except ValueError:
        valid = False
    if not valid:
        raise DataError(f"{key} {value!r} is not a date (YYYY-MM-DD)",
                        "copy the secret's Expires date from the app registration's Certificates & secrets page",
                        field=key)


def check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise DataError(f"{key} {value!r} is not one of {', '.join(choices)}", None, field=key)
