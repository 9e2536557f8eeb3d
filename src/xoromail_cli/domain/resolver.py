"""One bounded resolver for every lookup, pointed at `--dns-server` / XOROMAIL_DNS_SERVER when given.

dnspython errors become the project's error tree here, so no caller sees a library exception: a resolver
that does not answer is temporary (75), one that refuses or fails every query is unavailable (69), and a
name that does not exist is the user's data (65).
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import DataError, TemporaryError, UnavailableError, UsageError

if TYPE_CHECKING:
    import dns.resolver

DNS_SERVER_ENV = "XOROMAIL_DNS_SERVER"
DEFAULT_TIMEOUT = 5.0
SERVER_HINT = f"check the network, or point lookups at a resolver that answers with --dns-server or {DNS_SERVER_ENV}"


def parse_dns_server(value: str) -> tuple[str, int]:
    """HOST[:PORT] (an IPv6 address in brackets when it has a port) as an address and a port."""
    text = value.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        port = int(port_text) if port_text else 53
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"DNS server {value!r} is not HOST[:PORT] with HOST an IP address",
                         "e.g. --dns-server 192.0.2.53 or --dns-server 127.0.0.1:5353") from None
    if not 0 < port < 65536:
        raise UsageError(f"DNS server port {port} is out of range", "use a port from 1 to 65535")
    return host, port


def make_resolver(dns_server: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> dns.resolver.Resolver:
    """A resolver whose every query gives up after `timeout` seconds; the system's unless a server is named."""
    import dns.nameserver
    import dns.resolver

    server = dns_server or os.environ.get(DNS_SERVER_ENV) or None
    if server:
        host, port = parse_dns_server(server)
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port)]
    else:
        try:
            resolver = dns.resolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise UnavailableError("this system names no DNS resolver (no nameserver in /etc/resolv.conf)",
                                   SERVER_HINT) from None
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)
    return resolver


def server_label(resolver: dns.resolver.Resolver) -> str:
    """The resolver as people write it: HOST:PORT, or HOST for port 53."""
    labels = []
    for server in resolver.nameservers:
        address, port = getattr(server, "address", str(server)), getattr(server, "port", 53)
        labels.append(str(address) if port == 53 else f"{address}:{port}")
    return ", ".join(labels) or "the system resolver"


def query_texts(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> list[str] | None:
    """The records of one type as text (TXT strings joined), [] when the name has none, None when it does
    not exist. Raises TemporaryError / UnavailableError when DNS cannot be asked."""
    answer = _resolve(resolver, name, rdtype)
    if answer is None:
        return None
    texts = []
    for record in answer:
        strings = getattr(record, "strings", None)
        texts.append(b"".join(strings).decode("utf-8", "replace") if strings is not None else record.to_text())
    return texts


def query_mx(resolver: dns.resolver.Resolver, domain: str) -> list[str]:
    """The domain's mail servers, most preferred first; DataError when the domain does not exist."""
    answer = _resolve(resolver, domain, "MX")
    if answer is None:
        raise DataError(f"the domain {domain} does not exist (NXDOMAIN)",
                        "check the spelling of the domain (the part of the address after @)")
    ordered = sorted(answer, key=lambda record: record.preference)
    return [record.exchange.to_text(omit_final_dot=True).lower() for record in ordered]


def query_addresses(resolver: dns.resolver.Resolver, host: str) -> list[str]:
    """IPv4 and IPv6 addresses of a host ([] when it has none)."""
    found: list[str] = []
    for rdtype in ("A", "AAAA"):
        found += query_texts(resolver, host, rdtype) or []
    return found


def _resolve(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> list[Any] | None:
    """The answer's records, [] for NODATA (the name exists without records of this type), None for NXDOMAIN."""
    import dns.exception
    import dns.resolver

    try:
        return list(resolver.resolve(name, rdtype, search=False))
    except dns.resolver.NXDOMAIN:
        return None
    except dns.resolver.NoAnswer:
        return []
    except dns.exception.Timeout:
        raise TemporaryError(f"DNS server {server_label(resolver)} did not answer within "
                             f"{resolver.lifetime:g} s (looking up {rdtype} of {name})", SERVER_HINT) from None
    except dns.resolver.NoNameservers as error:
        raise UnavailableError(f"DNS server {server_label(resolver)} failed the lookup of {rdtype} of {name}: "
                               f"{_first_line(error)}", SERVER_HINT) from None
    except dns.exception.DNSException as error:
        raise UnavailableError(f"DNS lookup of {rdtype} of {name} failed: {_first_line(error)}", SERVER_HINT) from None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
