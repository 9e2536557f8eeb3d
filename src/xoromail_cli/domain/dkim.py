"""DKIM: the provider's selectors (or the ones given), found in DNS or not, with how to turn signing on.

DKIM keys live at SELECTOR._domainkey.DOMAIN. Microsoft 365 publishes them behind two CNAMEs, `selector1` and
`selector2`, pointing at `….onmicrosoft.com` or, for domains added since July 2026, `…dkim.mail.microsoft`;
Google Workspace uses `google`. Any other sender: the `s=` tag of the DKIM-Signature header names the selector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xoromail_cli.domain.checks import Check
from xoromail_cli.domain.providers import Provider
from xoromail_cli.domain.resolver import query_texts

if TYPE_CHECKING:
    import dns.resolver

NAME = "DKIM"
"""The row's name when no selector is known, so nothing was looked up (validate leaves it out of its notes)."""
SELECTORS: dict[Provider, tuple[str, ...]] = {"microsoft365": ("selector1", "selector2"), "google": ("google",)}
MICROSOFT_TARGETS = (".onmicrosoft.com", ".dkim.mail.microsoft")
TURN_ON: dict[Provider, str] = {
    "microsoft365": "in the Microsoft Defender portal open Email & collaboration → Policies & rules → Threat "
                    "policies → Email authentication settings → DKIM, select the domain, publish the two CNAME "
                    "records it shows at selector1._domainkey and selector2._domainkey, then turn on "
                    "'Sign messages for this domain with DKIM signatures'",
    "google": "in the Google Admin console open Apps → Google Workspace → Gmail → Authenticate email, generate "
              "a record, publish it as TXT at google._domainkey, then click Start authentication",
}
OTHER_HINT = ("ask your mail provider for its DKIM selector and the TXT record to publish at "
              "SELECTOR._domainkey; the s= tag of the DKIM-Signature header of a message you sent names it")


def dkim_checks(domain: str, resolver: dns.resolver.Resolver, provider: Provider | None,
                selectors: tuple[str, ...] = ()) -> list[Check]:
    """One row per selector: the provider's own, then those given with --dkim-selector."""
    wanted = [*(SELECTORS[provider] if provider else ()), *selectors]
    if not wanted:
        return [Check(NAME, "warn", "no DKIM selector known for this sender: nothing was looked up",
                      f"run check-domain with --dkim-selector SELECTOR; {OTHER_HINT}")]
    hint = TURN_ON[provider] if provider else OTHER_HINT
    return [_selector_check(domain, selector, resolver, provider, hint) for selector in dict.fromkeys(wanted)]


def _selector_check(domain: str, selector: str, resolver: dns.resolver.Resolver, provider: Provider | None,
                    hint: str) -> Check:
    name = f"{selector}._domainkey.{domain}"
    label = f"DKIM {selector}"
    if provider == "microsoft365":
        targets = query_texts(resolver, name, "CNAME") or []
        if not targets:
            return Check(label, "warn", f"no CNAME at {name}: Microsoft 365 does not sign with the domain's key",
                         hint)
        target = targets[0].rstrip(".").lower()
        if not target.endswith(MICROSOFT_TARGETS):
            return Check(label, "warn", f"{name} points at {target}, not at Microsoft 365's key "
                         "(….onmicrosoft.com or …dkim.mail.microsoft)", hint)
    key = _key(query_texts(resolver, name, "TXT") or [])
    if key is None:
        return Check(label, "warn", f"no DKIM key at {name}: messages are not DKIM-signed with this selector",
                     hint)
    if not key:
        return Check(label, "warn", f"the key at {name} is revoked (empty p=)", hint)
    return Check(label, "ok", f"key published at {name}")


def _key(texts: list[str]) -> str | None:
    """The p= value of the DKIM key record among the texts ("" when revoked), None when there is none."""
    for text in texts:
        tags = dict(_tag(part) for part in text.split(";") if "=" in part)
        if "p" in tags and tags.get("v", "DKIM1") == "DKIM1":
            return tags["p"]
    return None


def _tag(part: str) -> tuple[str, str]:
    key, _, value = part.partition("=")
    return key.strip(), "".join(value.split())
