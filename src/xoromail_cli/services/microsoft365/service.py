"""The thin adapter that makes Microsoft 365 one `services.base.Service`: flags, wizard, stages, transport.

Written against the refactored `profile.Profile` (common fields + `settings`, here a `Microsoft365Settings`).
msal and requests are not imported here: only opening a transport or signing in loads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import ConfigError, DataError
from xoromail_cli.services.base import (
    Limits,
    Notify,
    Question,
    SecretStore,
    ServiceBase,
    SetupOption,
    SignInResult,
    TraceCallback,
    Transport,
)
from xoromail_cli.services.microsoft365.settings import CLOUDS, MODES, SEND_VIAS, SIGN_INS, Microsoft365Settings

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile
    from xoromail_cli.services.base import Service
    from xoromail_cli.services.expiry import ExpiryNote

SECRET_KINDS = ("token_cache", "client_secret")
REGISTER_FIRST = (
    "Register an app first: Entra admin center → App registrations → New registration; for delegated sign-in "
    "add the delegated permission Mail.Send and turn on 'Allow public client flows'; for app-only add the "
    "application permission Mail.Send and grant admin consent. Step by step: docs/setup-microsoft365.md"
)

SEND_VIA_CHOICES = (*SEND_VIAS, "hve")
"""--send-via: hve is SMTP (XOAUTH2) to High Volume Email's host, saved as send_via = "smtp" with its smtp_host."""
SETUP_OPTIONS: tuple[SetupOption, ...] = (
    SetupOption(flag="--tenant", key="tenant",
                help="the tenant's domain (contoso.onmicrosoft.com) or Directory (tenant) ID",
                metavar="TENANT"),
    SetupOption(flag="--client-id", key="client_id", help="the app registration's Application (client) ID",
                metavar="ID"),
    SetupOption(flag="--client-secret-stdin", key="client_secret_stdin",
                help="app-only sign-in: read the client secret's Value from stdin (kept in the secret store)",
                kind="flag"),
    SetupOption(flag="--client-secret-expires", key="client_secret_expires",
                help="the client secret's Expires date (YYYY-MM-DD, from Certificates & secrets): validate, send "
                "and the relay warn 30 days before", metavar="DATE"),
    SetupOption(flag="--certificate", key="certificate",
                help="app-only sign-in with a PEM file holding the private key and "
                "the certificate uploaded to the app registration", metavar="PEM", kind="path"),
    SetupOption(flag="--sign-in", key="sign_in", help="delegated sign-in: device-code (default) or browser",
                metavar="|".join(SIGN_INS)),
    SetupOption(flag="--redirect-port", key="redirect_port", help="browser sign-in: the loopback port (for ssh -L)",
                metavar="PORT",
                kind="int"),
    SetupOption(flag="--sign-in-timeout", key="sign_in_timeout", help="seconds to wait for the sign-in (default 300)",
                metavar="SECONDS", kind="float"),
    SetupOption(flag="--send-via", key="send_via", help="graph (default), smtp (XOAUTH2 to smtp.office365.com:587) "
                "or hve (XOAUTH2 to High Volume Email, smtp-hve.office365.com:587: internal recipients only)",
                metavar="|".join(SEND_VIA_CHOICES)),
    SetupOption(flag="--cloud", key="cloud", help="global (default), usgov or china", metavar="|".join(CLOUDS)),
    SetupOption(flag="--authority-host", key="authority_host",
                help="sign-in host instead of the cloud's (proxies, tests)",
                metavar="URL"),
    SetupOption(flag="--graph-url", key="graph_url", help="Graph base URL instead of the cloud's (proxies, tests)",
                metavar="URL"),
    SetupOption(flag="--sign-in-account", key="account",
                help="the account that signs in when it is not the mailbox (sends "
                "as a shared mailbox with Send As rights)", metavar="ADDRESS"),
)
_SETTING_KEYS = ("tenant", "client_id", "sign_in", "redirect_port", "sign_in_timeout", "send_via", "cloud",
                 "authority_host", "graph_url", "certificate", "account", "mode", "client_secret_expires")


