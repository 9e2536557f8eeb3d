"""Prove a profile works, stage by stage, and return the result as data (never printing).

The stages are the service's own (SMTP: dns, connect, ehlo, tls, auth; an HTTP service: its sign-in and
token stages); the report has the same shape for every service.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xoromail_cli import services
from xoromail_cli.addresses import parse_address
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.compose.mime import build_message, make_message_id
from xoromail_cli.config import validate_profile
from xoromail_cli.errors import ExitCode, StageFailedError, XoromailError
from xoromail_cli.profile import Profile

if TYPE_CHECKING:
    from xoromail_cli.services.base import SecretStore, TraceCallback


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
    service: str = "smtp"
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
            "schema": 2,
            "ok": self.ok,
            "profile": self.profile,
            "service": self.service,
            "stage": failed.name if failed else None,
            "hint": failed.hint if failed else None,
            "error": failed.detail if failed else None,
            "exit_code": int(self.exit_code),
            "stages": [{"name": s.name, "ok": s.ok, "detail": s.detail, "seconds": round(s.seconds, 3)}
                       for s in self.stages],
            "skipped": self.skipped,
            "notes": self.notes,
        }


def check_connection_settings(profile: Profile) -> None:
    """Refusals that need no network: a password in clear to a remote host, an unreadable CA file."""
    services.for_profile(profile).check_offline(profile)


def test_message(profile: Profile, to: str) -> Envelope:
    message_id = make_message_id(profile.email)
    where = services.for_profile(profile).describe(profile)
    data = build_message(
        display_name=profile.display_name, sender=profile.email, to=[to], message_id=message_id,
        subject=f"xoromail test message ({profile.name})",
        text=(f"This is a test message from xoromail for the profile {profile.name!r}.\n"
              f"It proves that {profile.email} can send through {where}.\n"
              "No action is needed.\n"),
    )
    return Envelope(profile.email, (to,), data, message_id)


def run(profile: Profile, secrets: SecretStore, *, to: str | None = None, send: bool = True,
        timeout: float | None = None, trace: TraceCallback | None = None,
        check_domain: bool = True) -> ValidationReport:
    """Check config, network, TLS, sign-in and (unless `send` is false) a real test message; a passing check
    also notes what the sender's domain says in DNS (`check_domain`) and a certificate near its expiry."""
    report = ValidationReport(profile.name, profile.service)
    service = services.for_profile(profile)
    remaining = service.planned_stages(profile, send)
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
        service.check_offline(profile)
        recipient = parse_address(to, "--to") if to else profile.email
        transport = service.open_transport(profile, secrets, timeout=timeout, trace=trace, validating=True)
    except XoromailError as error:
        return failed("config", error)
    passed("config", f"profile {profile.name!r}: {profile.email} via {service.describe(profile)}")
    if ledger_is_shared(profile):
        remaining.insert(0, "ledger")
        try:
            passed("ledger", check_shared_ledger(profile, secrets, timeout or profile.timeout))
        except XoromailError as error:
            transport.close()
            return failed("ledger", error)
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
            except XoromailError as error:
                return failed("send", error)
            if not delivery.ok:
                return failed("send", StageFailedError("send", f"server replied: {delivery.reply}",
                                                       delivery.hint, ExitCode(delivery.exit_code)))
            passed("send", f"test message to {recipient} accepted: {delivery.reply}")
    finally:
        transport.close()
    report.skipped = remaining
    report.notes = [*service.notes(profile), *_certificate_notes(transport),
                    *(_domain_notes(profile) if check_domain else [])]
    return report


def ledger_is_shared(profile: Profile) -> bool:
    from xoromail_cli.sending.plan import ledger_location

    return ledger_location(profile).is_postgres


def check_shared_ledger(profile: Profile, secrets: SecretStore, timeout: float) -> str:
    """A PostgreSQL ledger must be reachable, or `send` would stop before its first message: prove it now."""
    from xoromail_cli.ledger.location import SECRET_KIND, redact
    from xoromail_cli.ledger.postgres import PostgresLedger
    from xoromail_cli.sending.plan import ledger_location

    found = ledger_location(profile)
    assert found.url is not None
    password = found.password or secrets.get(SECRET_KIND)
    PostgresLedger(found.url, password=password, connect_timeout=min(timeout, 30.0)).close()
    return f"the shared ledger {redact(found.url)} answers (schema ready)"


def _certificate_notes(transport: object) -> list[str]:
    """A server certificate that expires within 30 days is named with its date (SMTP knows it after TLS)."""
    certificate = getattr(transport, "peer_certificate", None)
    host = getattr(getattr(transport, "settings", None), "host", "the server")
    if not certificate:
        return []
    from datetime import UTC, datetime

    from xoromail_cli.domain.certs import certificate_expiry_note, not_after_of

    try:
        note = certificate_expiry_note(not_after_of(certificate), host, now=datetime.now(UTC))
    except (KeyError, ValueError):
        return []
    return [note] if note else []


def _domain_notes(profile: Profile) -> list[str]:
    """SPF / DKIM / DMARC of the From domain, as notes (bounded, never a failure)."""
    from xoromail_cli.domain.notes import deliverability_notes

    return deliverability_notes(profile)


def notes_for(profile: Profile) -> list[str]:
    """What a passing check should still tell the user about this account's future."""
    return services.for_profile(profile).notes(profile)
