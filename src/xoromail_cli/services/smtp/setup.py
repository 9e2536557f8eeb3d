"""SMTP's part of `setup`: its flags, its wizard questions, and how answers become `SmtpSettings`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xoromail_cli.errors import UsageError
from xoromail_cli.services.base import Question, SetupOption
from xoromail_cli.services.smtp.presets import CUSTOM, PRESETS, Preset, preset_for_domain, preset_for_host, preset_notes
from xoromail_cli.services.smtp.settings import DEFAULT_PORTS, SECURITY_MODES, SmtpSettings

SECURITY_HELP = "starttls (port 587), ssl (implicit TLS, port 465) or none (local relays only)."
OPTIONS = (
    SetupOption(flag="--preset", key="preset", help=f"{', '.join(PRESETS)} or custom.", metavar="NAME"),
    SetupOption(flag="--host", key="host", help="Outgoing (SMTP) server.", metavar="HOST"),
    SetupOption(flag="--port", key="port", help="Server port.", metavar="PORT", kind="int"),
    SetupOption(flag="--security", key="security", help=SECURITY_HELP, metavar="MODE"),
    SetupOption(flag="--username", key="username", help="Sign-in name (default: the email).", metavar="USER"),
)


def choose_preset(answers: Mapping[str, Any], existing: SmtpSettings | None, email: str | None) -> Preset | None:
    """The preset named, else the one the host implies, else (new profiles) the one the email's domain implies."""
    named = answers.get("preset")
    if named:
        key = str(named).lower()
        if key == CUSTOM:
            return None
        if key not in PRESETS:
            raise UsageError(f"unknown preset {named!r}", f"choose one of: {', '.join([*PRESETS, CUSTOM])}")
        return PRESETS[key]
    if answers.get("host"):
        return preset_for_host(str(answers["host"]))
    if existing is not None:
        return None
    return preset_for_domain(email) if email else None


def _security(answers: Mapping[str, Any], existing: SmtpSettings | None, preset: Preset | None) -> str:
    security = answers.get("security")
    if security is None:
        port = answers.get("port")
        port_only_change = existing is not None and not answers.get("host") and not answers.get("preset")
        if port and not port_only_change:
            return "ssl" if port == 465 else "starttls"
        if port_only_change and port in (465, 587):
            return "ssl" if port == 465 else "starttls"  # the standard ports decide, as the docs say
        return preset.security if preset else (existing.security if existing else "starttls")
    security = str(security).lower()
    if security not in SECURITY_MODES:
        raise UsageError(f"--security must be one of {', '.join(SECURITY_MODES)}, not {security!r}",
                         "starttls for port 587, ssl for port 465")
    return security


def build_settings(answers: Mapping[str, Any], existing: SmtpSettings | None, email: str) -> SmtpSettings:
    """Merge answers over the preset over the existing settings; raise on anything invalid."""
    preset = choose_preset(answers, existing, email)
    host = answers.get("host") or (preset.host if preset else (existing.host if existing else ""))
    if not host:
        raise UsageError("an outgoing server is required", "pass --host or --preset")
    host = str(host).strip()
    security = _security(answers, existing, preset)
    port = answers.get("port")
    if port is None and preset is not None and preset.security == security:
        port = preset.port
    if port is None and existing is not None and existing.security == security and host == existing.host:
        port = existing.port
    port = int(port or DEFAULT_PORTS[security])
    username = answers.get("username")
    username = str(username) if username is not None else (existing.username if existing else "")
    if answers.get("login") == "none":  # the wizard's explicit "no sign-in"
        username = ""
    if username and username.strip().lower() == email.lower() and security != "none":
        username = ""
    preset_key = preset.key if preset else (CUSTOM if answers.get("host") else (existing.preset if existing else None))
    settings = SmtpSettings(host=host, port=port, security=security, username=username or "", preset=preset_key)
    settings.check()
    return settings


def missing(answers: Mapping[str, Any], existing: SmtpSettings | None, secret_known: bool,
            email: str | None) -> list[str]:
    preset = choose_preset(answers, existing, email)
    need = []
    if not (answers.get("host") or preset or existing):
        need.append("--host (or --preset)")
    security = answers.get("security") or (existing.security if existing else None)
    username = answers.get("username") if answers.get("username") is not None else (
        existing.username if existing else "")
    if not secret_known and not (security == "none" and not username):
        need.append("--password-stdin (or --password-command, or $XOROMAIL_PASSWORD)")
    if preset is not None and preset.key == "acs" and not username:
        need.append("--username (the name of the ACS \"SMTP Username\" resource, not the email address)")
    return need


def _check_host(text: str) -> str:
    host = text.strip()
    if not host or any(c.isspace() for c in host):
        raise UsageError(f"{text!r} is not a server name", "e.g. smtp.office365.com, without spaces")
    return host


def _check_port(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"{text!r} is not a port", "a number from 1 to 65535: 587 for STARTTLS, 465 for SSL")
    return int(text)


def domain_username_note(username: str) -> str | None:
    """`DOMAIN\\user` is the on-premises Exchange form; Microsoft 365 and most providers refuse it."""
    if "\\" not in username:
        return None
    return (f"the username {username} is in the DOMAIN\\user form: Microsoft 365 (smtp.office365.com) and most "
            "providers sign in with the full email address (e.g. billing@company.com); keep it only for an "
            "on-premises Exchange server that asks for it")


def next_question(answers: Mapping[str, Any], existing: SmtpSettings | None, email: str) -> Question | None:
    """Provider first (presets fill the rest), then the server for a custom one, then the username."""
    if answers.get("preset") is None and answers.get("host") is None:
        keys = (*PRESETS, CUSTOM)
        guess = preset_for_domain(email)
        default = existing.preset if existing and existing.preset in keys else (guess.key if guess else keys[0])
        labels = tuple(PRESETS[k].label if k in PRESETS else "Other server (enter host and port)" for k in keys)
        return Question(key="preset", prompt="Provider", default=default, choices=keys, labels=labels)
    chosen = PRESETS.get(str(answers.get("preset") or ""))
    if chosen is None:
        if not answers.get("host"):
            return Question(key="host", prompt="Outgoing server", default=existing.host if existing else None,
                            check=_check_host)
        if answers.get("security") is None:
            return Question(key="security", prompt="Security", default=existing.security if existing else "starttls",
                            choices=SECURITY_MODES)
        if answers.get("port") is None:
            default_port = existing.port if existing else DEFAULT_PORTS[str(answers["security"])]
            return Question(key="port", prompt="Port", default=str(default_port), check=_check_port)
    if answers.get("username") is None:
        security = answers.get("security") or (chosen.security if chosen else None) or (
            existing.security if existing else "")
        if security == "none" and answers.get("login") is None:  # a relay: whether to sign in is a choice
            signs_in = existing is not None and bool(existing.username)
            return Question(key="login", prompt="Sign-in", default="password" if signs_in else "none",
                            choices=LOGIN_CHOICES, labels=LOGIN_LABELS)
        if answers.get("login") == "none":
            return None
        suggested = (existing.username or email) if existing else email
        explain = preset_notes(chosen) if chosen is not None and chosen.notes else None
        return Question(key="username", prompt="Username", default=suggested, explain=explain, check=str.strip,
                        remark=domain_username_note)
    return None


LOGIN_CHOICES = ("none", "password")
LOGIN_LABELS = ("no sign-in: the server accepts mail from this host without one (a local relay)",
                "sign in with a username and password")
