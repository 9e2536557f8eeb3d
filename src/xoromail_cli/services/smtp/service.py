"""The Web Mail (SMTP) service: the part `services.get("smtp")` returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from xoromail_cli.services.base import (
    Limits,
    Question,
    SecretStore,
    ServiceBase,
    SetupOption,
    TraceCallback,
    Transport,
)
from xoromail_cli.services.smtp import setup
from xoromail_cli.services.smtp.settings import SmtpSettings

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile
    from xoromail_cli.services.base import Service
    from xoromail_cli.services.smtp.presets import Preset


class SmtpService(ServiceBase[SmtpSettings]):
    name = "smtp"
    label = "Web Mail (SMTP)"
    secret_kinds: tuple[str, ...] = ("password",)
    setup_options: tuple[SetupOption, ...] = setup.OPTIONS
    settings_type = SmtpSettings

    def settings_from_table(self, table: Mapping[str, Any]) -> SmtpSettings:
        return SmtpSettings.from_table(table)

    def build_settings(self, answers: Mapping[str, Any], existing: Any, email: str) -> SmtpSettings:
        return setup.build_settings(answers, self.own(existing), email)

    def missing(self, answers: Mapping[str, Any], existing: Any, secret_known: bool, email: str | None) -> list[str]:
        return setup.missing(answers, self.own(existing), secret_known, email)

    def next_question(self, answers: Mapping[str, Any], existing: Any, email: str) -> Question | None:
        return setup.next_question(answers, self.own(existing), email)

    def needs_password(self, settings: Any, email: str) -> bool:
        return isinstance(settings, SmtpSettings) and settings.auth_username(email) is not None

    def normalize_secret(self, settings: Any, kind: str, value: str) -> str:
        """Google shows app passwords as `abcd efgh ijkl mnop`; the spaces are not part of it."""
        from xoromail_cli.credentials import normalize_password

        return normalize_password(settings.host, value) if isinstance(settings, SmtpSettings) else value

    def setup_notes(self, settings: Any) -> list[str]:
        if not isinstance(settings, SmtpSettings):
            return []
        from xoromail_cli.services.smtp.presets import PRESETS

        note = setup.domain_username_note(settings.username)
        terms = PRESETS[settings.preset].notes if settings.preset in ("hve", "acs") else None  # said before saving
        return [text for text in (terms, note) if text]

    def describe(self, profile: Profile) -> str:
        settings = self.settings_of(profile)
        return f"{settings.host}:{settings.port} ({settings.security})"

    def planned_stages(self, profile: Profile, send: bool) -> list[str]:
        settings = self.settings_of(profile)
        connection = ["dns", "connect"]
        if settings.security == "ssl":
            connection += ["tls", "ehlo"]
        elif settings.security == "starttls":
            connection += ["ehlo", "tls"]
        else:
            connection += ["ehlo"]
        if settings.auth_username(profile.email):
            connection.append("auth")
        return ["config", *connection, *(["send"] if send else [])]

    def check_offline(self, profile: Profile) -> None:
        from xoromail_cli.services.network import tls_context
        from xoromail_cli.services.smtp.transport import SmtpEndpoint, check_plaintext_allowed

        self.settings_of(profile)
        endpoint = SmtpEndpoint.from_profile(profile)
        check_plaintext_allowed(endpoint)
        if endpoint.security != "none":
            tls_context(endpoint.ca_file)

    def open_transport(self, profile: Profile, secrets: SecretStore, *, timeout: float | None = None,
                       trace: TraceCallback | None = None, validating: bool = False) -> Transport:
        from xoromail_cli.services.smtp.transport import SmtpTransport

        settings = self.settings_of(profile)
        password = None
        if settings.auth_username(profile.email):
            password = secrets.get("password")
            if not password:
                from xoromail_cli.credentials import missing_password

                raise missing_password(profile.name)
            password = self.normalize_secret(settings, "password", password)
        return SmtpTransport.for_profile(profile, password, timeout=timeout, trace=trace)

    def notes(self, profile: Profile) -> list[str]:
        from xoromail_cli.services.advisories import office365_smtp_auth
        from xoromail_cli.services.network import is_loopback

        settings = self.settings_of(profile)
        notes = []
        preset = self.preset(profile)
        if preset is not None and preset.key in ("office365", "outlook") and settings.auth_username(profile.email):
            notes.append(f"this account signs in with a password over SMTP AUTH; {office365_smtp_auth()}")
        if preset is not None and preset.key in ("hve", "acs"):  # internal recipients only; ACS's user and limits
            notes.append(preset.notes)
        if settings.security == "none" and not is_loopback(settings.host):
            notes.append(f"messages travel to {settings.host} unencrypted (security none); use starttls or ssl "
                         "unless the relay is on a trusted network")
        return notes

    def limits(self, profile: Profile) -> Limits | None:
        preset = self.preset(profile)
        if preset is None:
            return None
        return Limits(label=preset.label, per_minute=preset.per_minute, per_hour=preset.per_hour,
                      daily_messages=preset.daily_messages,
                      daily_recipients=preset.daily_recipients,
                      max_connections=preset.max_connections)

    def sending_provider(self, profile: Profile) -> str | None:
        from xoromail_cli.services.smtp.presets import sending_provider_of_host

        return sending_provider_of_host(self.settings_of(profile).host)

    def sending_host(self, profile: Profile) -> str | None:
        return self.settings_of(profile).host

    def preset(self, profile: Profile) -> Preset | None:
        """The preset a profile was set up with, else the one its server implies (for limits and notes)."""
        from xoromail_cli.services.smtp.presets import PRESETS, preset_for_host

        settings = self.settings_of(profile)
        return PRESETS.get(settings.preset or "") or preset_for_host(settings.host)


SERVICE = SmtpService()
if TYPE_CHECKING:
    KEEPS_PROTOCOL: Service = SERVICE
    """mypy checks here, in the service's own package, that it keeps the whole `Service` protocol."""
