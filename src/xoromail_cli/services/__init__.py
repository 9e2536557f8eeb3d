"""The registry of service types: one package each, found by name or by the ERP's own words for it.

Entries are plain data, so listing services (setup's first question, `--help`) imports no service module;
`get` imports a service's module only when that service is used, and its library only when it connects.

A new service is its own package (a `ServiceBase[ItsSettings]` subclass named `SERVICE` in a module, on the
shared `services/http.py` when it speaks HTTPS) and one `ServiceEntry` line here; setup's flags, the settings
file, the domain checks and the tests (protocol, contract harness, library boundaries) follow the registry.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xoromail_cli.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from xoromail_cli.profile import Profile
    from xoromail_cli.services.base import SecretStore, Service, TraceCallback, Transport


@dataclass(frozen=True, kw_only=True)
class ServiceEntry:
    name: str
    label: str
    """As on the ERP's setup screen."""
    summary: str
    aliases: tuple[str, ...]
    module: str


REGISTRY: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry(name="smtp", label="Web Mail (SMTP)",
                     summary="an SMTP server with a password or app password (Office 365, Gmail, any provider)",
                     aliases=("webmail", "web-mail", "web mail"), module="xoromail_cli.services.smtp.service"),
        ServiceEntry(name="exchange", label="Exchange (EWS)",
                     summary="Exchange Web Services with domain, username and password (on-premises Exchange Server)",
                     aliases=("ews", "exchange server"), module="xoromail_cli.services.exchange.service"),
        ServiceEntry(name="google", label="Email services (Google sign-in)",
                     summary="Connect, then Allow (Google OAuth, Gmail API), or a Workspace service account; "
                             "no password stored",
                     aliases=("email-services", "email services", "gmail-oauth", "gmail-api"),
                     module="xoromail_cli.services.google.service"),
        ServiceEntry(name="microsoft365", label="Microsoft 365 sign-in",
                     summary="OAuth with Microsoft Graph (or SMTP XOAUTH2): the path past the SMTP AUTH and EWS "
                             "retirements",
                     aliases=("m365", "office365-oauth", "microsoft-365", "graph"),
                     module="xoromail_cli.services.microsoft365.service"),
    )
}


def resolve_name(value: str) -> str:
    """The service a name or alias means; ConfigError listing the choices when none."""
    key = " ".join(value.strip().lower().split())
    for entry in REGISTRY.values():
        if key == entry.name or key in entry.aliases:
            return entry.name
    choices = ", ".join(f"{e.name} ({', '.join(e.aliases)})" if e.aliases else e.name for e in REGISTRY.values())
    raise ConfigError(f"unknown service {value!r}", f"choose one of: {choices}", field="service")


def get(name: str) -> Service:
    entry = REGISTRY[resolve_name(name)]
    service: Service = importlib.import_module(entry.module).SERVICE
    return service


def for_profile(profile: Profile) -> Service:
    return get(profile.service)


def open_transport(profile: Profile, secrets: SecretStore, *, outbox: Path | None = None,
                   timeout: float | None = None, trace: TraceCallback | None = None) -> Transport:
    """The transport a profile asks for; `outbox` replaces the network with a folder of .eml files."""
    if outbox is not None:
        from xoromail_cli.services.outbox import OutboxTransport

        return OutboxTransport(outbox)
    return for_profile(profile).open_transport(profile, secrets, timeout=timeout, trace=trace)
