"""SPF: the record (checkdmarc fetches, joins split strings, parses and counts lookups), whether it authorises
the sending service, its all-qualifier and the 10-lookup limit of RFC 7208 §4.6.4."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from xoromail_cli.domain.checks import Check
from xoromail_cli.domain.providers import LABELS, Provider
from xoromail_cli.domain.resolver import query_addresses, query_texts

if TYPE_CHECKING:
    import dns.resolver

NAME = "SPF"
INCLUDES: dict[Provider, str] = {"microsoft365": "spf.protection.outlook.com", "google": "_spf.google.com"}
LOOKUP_LIMIT = 10
_ALL = {"fail": "-all", "softfail": "~all", "neutral": "?all", "pass": "+all"}


def spf_checks(domain: str, resolver: dns.resolver.Resolver, provider: Provider | None,
               smtp_host: str | None) -> list[Check]:
    """The SPF record's own health, then whether it lets the sending service send for the domain."""
    import checkdmarc.spf

    # Our own lookup first: checkdmarc reports a DNS timeout as "no record", we report it as DNS trouble (75/69).
    texts = query_texts(resolver, domain, "TXT") or []
    if not any(text.lower() == "v=spf1" or text.lower().startswith("v=spf1 ") for text in texts):
        add = _mechanism_for(provider, smtp_host, resolver)
        return [Check(NAME, "fail", f"{domain} publishes no SPF record: receivers cannot tell its servers from "
                      "a forger's, and Gmail and Yahoo reject or junk bulk mail without one",
                      f"publish a TXT record at {domain}: \"v=spf1 {add} -all\"")]
    result: dict[str, Any] = checkdmarc.spf.check_spf(domain, resolver=resolver, timeout=resolver.lifetime, retries=0)
    record = str(result.get("record") or texts[0])
    lookups = result.get("dns_lookups")
    if not result.get("valid", False):
        return [_broken(domain, record, str(result.get("error", "")), lookups)]
    parsed: dict[str, Any] = result.get("parsed") or {}
    checks = [_with_warnings(_record_check(record, parsed, lookups), result.get("warnings") or [])]
    authorised = _authorisation(domain, parsed, provider, smtp_host, resolver)
    if authorised is not None:
        checks.append(authorised)
    return checks


def _broken(domain: str, record: str, error: str, lookups: int | None) -> Check:
    if lookups is not None and lookups > LOOKUP_LIMIT:
        return Check(NAME, "fail", f"{record!r} needs {lookups} DNS lookups; receivers allow {LOOKUP_LIMIT} and "
                     "treat the record as a permanent error (permerror), as if there were none",
                     "remove includes of services you no longer use, or replace an include by the ip4:/ip6: "
                     "ranges it lists, until at most 10 lookups remain (include, a, mx, ptr, exists, redirect)")
    return Check(NAME, "fail", f"the SPF record of {domain} does not parse: {error}",
                 "fix the record so that it reads: v=spf1 <mechanisms> -all (see docs/deliverability.md)")


def _record_check(record: str, parsed: dict[str, Any], lookups: int | None) -> Check:
    qualifier = parsed.get("all")
    counted = f"{lookups} of {LOOKUP_LIMIT} DNS lookups" if lookups is not None else "lookups not counted"
    detail = f"{record!r} ({counted})"
    if qualifier == "pass":
        return Check(NAME, "fail", f"{detail}: +all lets every server on the internet send as the domain",
                     "end the record with -all (or ~all while you find every sender)")
    if qualifier in ("fail", "softfail"):
        return Check(NAME, "ok", f"{detail}, ends in {_ALL[qualifier]}")
    if parsed.get("redirect"):
        return Check(NAME, "ok", f"{detail}, redirects to {parsed['redirect']}")
    ending = _ALL.get(str(qualifier), "no all mechanism")
    return Check(NAME, "warn", f"{detail}, ends in {ending}: mail from other servers is neither passed nor failed",
                 "end the record with -all (or ~all) so that receivers treat other servers as forgers")


def _with_warnings(check: Check, warnings: list[str]) -> Check:
    """checkdmarc's own findings (void lookups, deprecated ptr, …) turn a passing record into a warning."""
    if check.status != "ok" or not warnings:
        return check
    return Check(check.name, "warn", f"{check.detail}; {'; '.join(str(w) for w in warnings)}",
                 "fix what the warning names; see docs/deliverability.md")