def build_settings(answers: Mapping[str, Any], existing: Microsoft365Settings | None) -> Microsoft365Settings:
    """Answers (None: not given) over the existing settings; a secret or a certificate means app-only."""
    values: dict[str, Any] = existing.to_table() if existing else {}
    for key in _SETTING_KEYS:
        if answers.get(key) is not None:
            values[key] = str(answers[key]) if key == "certificate" else answers[key]
    if answers.get("client_secret_stdin") or answers.get("client_secret") or answers.get("certificate"):
        values["mode"] = "app"
    if answers.get("client_secret_stdin") or answers.get("client_secret"):
        values.pop("certificate", None)
        if answers.get("client_secret_expires") is None:  # a new secret: the old one's date no longer applies
            values.pop("client_secret_expires", None)
    if answers.get("certificate"):
        values.pop("client_secret_expires", None)
    if answers.get("send_via") is not None:
        _smtp_endpoint(values, str(answers["send_via"]))
    for key in ("tenant", "client_id"):
        if not values.get(key):
            raise DataError(f"--{key.replace('_', '-')} is required for Microsoft 365", REGISTER_FIRST, field=key)
    return Microsoft365Settings.from_table(values)


def _smtp_endpoint(values: dict[str, Any], send_via: str) -> None:
    """`--send-via hve` is SMTP XOAUTH2 to High Volume Email (HVE's token rule follows the host); `--send-via smtp`
    after it goes back to smtp.office365.com (a host set by hand for anything else stays)."""
    from xoromail_cli.services.smtp.presets import HVE_HOST, is_hve

    if send_via not in SEND_VIA_CHOICES:
        raise DataError(f"--send-via {send_via!r} is not one of {', '.join(SEND_VIA_CHOICES)}",
                        "graph (Microsoft Graph), smtp (smtp.office365.com) or hve (High Volume Email)",
                        field="send_via")
    if send_via == "hve":
        values.update(send_via="smtp", smtp_host=HVE_HOST)
    elif is_hve(str(values.get("smtp_host") or "")):
        values.pop("smtp_host")


def _hve_notes(settings: Microsoft365Settings) -> list[str]:
    from xoromail_cli.services.smtp.presets import HVE_NOTE, is_hve

    return [HVE_NOTE] if settings.send_via == "smtp" and is_hve(settings.smtp_server) else []


def secrets_from_answers(answers: Mapping[str, Any]) -> dict[str, str]:
    """The secrets setup must store (kind → value); the CLI read the client secret from stdin or the wizard."""
    secret = answers.get("client_secret")
    return {"client_secret": str(secret).strip()} if secret else {}


