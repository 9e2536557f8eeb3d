"""`setup` without the prompts: turn answers (flags or wizard) into a checked profile, and save it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xoromail_cli import config, credentials
from xoromail_cli.addresses import parse_address
from xoromail_cli.config import Profile
from xoromail_cli.errors import ConfigError, NoInputError, UsageError
from xoromail_cli.presets import CUSTOM, PRESETS, Preset, preset_for_domain, preset_for_host

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
EXTRA_SETTINGS = ("company_name", "reply_to", "signature", "currency", "templates_dir", "ledger", "rate")
OPTION_NAMES = {"email": "--email", "display_name": "--display-name", "host": "--host (or --preset)",
                "password": "--password-stdin (or --password-command, or $XOROMAIL_PASSWORD)"}


@dataclass
class SetupAnswers:
    """What the user told us; None means "not given" (so existing values or presets fill it)."""

    service: str | None = None
    preset: str | None = None
    email: str | None = None
    display_name: str | None = None
    host: str | None = None
    port: int | None = None
    security: str | None = None
    username: str | None = None
    ca_file: str | None = None
    password_command: str | None = None
    timeout: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def choose_preset(answers: SetupAnswers, existing: Profile | None = None) -> Preset | None:
    """The preset named, else the one the email's domain or the host implies."""
    if answers.preset:
        key = answers.preset.lower()
        if key == CUSTOM:
            return None
        if key not in PRESETS:
            raise UsageError(f"unknown preset {answers.preset!r}",
                             f"choose one of: {', '.join([*PRESETS, CUSTOM])}")
        return PRESETS[key]
    if answers.host:
        return preset_for_host(answers.host)
    if existing is not None:
        return None
    return preset_for_domain(answers.email) if answers.email else None


def missing(answers: SetupAnswers, existing: Profile | None, password_known: bool) -> list[str]:
    """The options a non-interactive run still needs (empty when the answers are complete)."""
    preset = choose_preset(answers, existing)
    security = answers.security or (existing.security if existing else None)
    username = answers.username if answers.username is not None else (existing.username if existing else "")
    password_known = password_known or (security == "none" and not username)
    have = {
        "email": answers.email or (existing and existing.email),
        "display_name": answers.display_name is not None or (existing and existing.display_name),
        "host": answers.host or preset or (existing and existing.host),
        "password": password_known or answers.password_command or (existing and existing.password_command),
    }
    return [OPTION_NAMES[key] for key, value in have.items() if not value]


def build_profile(name: str, answers: SetupAnswers, existing: Profile | None = None, *,
                  new_password: bool = False) -> Profile:
    """Merge answers over the preset over the existing profile; raise on anything invalid.

    A newly given password replaces the profile's `password_command`, so what was validated is what is used.
    """
    service = config.normalize_service(answers.service or (existing.service if existing else "smtp"))
    preset = choose_preset(answers, existing)
    base = existing or Profile(name=name, email="", host="", port=0)
    email = answers.email or base.email
    if not email:
        raise UsageError("an email address is required", "pass --email")
    email = parse_address(email, "--email")
    host = answers.host or (preset.host if preset else base.host)
    if not host:
        raise UsageError("an outgoing server is required", "pass --host or --preset")
    security = answers.security
    if security is None:
        if answers.port and not (existing and not answers.host and not answers.preset):
            security = "ssl" if answers.port == 465 else "starttls"
        else:
            security = preset.security if preset else (base.security if existing else "starttls")
    if security not in config.SECURITY_MODES:
        raise UsageError(f"--security must be one of {', '.join(config.SECURITY_MODES)}, not {security!r}",
                         "starttls for port 587, ssl for port 465")
    port = answers.port
    if port is None and preset is not None and preset.security == security:
        port = preset.port
    if port is None and existing is not None and base.security == security and host == base.host:
        port = base.port
    port = port or DEFAULT_PORTS[security]
    username = answers.username if answers.username is not None else base.username
    if username and username.strip().lower() == email.lower() and security != "none":
        username = ""
    ca_file = answers.ca_file if answers.ca_file is not None else base.ca_file
    if ca_file:
        ca_path = Path(ca_file).expanduser()
        if not ca_path.is_file():
            problem = "is a folder" if ca_path.is_dir() else "does not exist"
            raise NoInputError(f"CA file {ca_file} {problem}", "pass a PEM file with --ca-file")
        ca_file = str(ca_path.resolve())
    profile = dataclasses.replace(
        base, name=name, service=service, email=email, host=host.strip(), port=port, security=security,
        display_name=answers.display_name if answers.display_name is not None else base.display_name,
        username=username or "", preset=preset.key if preset else (CUSTOM if answers.host else base.preset),
        ca_file=ca_file or None,
        password_command=answers.password_command or (None if new_password else base.password_command),
        timeout=answers.timeout or base.timeout or 30.0,
        **{key: value or None for key, value in answers.settings.items() if key in EXTRA_SETTINGS},
    )
    return config.validate_profile(profile)


def save(config_path: Path, profile: Profile, password: str | None) -> None:
    """Store the password in the keyring first (it can refuse), then the settings, atomically."""
    if password is not None:
        credentials.store_password(profile.name, password)
    elif profile.password_command:
        credentials.forget_password(profile.name)
    try:
        config.save_profile(config_path, profile)
    except OSError as exc:
        raise ConfigError(f"cannot write {config_path}: {exc.strerror}",
                          "check the folder's permissions, or choose another file with --config") from None
