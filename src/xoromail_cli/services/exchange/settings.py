"""The Exchange (EWS) settings of a profile and their checks, free of exchangelib so setup stays fast.

The ERP's screen asks for the Exchange URI, a domain and a username; its known issue 4 is a domain typed
as a URL or with a stray `@` or backslash, so the domain check shows the right form instead of failing
later at sign-in with a vague 401.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from xoromail_cli.errors import DataError

AuthType = Literal["ntlm", "basic"]
AUTH_TYPES: tuple[AuthType, ...] = ("ntlm", "basic")
DEFAULT_URL = "https://outlook.office365.com/EWS/Exchange.asmx"
"""Exchange Online's EWS address: recognised (and advised against), never assumed: the URI has no default."""
URL_EXAMPLE = "https://mail.company.com/EWS/Exchange.asmx"
USUAL_PATH = "/EWS/Exchange.asmx"
EXCHANGE_ONLINE_HOSTS = ("outlook.office365.com", "outlook.office.com")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)
_DOMAIN_EXAMPLE = "company.com"


@dataclass(frozen=True)
class ExchangeSettings:
    """`[profiles.NAME.exchange]`: where EWS answers and how to sign in (the password is a secret)."""

    url: str = ""
    """The server's EWS address; no default, since Exchange Online is the one place EWS is going away."""
    domain: str = ""
    username: str = ""
    auth: AuthType = "ntlm"

    def to_table(self) -> dict[str, Any]:
        table: dict[str, Any] = {"url": self.url, "domain": self.domain, "username": self.username,
                                 "auth": self.auth}
        return {key: value for key, value in table.items() if value}

    def check(self) -> None:
        """The same checks setup makes, for a profile built in code or edited by hand."""
        if not self.url:
            raise DataError("the Exchange profile has no url (the EWS address)",
                            f'add url = "{URL_EXAMPLE}" (your Exchange server\'s EWS address)', field="url")
        check_url(self.url)
        if self.domain:
            check_domain(self.domain)
        if self.username:
            check_username(self.username)
        check_auth(self.auth)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 443


def check_domain(value: str) -> str:
    """A bare DNS name such as `company.com`; anything else is refused with the right form shown."""
    raw = value
    text = value.strip()
    problem: str | None = None
    suggestion = _suggest_domain(text)
    if not text:
        problem = "the domain is empty"
    elif "://" in text or "/" in text:
        problem = "the domain is a URL"
    elif "@" in text:
        problem = "the domain contains '@'"
    elif "\\" in text:
        problem = "the domain contains a backslash (that is the DOMAIN\\user form of a username)"
    elif any(character.isspace() for character in text):
        problem = "the domain contains a space"
    elif text.endswith("."):
        problem = "the domain ends with a dot"
    elif not all(_LABEL.match(label) for label in text.split(".")):
        problem = "the domain is not a DNS name"
    if problem is None:
        return text.lower()
    shown = f" (did you mean {suggestion!r}?)" if suggestion and suggestion != raw else ""
    raise DataError(f"{problem}: {raw!r}",
                    f"give the domain as a bare DNS name such as {_DOMAIN_EXAMPLE!r}{shown}, "
                    "without https://, '@', a backslash, spaces or a trailing dot", field="domain")


def _suggest_domain(text: str) -> str | None:
    """What the user most likely meant, to show in the hint."""
    candidate = text
    if "://" in candidate:
        candidate = urlsplit(candidate).hostname or ""
    candidate = candidate.split("/")[0].rsplit("@", 1)[-1].strip("\\").split("\\")[0]
    candidate = "".join(candidate.split()).rstrip(".").lower()
    if candidate and all(_LABEL.match(label) for label in candidate.split(".")):
        return candidate
    return None


def check_url(value: str) -> tuple[str, list[str]]:
    """The EWS endpoint (must be https with a host) and the warnings it earns, as data."""
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme.lower() != "https":
        raise DataError(f"the Exchange URI must start with https://: {value!r}",
                        f"use the full EWS address, e.g. https://mail.{_DOMAIN_EXAMPLE}{USUAL_PATH}",
                        field="url")
    if not parts.hostname:
        raise DataError(f"the Exchange URI has no host name: {value!r}",
                        f"use the full EWS address, e.g. https://mail.{_DOMAIN_EXAMPLE}{USUAL_PATH}",
                        field="url")
    warnings: list[str] = []
    if parts.path.lower() != USUAL_PATH.lower():
        warnings.append(f"the Exchange URI's path is {parts.path or '/'!r}; EWS usually answers at "
                        f"{USUAL_PATH} (e.g. https://{parts.hostname}{USUAL_PATH})")
    return text, warnings


def check_auth(value: str) -> AuthType:
    text = value.strip().lower()
    for auth in AUTH_TYPES:
        if text == auth:
            return auth
    raise DataError(f"unknown authentication {value!r}", "use ntlm (on-premises default) or basic", field="auth")


def check_username(value: str) -> str:
    """`user`, `user@company.com` or `COMPANY\\user`; the form is turned into what the auth needs later."""
    text = value.strip()
    if not text or any(character.isspace() for character in text):
        raise DataError(f"the username {value!r} is empty or contains spaces",
                        "give the mailbox's sign-in name: user, user@company.com or COMPANY\\user",
                        field="username")
    if text.count("\\") > 1 or text.startswith("\\") or text.endswith("\\") or text.endswith("@"):
        raise DataError(f"the username {value!r} is incomplete",
                        "give the mailbox's sign-in name: user, user@company.com or COMPANY\\user",
                        field="username")
    return text


def is_exchange_online(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in EXCHANGE_ONLINE_HOSTS


def login_name(settings: ExchangeSettings) -> str:
    """The name exchangelib signs in with: NTLM takes DOMAIN\\user, Basic a UPN (user@domain).

    exchangelib's `Credentials` picks the form from the text itself (a backslash means NTLM's domain form,
    an `@` a UPN), so the username is completed with the profile's domain only when it lacks one.
    """
    username, domain = settings.username.strip(), settings.domain.strip()
    netbios, _, bare = username.rpartition("\\")
    if settings.auth == "ntlm":
        if netbios:
            return username
        if "@" in username:
            return username  # NTLM accepts a UPN as the user name, with an empty domain
        return f"{domain}\\{username}" if domain else username  # AD takes the DNS domain as NTLM's domain
    if netbios:
        return f"{bare}@{domain}" if domain else bare
    if "@" in username or not domain:
        return username
    return f"{username}@{domain}"