def _check_id(key: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        value = text.strip()
        probe = {"tenant": "t", "client_id": "x", key: value or "-"}
        Microsoft365Settings.from_table(probe)  # raises DataError naming the key: the wizard asks again
        return value

    return check


def next_question(answers: Mapping[str, Any], existing: Microsoft365Settings | None) -> Question | None:
    """The wizard, one question at a time (tenant, client ID, mode, then the mode's own questions)."""
    def known(key: str) -> Any:
        return answers.get(key) if answers.get(key) is not None else getattr(existing, key, None)

    if known("tenant") is None:
        return Question(key="tenant", prompt="Tenant (domain or Directory ID)", check=_check_id("tenant"),
                        explain=REGISTER_FIRST)
    if known("client_id") is None:
        return Question(key="client_id", prompt="Application (client) ID", check=_check_id("client_id"))
    if answers.get("mode") is None:
        return Question(key="mode", prompt="Sign in as the mailbox (delegated) or as the app (app-only, unattended)",
                        default=getattr(existing, "mode", "delegated"), choices=MODES)
    if answers["mode"] == "app":
        if answers.get("certificate") is None and answers.get("client_secret") is None:
            return Question(key="client_secret", prompt="Client secret Value (empty to use a certificate PEM instead)",
                            secret=True, default="")
        if not answers.get("client_secret") and answers.get("certificate") is None:
            return Question(key="certificate", prompt="PEM file with the private key and the certificate")
        return None
    if answers.get("sign_in") is None:
        return Question(key="sign_in", prompt="Sign in with a device code (any device) or a browser on this computer",
                        default=getattr(existing, "sign_in", "device-code"), choices=SIGN_INS,
                        explain="Many tenants block device-code sign-in with Conditional Access; then use browser.")
    if answers.get("send_via") is None:
        return Question(key="send_via", prompt="Send through Microsoft Graph, SMTP (XOAUTH2) or High Volume Email",
                        default=getattr(existing, "send_via", "graph"), choices=SEND_VIA_CHOICES)
    return None


class Microsoft365Service(ServiceBase[Microsoft365Settings]):
    name = "microsoft365"
    label = "Microsoft 365 (OAuth, Microsoft Graph)"
    secret_kinds: tuple[str, ...] = SECRET_KINDS
    setup_options = SETUP_OPTIONS
    settings_type = Microsoft365Settings

    def settings_from_table(self, table: Mapping[str, Any]) -> Microsoft365Settings:
        return Microsoft365Settings.from_table(table)

    def build_settings(self, answers: Mapping[str, Any], existing: Any, email: str) -> Microsoft365Settings:
        return build_settings(answers, self.own(existing))

    def setup_notes(self, settings: Any) -> list[str]:
        return _hve_notes(settings) if isinstance(settings, Microsoft365Settings) else []

    def missing(self, answers: Mapping[str, Any], existing: Any, secret_known: bool,
                email: str | None = None) -> list[str]:
        flags = [f"--{key.replace('_', '-')}" for key in ("tenant", "client_id")
                 if answers.get(key) is None and getattr(existing, key, None) is None]
        app = answers.get("client_secret_stdin") or getattr(existing, "mode", None) == "app"
        if app and not (secret_known or answers.get("client_secret") or answers.get("certificate")
                        or getattr(existing, "certificate", None)):
            flags.append("--client-secret-stdin or --certificate")
        return flags

    def next_question(self, answers: Mapping[str, Any], existing: Any, email: str) -> Question | None:
        return next_question(answers, self.own(existing))

    def describe(self, profile: Profile) -> str:
        s = self.settings_of(profile)
        how = f"app-only ({'certificate' if s.certificate else 'client secret'})" if s.mode == "app" else \
            f"delegated sign-in ({s.sign_in})"
        where = f"Microsoft Graph ({s.graph_base})" if s.send_via == "graph" else \
            f"SMTP XOAUTH2 ({s.smtp_server}:{s.smtp_port})"
        return f"Microsoft 365 tenant {s.tenant}, app {s.client_id}, {how}, as {profile.email} through {where}"

    def planned_stages(self, profile: Profile, send: bool) -> list[str]:
        if self.settings_of(profile).send_via == "smtp":  # the SMTP transport's own stages; the token is its auth
            return ["config", "dns", "connect", "ehlo", "tls", "auth", *(["send"] if send else [])]
        return ["config", "sign-in", *(["send"] if send else [])]

    def check_offline(self, profile: Profile) -> None:
        from xoromail_cli.services.network import tls_context

        s = self.settings_of(profile)
        tls_context(profile.ca_file)
        if s.mode == "app" and s.send_via == "smtp":
            from xoromail_cli.services.microsoft365.smtp import app_only_smtp_steps

            raise ConfigError("app-only sign-in cannot send over SMTP here", app_only_smtp_steps(s, profile.email))
        if s.certificate:
            from xoromail_cli.services.microsoft365.auth import load_certificate

            load_certificate(s.certificate)

    def open_transport(self, profile: Profile, secrets: SecretStore, *, timeout: float | None = None,
                       trace: TraceCallback | None = None, validating: bool = False) -> Transport:
        s = self.settings_of(profile)
        wait = timeout or profile.timeout
        if s.send_via == "smtp":
            from xoromail_cli.services.microsoft365.smtp import access_token_for_smtp
            from xoromail_cli.services.smtp.transport import SmtpEndpoint, SmtpTransport

            def token() -> str:
                return access_token_for_smtp(s, secrets, mailbox=profile.email, ca_file=profile.ca_file,
                                             timeout=wait, lock_path=token_lock_path(profile.name))

            endpoint = SmtpEndpoint(host=s.smtp_server, port=s.smtp_port, security="starttls", username=profile.email,
                                    ca_file=profile.ca_file, timeout=wait)
            return SmtpTransport(endpoint, None, token=token, trace=trace)
        from xoromail_cli.services.microsoft365.transport import Microsoft365Transport

        return Microsoft365Transport(s, secrets, mailbox=profile.email, ca_file=profile.ca_file,
                                     timeout=wait, trace=trace, lock_path=token_lock_path(profile.name))

    def notes(self, profile: Profile) -> list[str]:
        s = self.settings_of(profile)
        notes: list[str] = []
        if s.certificate:
            from xoromail_cli.services.microsoft365.auth import certificate_warning

            warning = certificate_warning(s.certificate)
            if warning:
                notes.append(warning)
        if s.mode == "delegated":
            from xoromail_cli.credentials import Secrets
            from xoromail_cli.services.microsoft365.auth import TokenSource

            refreshed = TokenSource(s, Secrets(profile), mailbox=profile.email).last_refreshed()
            if refreshed is not None and datetime.now(UTC) - refreshed < timedelta(days=60):
                notes.append(refresh_note(refreshed))  # from 60 days unused, `expiry` warns with the date
        if _hve_notes(s):
            notes += _hve_notes(s)
        elif s.send_via == "smtp":
            notes.append("SMTP AUTH must stay enabled for this mailbox (Exchange admin center → mailbox → "
                         "Manage email apps → Authenticated SMTP); Graph needs no such switch")
        return notes

    def sign_in(self, profile: Profile, secrets: SecretStore, *, notify: Notify,
                answers: Mapping[str, Any]) -> SignInResult | None:
        """Delegated: the device-code (or browser) sign-in now; app-only: the secret is kept, validation proves
        it. Either way the token cache is staged in `secrets` until setup saves the profile."""
        for kind, value in secrets_from_answers(answers).items():
            secrets.set(kind, value)
            if kind == "client_secret":  # a new secret: an expiry learnt from AADSTS7000222 was the old one's
                from xoromail_cli.services.microsoft365.expiry import forget_secret_expiry

                forget_secret_expiry(profile.name)
        s = self.settings_of(profile)
        if s.mode == "app":
            return SignInResult(s)
        from xoromail_cli.services.microsoft365.auth import sign_in

        signed = sign_in(s, secrets, mailbox=profile.email, notify=notify, ca_file=profile.ca_file,
                         timeout=profile.timeout, open_browser=not answers.get("no_browser"),
                         lock_path=token_lock_path(profile.name))
        warning = signed.warning()
        return SignInResult(s, (warning,) if warning else ())

    def disconnect(self, profile: Profile, secrets: SecretStore) -> str:
        for kind in SECRET_KINDS:
            secrets.delete(kind)
        from xoromail_cli.credentials import store_name

        return (f"the Microsoft sign-in (token cache) and any client secret were removed from {store_name()}; "
                "an admin can also revoke the app's consent in the Entra admin center")

    def limits(self, profile: Profile) -> Limits | None:
        # Exchange Online binds Graph too: 30 messages a minute, 10,000 recipients a day; about 4 concurrent
        # requests per app and mailbox (throttling-limits.md).
        return Limits(label="Exchange Online", per_minute=30, daily_recipients=10_000, max_connections=4)

    def sending_provider(self, profile: Profile) -> str | None:
        return "microsoft365"

    def expiring(self, profile: Profile, now: datetime, secrets: SecretStore | None) -> list[ExpiryNote]:
        from xoromail_cli.services.microsoft365 import expiry

        return expiry.notes(profile, now, secrets)

    def learn_from_failure(self, profile: Profile, text: str, now: datetime) -> None:
        from xoromail_cli.services.microsoft365 import expiry

        expiry.learn_from_error(profile, text, now)


def refresh_note(refreshed: datetime, now: datetime | None = None) -> str:
    """Refresh tokens expire after 90 days unused: say when this one was last renewed."""
    now = now or datetime.now(UTC)
    days = (now - refreshed).days
    when = refreshed.strftime("%Y-%m-%d")
    left = 90 - days
    if left <= 14:
        return (f"the Microsoft sign-in was last refreshed on {when} ({days} days ago): it expires after 90 days "
                f"unused, in about {max(left, 0)} days; a send or validate renews it once the hour-long access "
                "token has expired")
    return f"the Microsoft sign-in was last refreshed on {when} (it expires after 90 days unused)"


def token_lock_path(profile_name: str) -> Path:
    """The lock under which the token cache is written back (two cron runs never clobber it)."""
    from xoromail_cli.paths import state_dir

    return state_dir() / f"{profile_name}.token-cache.lock"


SERVICE = Microsoft365Service()
if TYPE_CHECKING:
    KEEPS_PROTOCOL: Service = SERVICE
    """mypy checks here, in the service's own package, that it keeps the whole `Service` protocol."""
