"""The thin adapter that makes Exchange one `services.base.Service`: it reads the profile, the rest lives
in `settings` (checks), `transport` (EWS) and `hints`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import DataError
from xoromail_cli.services.advisories import exchange_ews
from xoromail_cli.services.base import Limits, Question, ServiceBase, SetupOption
from xoromail_cli.services.exchange import settings as checks
from xoromail_cli.services.exchange.settings import URL_EXAMPLE, ExchangeSettings

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile
    from xoromail_cli.services.base import SecretStore, Service, ServiceSettings, TraceCallback, Transport

_KEYS = ("url", "domain", "username", "auth")
_ANSWER_KEYS = {"ews_url": "url", "domain": "domain", "username": "username", "auth": "auth"}
_FLAGS = {"url": "--ews-url", "domain": "--domain", "username": "--username", "auth": "--auth"}


def advisory(url: str) -> str | None:
    """Said up front when the URI is Exchange Online; on-premises Exchange Server needs no warning."""
    if not checks.is_exchange_online(url):
        return None
    return (f"{url} is Exchange Online: Microsoft ended Basic authentication for EWS there in October 2022; "
            f"{exchange_ews()}. Use `xoromail setup --service microsoft365` (Microsoft 365 sign-in), or Web Mail "
            "while the tenant allows SMTP AUTH. On-premises Exchange Server is where this service stays right.")


def setup_warnings(settings: ExchangeSettings) -> list[str]:
    """What setup should print (and still save): an unusual EWS path, the Exchange Online advisory."""
    _, warnings = checks.check_url(settings.url)
    note = advisory(settings.url)
    return [*warnings, *([note] if note else [])]


def _checked(key: str, value: Any) -> Any:
    text = str(value)
    if key == "url":
        return checks.check_url(text)[0]
    if key == "domain":
        return checks.check_domain(text)
    if key == "username":
        return checks.check_username(text)
    return checks.check_auth(text)


class ExchangeService(ServiceBase[ExchangeSettings]):
    name = "exchange"
    label = "Exchange"
    secret_kinds: tuple[str, ...] = ("password",)
    settings_type = ExchangeSettings
    setup_options: tuple[SetupOption, ...] = (
        SetupOption(flag="--ews-url", key="ews_url", help=f"Exchange URI (EWS endpoint), e.g. {URL_EXAMPLE}",
                    metavar="URL"),
        SetupOption(flag="--domain", key="domain", help="the mailbox's domain as a bare DNS name, e.g. company.com",
                    metavar="DOMAIN"),
        SetupOption(flag="--username", key="username", help="sign-in name: user, user@company.com or COMPANY\\user",
                    metavar="USER"),
        SetupOption(flag="--auth", key="auth", help="ntlm (default, on-premises) or basic", metavar="ntlm|basic"),
    )

    def settings_from_table(self, table: Mapping[str, Any]) -> ExchangeSettings:
        for key in table:
            if key not in _KEYS:
                raise DataError(f"unknown Exchange setting {key!r}", f"use only {', '.join(_KEYS)}", field=key)
        values = {key: _checked(key, table[key]) for key in _KEYS if key in table}
        return ExchangeSettings(**values)

    def build_settings(self, answers: Mapping[str, Any], existing: ServiceSettings | None,
                       email: str) -> ExchangeSettings:
        base = self.own(existing) or ExchangeSettings()
        values = {key: getattr(base, key) for key in _KEYS}
        for answer, key in _ANSWER_KEYS.items():
            if answers.get(answer) is not None:
                values[key] = _checked(key, answers[answer])
        if not values["domain"] and "@" in email:
            values["domain"] = checks.check_domain(email.rsplit("@", 1)[1])
        return ExchangeSettings(**values)

    def missing(self, answers: Mapping[str, Any], existing: ServiceSettings | None,
                secret_known: bool, email: str | None = None) -> list[str]:
        base = self.own(existing) or ExchangeSettings()
        needed = [_FLAGS["url"]] if not (answers.get("ews_url") or base.url) else []
        needed += [_FLAGS["username"]] if not (answers.get("username") or base.username) else []
        return needed if secret_known else [*needed, "--password-stdin"]

    def next_question(self, answers: Mapping[str, Any], existing: ServiceSettings | None,
                      email: str) -> Question | None:
        base = self.own(existing) or ExchangeSettings()
        domain_default = base.domain or (email.rsplit("@", 1)[1] if "@" in email else None)
        questions = (
            Question(key="ews_url", prompt="Exchange URI", default=base.url or None,
                     check=lambda text: checks.check_url(text)[0],
                     explain="The EWS address of your Exchange server, usually https://mail.<company>/EWS/"
                             "Exchange.asmx. For Exchange Online (Microsoft 365) prefer the microsoft365 service."),
            Question(key="domain", prompt="Domain", default=domain_default, check=checks.check_domain),
            Question(key="username", prompt="Username", default=base.username or None, check=checks.check_username),
            Question(key="auth", prompt="Authentication", default=base.auth, choices=checks.AUTH_TYPES,
                     check=checks.check_auth),
        )
        for question in questions:
            if answers.get(question.key) is None:
                return question
        return None

    def needs_password(self, settings: ServiceSettings, email: str) -> bool:
        return True

    def setup_notes(self, settings: ServiceSettings) -> list[str]:
        return setup_warnings(settings) if isinstance(settings, ExchangeSettings) else []

    def describe(self, profile: Profile) -> str:
        settings = self.settings_of(profile)
        return f"EWS {settings.url} as {checks.login_name(settings)} ({settings.auth.upper()})"

    def planned_stages(self, profile: Profile, send: bool) -> list[str]:
        return ["config", "dns", "connect", "tls", "auth", *(["send"] if send else [])]

    def check_offline(self, profile: Profile) -> None:
        from xoromail_cli.services.network import tls_context

        checks.check_url(self.settings_of(profile).url)
        tls_context(profile.ca_file)

    def open_transport(self, profile: Profile, secrets: SecretStore, *, timeout: float | None = None,
                       trace: TraceCallback | None = None, validating: bool = False) -> Transport:
        from xoromail_cli.services.exchange.transport import ExchangeTransport

        return ExchangeTransport(self.settings_of(profile), profile.email, secrets, ca_file=profile.ca_file,
                                 timeout=timeout if timeout is not None else profile.timeout, trace=trace)

    def notes(self, profile: Profile) -> list[str]:
        note = advisory(self.settings_of(profile).url)
        return [note] if note else []

    def limits(self, profile: Profile) -> Limits | None:
        if checks.is_exchange_online(self.settings_of(profile).url):
            return Limits(label="Exchange Online", per_minute=30, daily_recipients=10_000)
        return None

    def sending_provider(self, profile: Profile) -> str | None:
        """Exchange Online sends from Microsoft 365's servers; an Exchange server of one's own from its own."""
        return "microsoft365" if checks.is_exchange_online(self.settings_of(profile).url) else None


SERVICE = ExchangeService()
if TYPE_CHECKING:
    KEEPS_PROTOCOL: Service = SERVICE
    """mypy checks here, in the service's own package, that it keeps the whole `Service` protocol."""
