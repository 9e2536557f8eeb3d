"""The Web Mail (SMTP) service: the part `services.get("smtp")` returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import ConfigError
from xoromail_cli.services.base import (
    Limits,
    Notify,
    Question,
    SecretStore,
    SetupOption,
    SignInResult,
    TraceCallback,
    Transport,
)
from xoromail_cli.services.smtp import setup
from xoromail_cli.services.smtp.settings import SmtpSettings

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile
    from xoromail_cli.services.smtp.presets import Preset


def smtp_settings(profile: Profile) -> SmtpSettings:
    settings = profile.settings
    if not isinstance(settings, SmtpSettings):
        raise TypeError(f"profile {profile.name!r} is not an SMTP profile")
    return settings


def preset_for_profile(profile: Profile) -> Preset | None:
    """The preset a profile was set up with, else the one its server implies (for limits and notes)."""
    from xoromail_cli.services.smtp.presets import PRESETS, preset_for_host

    settings = smtp_settings(profile)
    return PRESETS.get(settings.preset or "") or preset_for_host(settings.host)


class SmtpService:
    name = "smtp"
    label = "Web Mail (SMTP)"
    secret_kinds: tuple[str, ...] = ("password",)
    setup_options: tuple[SetupOption, ...] = setup.OPTIONS

    def settings_from_table(self, table: Mapping[str, Any]) -> SmtpSettings:
        return SmtpSettings.from_table(table)

    def build_settings(self, answers: Mapping[str, Any], existing: Any, email: str) -> SmtpSettings:
        return setup.build_settings(answers, existing if isinstance(existing, SmtpSettings) else None, email)

    def missing(self, answers: Mapping[str, Any], existing: Any, secret_known: bool, email: str | None) -> list[str]:
        return setup.missing(answers, existing if isinstance(existing, SmtpSettings) else None, secret_known, email)

    def next_question(self, answers: Mapping[str, Any], existing: Any, email: str) -> Question | None:
        return setup.next_question(answers, existing if isinstance(existing, SmtpSettings) else None, email)

    def needs_password(self, settings: Any, email: str) -> bool:
        return isinstance(settings, SmtpSettings) and settings.auth_username(email) is not None

    def normalize_secret(self, settings: Any, kind: str, value: str) -> str:
        """Google shows app passwords as `abcd efgh ijkl mnop`; the spaces are not part of it."""
        from xoromail_cli.credentials import normalize_password

        return normalize_password(settings.host, value) if isinstance(settings, SmtpSettings) else value

    def setup_notes(self, settings: Any) -> list[str]:
        note = setup.domain_username_note(settings.username) if isinstance(settings, SmtpSettings) else None
        return [note] if note else []

    def describe(self, profile: Profile) -> str:
        settings = smtp_settings(profile)
        return f"{settings.host}:{settings.port} ({settings.security})"

    def planned_stages(self, profile: Profile, send: bool) -> list[str]:
        settings = smtp_settings(profile)
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

        endpoint = SmtpEndpoint.from_profile(profile)
        check_plaintext_allowed(endpoint)
        if endpoint.security != "none":
            tls_context(endpoint.ca_file)

    def open_transport(self, profile: Profile, secrets: SecretStore, *, timeout: float | None = None,
                       trace: TraceCallback | None = None, validating: bool = False) -> Transport:
        from xoromail_cli.services.smtp.transport import SmtpTransport

        settings = smtp_settings(profile)
        password = None
        if settings.auth_username(profile.email):
            password = secrets.get("password")
            if not password:
                raise ConfigError(f"no password for profile {profile.name!r}",
                                  f"run `xoromail --profile {profile.name} setup`, or set $XOROMAIL_PASSWORD "
                                  "or password_command")
            password = self.normalize_secret(settings, "password", password)
        return SmtpTransport.for_profile(profile, password, timeout=timeout, trace=trace)

    def notes(self, profile: Profile) -> list[str]:
        from xoromail_cli.services.advisories import office365_smtp_auth
        from xoromail_cli.services.smtp.transport import is_loopback

        settings = smtp_settings(profile)
        notes = []
        preset = preset_for_profile(profile)
        if preset is not None and preset.key in ("office365", "outlook") and settings.auth_username(profile.email):
            notes.append(f"this account signs in with a password over SMTP AUTH; {office365_smtp_auth()}")
        if settings.security == "none" and not is_loopback(settings.host):
            notes.append(f"messages travel to {settings.host} unencrypted (security none); use starttls or ssl "
                         "unless the relay is on a trusted network")
        return notes

    def sign_in(self, profile: Profile, secrets: SecretStore, *, notify: Notify,
                answers: Mapping[str, Any]) -> SignInResult | None:
        return None

    def disconnect(self, profile: Profile, secrets: SecretStore) -> str:
        secrets.delete("password")
        return "the stored password was removed from the OS keyring"

    def limits(self, profile: Profile) -> Limits | None:
        preset = preset_for_profile(profile)
        if preset is None:
            return None
        return Limits(preset.label, preset.per_minute, preset.daily_messages, preset.daily_recipients,
                      preset.max_connections)


SERVICE = SmtpService()
