"""Provider presets (from Thunderbird's ISPDB and the providers' own help pages)."""

from __future__ import annotations

from dataclasses import dataclass

from xoromail_cli.addresses import domain_of


@dataclass(frozen=True, kw_only=True)
class Preset:
    key: str
    label: str
    host: str
    port: int
    security: str
    domains: tuple[str, ...] = ()
    notes: str = ""
    per_minute: int | None = None
    per_hour: int | None = None
    """Messages in any hour the provider accepts (paced on top of `per_minute`)."""
    daily_messages: int | None = None
    daily_recipients: int | None = None
    max_connections: int | None = None
    """Connections at a time the provider accepts for one mailbox (`--connections` is capped to it)."""


GMAIL_NOTE = (
    "Gmail needs an app password: turn on 2-Step Verification for the account, then create a "
    "16-character app password (myaccount.google.com/apppasswords) and use it as the password. "
    "It is revoked when the account password changes."
)

HVE_HOST = "smtp-hve.office365.com"
HVE_NOTE = (
    "Microsoft 365 High Volume Email: internal recipients only (the tenant's own domains; mail to anyone else is "
    "refused), no mailbox licence needed. The user name is the HVE account's address; Basic auth (its password) "
    "works until September 2028. With OAuth (XOAUTH2, up to 10 apps granted with Add-HVEAppAccess) HVE refuses a "
    "token that expires within 600 s (501 5.5.127 \"Token will expire soon\"): xoromail renews it earlier."
)
ACS_HOST = "smtp.azurecomm.net"
ACS_NOTE = (
    "Azure Communication Services SMTP: the user name is the \"SMTP Username\" resource you created for the "
    "Email Communication resource, the password is the client secret (its Value) of the Entra app it names. "
    "Default limits on a custom domain: 30 messages a minute and 100 an hour (then 429 with Retry-After)."
)

PRESETS: dict[str, Preset] = {
    p.key: p
    for p in (
        Preset(key="office365", label="Office 365 / Microsoft 365", host="smtp.office365.com", port=587,
               security="starttls",
               notes="SMTP AUTH must be enabled for the mailbox.", per_minute=30, daily_recipients=10_000,
               max_connections=3),
        Preset(key="hve", label="Microsoft 365 High Volume Email (internal recipients only)", host=HVE_HOST, port=587,
               security="starttls", notes=HVE_NOTE),
        Preset(key="acs", label="Azure Communication Services SMTP", host=ACS_HOST, port=587, security="starttls",
               notes=ACS_NOTE, per_minute=30, per_hour=100),
        Preset(key="gmail", label="Gmail / Google Workspace", host="smtp.gmail.com", port=587, security="starttls",
               domains=("gmail.com", "googlemail.com"), notes=GMAIL_NOTE, daily_messages=2_000, max_connections=3),
        Preset(key="outlook", label="Outlook.com / Hotmail", host="smtp-mail.outlook.com", port=587,
               security="starttls",
               domains=("outlook.com", "hotmail.com", "live.com", "msn.com"),
               notes="Outlook.com accounts increasingly accept only OAuth sign-in; a password may be refused.",
               per_minute=30, daily_recipients=5_000, max_connections=3),
        Preset(key="yahoo", label="Yahoo Mail", host="smtp.mail.yahoo.com", port=465, security="ssl",
               domains=("yahoo.com", "ymail.com"),
               notes="Yahoo needs an app password generated in the account's security settings."),
        Preset(key="icloud", label="iCloud Mail", host="smtp.mail.me.com", port=587, security="starttls",
               domains=("icloud.com", "me.com", "mac.com"),
               notes="iCloud needs an app-specific password (appleid.apple.com)."),
        Preset(key="zoho", label="Zoho Mail", host="smtp.zoho.com", port=465, security="ssl",
               domains=("zoho.com", "zohomail.com")),
        Preset(key="fastmail", label="Fastmail", host="smtp.fastmail.com", port=465, security="ssl",
               domains=("fastmail.com", "fastmail.fm"),
               notes="Fastmail needs an app password (Settings → Privacy & Security)."),
    )
}
CUSTOM = "custom"


def preset_for_domain(email: str) -> Preset | None:
    """The preset a consumer address's domain implies (company domains need the user's choice)."""
    domain = domain_of(email)
    for preset in PRESETS.values():
        if domain in preset.domains:
            return preset
    return None


def preset_for_host(host: str) -> Preset | None:
    host = host.lower().rstrip(".")
    for preset in PRESETS.values():
        if preset.host == host:
            return preset
    return None


def preset_notes(preset: Preset) -> str:
    """The preset's notes, with today's state of any dated provider change."""
    if preset.key == "office365":
        from xoromail_cli.services.advisories import office365_smtp_auth

        advice = office365_smtp_auth()
        return f"{preset.notes} {advice[0].upper()}{advice[1:]}."
    return preset.notes


def is_gmail(host: str) -> bool:
    return host.lower().rstrip(".") in ("smtp.gmail.com", "smtp.googlemail.com")


def is_office365(host: str) -> bool:
    return host.lower().rstrip(".") in ("smtp.office365.com", "smtp-mail.outlook.com")


def is_hve(host: str) -> bool:
    """Microsoft's High Volume Email endpoint: it refuses XOAUTH2 tokens that expire within 600 s."""
    return host.lower().rstrip(".") == HVE_HOST


def sending_provider_of_host(host: str) -> str | None:
    """The provider an outgoing SMTP server belongs to ("microsoft365", "google"), for the domain checks: its
    messages leave from that provider's servers, which the domain's SPF include and DKIM keys must cover."""
    name = host.lower().rstrip(".")
    if name.endswith((".office365.com", ".outlook.com")):
        return "microsoft365"
    if name in ("smtp.gmail.com", "smtp-relay.gmail.com", "smtp.google.com", "smtp.googlemail.com"):
        return "google"
    return None
