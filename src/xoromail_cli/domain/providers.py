"""Which provider a domain's MX implies. Which provider a profile sends through is the service's to say
(`Service.sending_provider`): nothing here knows a service by name.

Facts (shared provider facts, "DNS of a sender's domain"): Microsoft 365 MX hosts end in
`.mail.protection.outlook.com`, or `.mx.microsoft` for domains added since July 2026; Google Workspace MX is
`smtp.google.com` or the older `aspmx.l.google.com` set (with `*.googlemail.com` backups).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

from xoromail_cli.errors import XoromailError

Provider = Literal["microsoft365", "google"]
SETUP_TIMEOUT = 3.0


@dataclass(frozen=True, kw_only=True)
class ProviderGuess:
    """What setup can offer for an address whose domain's mail is on a big provider."""

    provider: Provider
    label: str
    service: str
    """The xoromail service that fits ("microsoft365" / "google")."""
    preset: str
    """The matching SMTP preset ("office365" / "gmail")."""
    mx: tuple[str, ...]

    @property
    def note(self) -> str:
        return (f"{self.mx[0]} receives this domain's mail: it is on {self.label}; service {self.service!r} "
                f"(or the SMTP preset {self.preset!r}) fits it")


_GUESSES: dict[Provider, tuple[str, str, str]] = {
    "microsoft365": ("Microsoft 365", "microsoft365", "office365"),
    "google": ("Google Workspace", "google", "gmail"),
}
LABELS: dict[Provider, str] = {key: value[0] for key, value in _GUESSES.items()}


def provider_of_host(host: str) -> Provider | None:
    """The provider an MX host belongs to."""
    name = host.rstrip(".").lower()
    if name.endswith((".mail.protection.outlook.com", ".mx.microsoft")):
        return "microsoft365"
    if name == "smtp.google.com" or name.endswith((".aspmx.l.google.com", ".googlemail.com")) \
            or name == "aspmx.l.google.com":
        return "google"
    return None


def provider_from_mx(hosts: list[str] | tuple[str, ...]) -> ProviderGuess | None:
    """The provider of the most preferred MX host that belongs to one."""
    for host in hosts:
        provider = provider_of_host(host)
        if provider is not None:
            label, service, preset = _GUESSES[provider]
            return ProviderGuess(provider=provider, label=label, service=service, preset=preset, mx=tuple(hosts))
    return None


def as_provider(name: str | None) -> Provider | None:
    """A provider name a service gave (`Service.sending_provider`), when it is one the checks know."""
    return next((provider for provider in LABELS if provider == name), None)


def provider_for_email(email: str, *, timeout: float = SETUP_TIMEOUT,
                       dns_server: str | None = None) -> ProviderGuess | None:
    """The provider the address's domain receives mail at, or None (also when DNS cannot say in time)."""
    from xoromail_cli.addresses import domain_of

    domain = domain_of(email)
    if not domain:
        return None
    with contextlib.suppress(XoromailError):
        from xoromail_cli.domain.resolver import make_resolver, query_mx

        return provider_from_mx(query_mx(make_resolver(dns_server, timeout), domain))
    return None