def _authorisation(domain: str, parsed: dict[str, Any], provider: Provider | None, smtp_host: str | None,
                   resolver: dns.resolver.Resolver) -> Check | None:
    name = "SPF authorises sender"
    if provider is not None:
        target = INCLUDES[provider]
        if _includes(parsed, target):
            return Check(name, "ok", f"include:{target} authorises {LABELS[provider]}")
        return Check(name, "fail", f"the SPF record does not authorise {LABELS[provider]}: "
                     f"its servers' mail fails SPF at receivers", _add_hint(f"include:{target}"))
    if not smtp_host:
        return None
    addresses = query_addresses(resolver, smtp_host)
    if not addresses:
        return Check(name, "warn", f"{smtp_host} has no address, so its authorisation cannot be evaluated")
    results = {address: _evaluate(parsed, ipaddress.ip_address(address), resolver) for address in addresses}
    missing = [address for address, result in results.items() if result is False]
    unknown = [address for address, result in results.items() if result is None]
    if missing:
        mechanisms = " ".join(_ip_mechanism(address) for address in missing)
        return Check(name, "fail", f"the SPF record does not authorise {smtp_host} ({', '.join(missing)})",
                     _add_hint(mechanisms) + " (or the include: your relay's provider documents)")
    if unknown:
        return Check(name, "warn", f"{smtp_host} ({', '.join(unknown)}) depends on exists:/ptr: mechanisms "
                     "that cannot be evaluated here", "prefer ip4:/ip6:/include: mechanisms (ptr is deprecated)")
    return Check(name, "ok", f"{smtp_host} ({', '.join(addresses)}) passes SPF for {domain}")


def _add_hint(mechanism: str) -> str:
    return f"add `{mechanism}` to the SPF record, before its all mechanism"


def _ip_mechanism(address: str) -> str:
    return f"ip{ipaddress.ip_address(address).version}:{address}"


def _includes(parsed: dict[str, Any], target: str) -> bool:
    """Whether the record includes `target`, directly or through includes and redirects of its own."""
    for mechanism in parsed.get("mechanisms", []):
        if mechanism.get("mechanism") != "include":
            continue
        if str(mechanism.get("value", "")).rstrip(".").lower() == target:
            return True
        if _includes(mechanism.get("parsed") or {}, target):
            return True
    return _includes(parsed["redirect"].get("parsed") or {}, target) if isinstance(parsed.get("redirect"), dict) \
        else False


def _evaluate(parsed: dict[str, Any], address: ipaddress.IPv4Address | ipaddress.IPv6Address,
              resolver: dns.resolver.Resolver) -> bool | None:
    """RFC 7208 §4.6 on the record checkdmarc parsed: True pass, False not pass, None cannot tell."""
    for mechanism in parsed.get("mechanisms", []):
        matched = _matches(mechanism, address, resolver)
        if matched is None:
            return None
        if matched:
            return bool(mechanism.get("action") == "pass")
    redirect = parsed.get("redirect")
    if isinstance(redirect, dict) and redirect.get("parsed"):
        return _evaluate(redirect["parsed"], address, resolver)
    return False


def _matches(mechanism: dict[str, Any], address: ipaddress.IPv4Address | ipaddress.IPv6Address,
             resolver: dns.resolver.Resolver) -> bool | None:
    kind = mechanism.get("mechanism")
    value = str(mechanism.get("value", ""))
    if kind in ("ip4", "ip6"):
        network = ipaddress.ip_network(value, strict=False)
        return network.version == address.version and address in network
    if kind == "include":
        return _evaluate(mechanism.get("parsed") or {}, address, resolver) is True
    if kind == "a":
        return _in_hosts([value], address, resolver)
    if kind == "mx":
        return _in_hosts([str(host.get("hostname", "")) for host in mechanism.get("hosts", [])], address, resolver)
    return None  # exists, ptr: need the sender's own connection to evaluate


def _in_hosts(hosts: list[str], address: ipaddress.IPv4Address | ipaddress.IPv6Address,
              resolver: dns.resolver.Resolver) -> bool:
    for host in hosts:
        name, _, length = host.partition("/")
        for found in query_addresses(resolver, name):
            candidate = ipaddress.ip_address(found)
            if candidate.version != address.version:
                continue
            prefix = int(length) if length and candidate.version == 4 else candidate.max_prefixlen
            if address in ipaddress.ip_network(f"{candidate}/{prefix}", strict=False):
                return True
    return False


def _mechanism_for(provider: Provider | None, smtp_host: str | None, resolver: dns.resolver.Resolver) -> str:
    if provider is not None:
        return f"include:{INCLUDES[provider]}"
    if smtp_host:
        addresses = query_addresses(resolver, smtp_host)
        if addresses:
            return " ".join(_ip_mechanism(address) for address in addresses)
    return "mx"
