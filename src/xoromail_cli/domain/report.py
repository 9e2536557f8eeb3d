"""`check_domain`: every check for one domain, as data; the CLI renders it, setup and validate reuse parts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from xoromail_cli.addresses import host_name_problem
from xoromail_cli.domain.checks import Check, DomainReport
from xoromail_cli.domain.dkim import dkim_checks
from xoromail_cli.domain.dmarc import dmarc_checks
from xoromail_cli.domain.providers import LABELS, Provider, ProviderGuess, as_provider, provider_from_mx
from xoromail_cli.domain.resolver import DEFAULT_TIMEOUT, make_resolver, query_mx
from xoromail_cli.domain.spf import spf_checks
from xoromail_cli.errors import UsageError

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile


@dataclass(frozen=True)
class SendingPath:
    """How a profile's messages leave, as far as DNS is concerned; its service says (no names tested here)."""

    service: str
    """The profile's service, named in the MX warning."""
    provider: Provider | None
    """The provider whose SPF include and DKIM selectors apply ("microsoft365", "google")."""
    host: str | None
    """An SMTP server whose addresses SPF must authorise."""

    @classmethod
    def of(cls, profile: Profile) -> SendingPath:
        from xoromail_cli import services

        service = services.for_profile(profile)
        return cls(profile.service, as_provider(service.sending_provider(profile)), service.sending_host(profile))


def check_domain(domain: str, *, sending: SendingPath | None = None, dkim_selectors: tuple[str, ...] = (),
                 dns_server: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> DomainReport:
    """MX and provider, SPF, DKIM and DMARC of `domain`, for the way the profile sends (`SendingPath.of(profile)`; with
    none, the provider the MX implies). Raises DataError for a domain that does not exist, TemporaryError (75) or
    UnavailableError (69) when DNS cannot be asked; every lookup gives up after `timeout` seconds."""
    name = domain.strip().rstrip(".").lower()
    if not name or "." not in name or any(c.isspace() or c == "@" for c in name):
        raise UsageError(f"{domain!r} is not a domain name", "e.g. xoromail check-domain company.example")
    problem = host_name_problem(name)
    if problem:  # not a DNS failure with a hint about the network: the name cannot be asked for at all
        raise UsageError(f"{domain!r} is not a domain name: {problem}", "e.g. xoromail check-domain company.example")
    resolver = make_resolver(dns_server, timeout)
    hosts = query_mx(resolver, name)
    guess = provider_from_mx(hosts)
    mx_provider: Provider | None = guess.provider if guess else None
    service: str | None = None
    smtp_host: str | None = None
    if sending is None:
        provider, label = mx_provider, (LABELS[mx_provider] if mx_provider else None)
    else:
        service, provider, smtp_host = sending.service, sending.provider, sending.host
        label = LABELS[provider] if provider else (smtp_host or service)
    checks: list[Check] = [_mx_check(name, hosts, guess, service, provider)]
    checks += spf_checks(name, resolver, provider, smtp_host)
    checks += dkim_checks(name, resolver, provider, dkim_selectors)
    checks += dmarc_checks(name, resolver)
    return DomainReport(name, mx_provider, label, tuple(checks))


def _mx_check(domain: str, hosts: list[str], guess: ProviderGuess | None, service: str | None,
              provider: Provider | None) -> Check:
    if not hosts:
        return Check("MX", "warn", f"{domain} has no MX record: replies and bounces to the From address may not "
                     "arrive", "publish the MX records your mail provider gives you")
    listed = ", ".join(hosts[:3]) + (" …" if len(hosts) > 3 else "")
    if guess is None:
        unchecked = "" if service else "; without a profile no sending server is checked against SPF"
        return Check("MX", "ok", f"{listed} (no provider xoromail knows{unchecked})")
    implied = f"{listed}: {guess.label}"
    if service is None or provider == guess.provider:
        return Check("MX", "ok", implied)
    return Check("MX", "warn", f"{implied}, but the profile sends with {service!r}",
                 f"service {guess.service!r} (or the SMTP preset {guess.preset!r}) sends from {guess.label}'s own "
                 "servers, which the domain's SPF and DKIM are most likely set up for")
