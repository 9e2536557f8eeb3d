"""DMARC: `_dmarc.DOMAIN` present or not, its policy and reporting address (checkdmarc parses the record)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xoromail_cli.domain.checks import Check
from xoromail_cli.domain.resolver import query_texts

if TYPE_CHECKING:
    import dns.resolver

NAME = "DMARC"
RECEIVERS = ("Since 2024 Gmail and Yahoo require SPF, DKIM and DMARC (at least p=none, aligned with the From "
             "domain) from bulk senders (over 5,000 messages a day to Gmail)")


def dmarc_checks(domain: str, resolver: dns.resolver.Resolver) -> list[Check]:
    import checkdmarc.dmarc

    where = f"_dmarc.{domain}"
    # Our own lookup first: checkdmarc reports a DNS timeout as "no record", we report it as DNS trouble (75/69).
    texts = query_texts(resolver, where, "TXT") or []
    result: dict[str, Any] = dict(checkdmarc.dmarc.check_dmarc(domain, resolver=resolver,
                                                               timeout=resolver.lifetime, retries=0))
    if not result.get("record"):
        found = "no DMARC record" if not any(t.lower().startswith("v=dmarc1") for t in texts) else "no usable record"
        return [Check(NAME, "fail", f"{found} at {where}. {RECEIVERS}",
                      f"publish a TXT record at {where}: \"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}\", "
                      "read the reports, then move to p=quarantine or p=reject")]
    record = str(result["record"])
    if not result.get("valid", False):
        return [Check(NAME, "fail", f"{record!r} at {where} does not parse: {result.get('error', '')}",
                      "fix the record: it starts with v=DMARC1; p=none|quarantine|reject")]
    tags: dict[str, Any] = result.get("tags") or {}
    policy = str(tags.get("p", {}).get("value", "none"))
    reports = _report_addresses(tags)
    location = str(result.get("location") or domain)
    found_at = "" if location == domain else f" (at _dmarc.{location}, the organisational domain)"
    detail = f"{record!r}{found_at}: policy {policy}, " + (f"reports to {reports}" if reports
                                                             else "no reporting address")
    if policy == "none":
        return [Check(NAME, "warn", f"{detail}. p=none is monitoring only: receivers take no action on mail that "
                      "fails DMARC, so forged invoices in your name are still delivered",
                      "once the reports show all your own mail passing, set p=quarantine, then p=reject")]
    if not reports:
        return [Check(NAME, "ok", detail, f"add rua=mailto:dmarc-reports@{domain} to learn who sends as the domain")]
    return [Check(NAME, "ok", detail)]


def _report_addresses(tags: dict[str, Any]) -> str:
    uris = tags.get("rua", {}).get("value") or []
    return ", ".join(f"{uri.get('scheme', 'mailto')}:{uri.get('address', '')}" for uri in uris
                     if isinstance(uri, dict))
