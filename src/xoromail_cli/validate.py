"""Prove a profile works, stage by stage, and return the result as data (never printing)."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xoromail_cli.addresses import parse_address
from xoromail_cli.config import Profile, validate_profile
from xoromail_cli.services.smtp.replies import stage_failure
from xoromail_cli.errors import ExitCode, StageFailedError, XoromailError
from xoromail_cli.mime import build_message, make_message_id
from xoromail_cli.transports import for_profile
from xoromail_cli.transports.base import Envelope


@dataclass
class Stage:
    name: str
    ok: bool
    detail: str
    hint: str | None = None
    seconds: float = 0.0


@dataclass
class ValidationReport:
    profile: str
    stages: list[Stage] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    exit_code: ExitCode = ExitCode.OK
    notes: list[str] = field(default_factory=list)
    """Things that work today but need attention soon (e.g. a provider retiring password sign-in)."""

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    @property
    def failed(self) -> Stage | None:
        return next((s for s in self.stages if not s.ok), None)

    def to_json(self) -> dict[str, Any]:
        failed = self.failed
        return {
            "ok": self.ok,
            "profile": self.profile,
            "stage": failed.name if failed else None,
            "hint": failed.hint if failed else None,
            "error": failed.detail if failed else None,
            "exit_code": int(self.exit_code),
            "stages": [{"name": s.name, "ok": s.ok, "detail": s.detail, "seconds": round(s.seconds, 3)}
                       for s in self.stages],
            "skipped": self.skipped,
            "notes": self.notes,
        }


def planned_stages(profile: Profile, send: bool) -> list[str]:
    connection = ["dns", "connect"]
    if profile.security == "ssl":
        connection += ["tls", "ehlo"]
    elif profile.security == "starttls":
        connection += ["ehlo", "tls"]
    else:
        connection += ["ehlo"]
    if profile.auth_username:
        connection.append("auth")
    return ["config", *connection, *(["send"] if send else [])]


def check_connection_settings(profile: Profile) -> None:
    """Refusals that need no network: a password in clear to a remote host, an unreadable CA file."""
    from xoromail_cli.services.smtp.transport import SmtpSettings, check_plaintext_allowed, tls_context

    settings = SmtpSettings.from_profile(profile)
    check_plaintext_allowed(settings)
    if settings.security != "none":
        tls_context(settings.ca_file)


def test_message(profile: Profile, to: str) -> Envelope:
    message_id = make_message_id(profile.email)
    data = build_message(
        display_name=profile.display_name, sender=profile.email, to=[to], message_id=message_id,
        subject=f"xoromail test message ({profile.name})",
        text=(f"This is a test message from xoromail for the profile {profile.name!r}.\n"
              f"It proves that {profile.email} can send through {profile.host}:{profile.port}.\n"
              "No action is needed.\n"),
    )
    return Envelope(profile.email, (to,), data, message_id)


def run(profile: Profile, get_password: Callable[[], str | None], *, to: str | None = None,
        send: bool = True, timeout: float | None = None) -> ValidationReport:
    """Check config, network, TLS, sign-in and (unless `send` is false) a real test message."""
    report = ValidationReport(profile.name)
    remaining = planned_stages(profile, send)
    started = time.monotonic()

    def passed(name: str, detail: str) -> None:
        nonlocal started
        now = time.monotonic()
        report.stages.append(Stage(name, True, detail, seconds=now - started))
        started = now
        if name in remaining:
            remaining.remove(name)

    def failed(stage: str, error: XoromailError) -> ValidationReport:
        report.stages.append(Stage(stage, False, error.message, error.hint, time.monotonic() - started))
        if stage in remaining:
            remaining.remove(stage)
        report.skipped = remaining
        report.exit_code = error.exit_code
        return report

    try:
        validate_profile(profile)
        check_connection_settings(profile)
        recipient = parse_address(to, "--to") if to else profile.email
        password = get_password() if profile.auth_username else None
    except XoromailError as error:
        return failed("config", error)
    passed("config", f"profile {profile.name!r}: {profile.email} via {profile.host}:{profile.port} "
                     f"({profile.security})")
    transport = for_profile(profile, password, timeout=timeout)
    try:
        try:
            transport.open(passed)
        except StageFailedError as error:
            return failed(error.stage, error)
        except XoromailError as error:
            return failed("config", error)
        if send:
            envelope = test_message(profile, recipient)
            try:
                delivery = transport.send(envelope)
            except (OSError, smtplib.SMTPException) as exc:
                return failed("send", stage_failure("send", exc, profile.host, profile.port,
                                                    timeout or profile.timeout))
            if not delivery.ok:
                return failed("send", StageFailedError("send", f"server replied: {delivery.reply}",
                                                       delivery.hint, ExitCode(delivery.exit_code)))
            passed("send", f"test message to {recipient} accepted: {delivery.reply}")
    finally:
        transport.close()
    report.skipped = remaining
    report.notes = notes_for(profile)
    return report


def notes_for(profile: Profile) -> list[str]:
    """What a passing check should still tell the user about this account's future."""
    from xoromail_cli.advisories import office365_smtp_auth
    from xoromail_cli.presets import preset_for_profile
    from xoromail_cli.services.smtp.transport import is_loopback

    notes = []
    preset = preset_for_profile(profile)
    if preset is not None and preset.key in ("office365", "outlook") and profile.auth_username:
        notes.append(f"this account signs in with a password over SMTP AUTH; {office365_smtp_auth()}")
    if profile.security == "none" and not is_loopback(profile.host):
        notes.append(f"messages travel to {profile.host} unencrypted (security none); use starttls or ssl "
                     "unless the relay is on a trusted network")
    return notes
