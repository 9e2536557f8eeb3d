"""Prove a profile works, stage by stage, and return the result as data (never printing).

The stages are the service's own (SMTP: dns, connect, ehlo, tls, auth; an HTTP service: its sign-in and
token stages); the report has the same shape for every service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    from xoromail_cli.services.base import SecretStore, TraceCallback, Transport


@dataclass(kw_only=True)
class Stage:
    name: str
    ok: bool
    detail: str
    hint: str | None = None
    seconds: float = 0.0


StageCallback = Callable[[str, "Stage | None"], None]
"""Told of each stage as it goes: (name, None) when it starts, (name, the Stage) when it ends. The stage named
"domain" (what the sender's domain says in DNS, after a passing check) is told but is not in the report."""


def _ignore(name: str, outcome: Stage | None) -> None:
    """No one watches the stages."""


@dataclass(kw_only=True)
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
    return Envelope(sender=profile.email, to=(to,), data=data, message_id=message_id)


class _Progress:
    """The report as the stages go: each passed or failed stage timed, the planned ones not reached skipped."""

    def __init__(self, report: ValidationReport, planned: list[str], on_stage: StageCallback) -> None:
        self.report, self.remaining, self._on_stage = report, planned, on_stage
        self._started = time.monotonic()
        self._running: str | None = None

    def start_next(self) -> None:
        """The next planned stage is under way (told once)."""
        if self.remaining and self.remaining[0] != self._running:
            self._running = self.remaining[0]
            self._on_stage(self._running, None)

    def passed(self, name: str, detail: str) -> None:
        moment = time.monotonic()
        stage = Stage(name=name, ok=True, detail=detail, seconds=moment - self._started)
        self.report.stages.append(stage)
        self._started = moment
        if name in self.remaining:
            self.remaining.remove(name)
        self._on_stage(name, stage)
        self.start_next()

    def failed(self, name: str, error: XoromailError) -> ValidationReport:
        stage = Stage(name=name, ok=False, detail=error.message, hint=error.hint,
                      seconds=time.monotonic() - self._started)
        self.report.stages.append(stage)
        if name in self.remaining:
            self.remaining.remove(name)
        self.report.skipped = self.remaining
        self.report.exit_code = error.exit_code
        self._on_stage(name, stage)
        return self.report


def run(profile: Profile, secrets: SecretStore, *, to: str | None = None, send: bool = True,
        timeout: float | None = None, trace: TraceCallback | None = None,
        check_domain: bool = True, on_stage: StageCallback | None = None) -> ValidationReport:
    """Check config, network, TLS, sign-in and (unless `send` is false) a real test message; a passing check
    also notes what the sender's domain says in DNS (`check_domain`) and a certificate near its expiry.
    `on_stage` is told of each stage as it starts and ends (the CLI shows them while they run)."""
    report = ValidationReport(profile=profile.name, service=profile.service)
    service = services.for_profile(profile)
    progress = _Progress(report, service.planned_stages(profile, send), on_stage or _ignore)
    progress.start_next()
    try:
        validate_profile(profile)
        service.check_offline(profile)
        recipient = parse_address(to, "--to") if to else profile.email
        transport = service.open_transport(profile, secrets, timeout=timeout, trace=trace, validating=True)
    except XoromailError as error:
        return progress.failed("config", error)
    if ledger_is_shared(profile):  # a stage of its own, right after config
        progress.remaining.insert(1, "ledger")
    progress.passed("config", f"profile {profile.name!r}: {profile.email} via {service.describe(profile)}")
    try:
        failure = (_check_ledger(profile, secrets, timeout or profile.timeout, progress)
                   or _open_and_send(transport, profile, recipient if send else None, progress))
    finally:
        transport.close()
    if failure is not None:
        _learn(profile, failure)
        failure.notes = _expiry_notes(profile, secrets)  # what expired is often why it failed
        return failure
    report.skipped = progress.remaining
    notes = [*service.notes(profile), *_certificate_notes(transport)]
    notes += [note for note in _expiry_notes(profile, secrets) if note not in notes]
    report.notes = [*notes, *(_domain_notes(profile, on_stage or _ignore) if check_domain else [])]
    return report


def _learn(profile: Profile, report: ValidationReport) -> None:
    """An expiry the failure told us about (AADSTS7000222: the client secret) becomes a note from now on."""
    failed = report.failed
    if failed is not None:
        from xoromail_cli.services import expiry

        expiry.learn_from_error(profile, failed.detail)


def _expiry_notes(profile: Profile, secrets: SecretStore) -> list[str]:
    """What expires soon (certificates, secrets, sign-ins), each with its date and renewing command."""
    from xoromail_cli.services import expiry

    return expiry.texts(expiry.notes_for(profile, secrets=secrets))


def refused_sign_in(profile: Profile, error: XoromailError) -> ValidationReport:
    """An interactive sign-in refused before any check ran (setup's Connect and Allow), as a failed report: config
    passed, the sign-in stage failed, the service's later stages not reached."""
    service = services.for_profile(profile)
    stage = getattr(error, "stage", "sign-in")
    return ValidationReport(
        profile=profile.name, service=profile.service, exit_code=error.exit_code,
        stages=[Stage(name="config", ok=True, detail=f"{profile.email} via {service.describe(profile)}"),
                Stage(name=stage, ok=False, detail=error.message, hint=error.hint)],
        skipped=[name for name in service.planned_stages(profile, True)
                 if name not in ("config", stage, "sign-in", "token")])


def _check_ledger(profile: Profile, secrets: SecretStore, timeout: float,
                  progress: _Progress) -> ValidationReport | None:
    """A shared ledger is a stage of its own: `send` could not start without it."""
    if "ledger" not in progress.remaining:
        return None
    try:
        progress.passed("ledger", check_shared_ledger(profile, secrets, timeout))
    except XoromailError as error:
        return progress.failed("ledger", error)
    return None


def _open_and_send(transport: Transport, profile: Profile, recipient: str | None,
                   progress: _Progress) -> ValidationReport | None:
    """The service's own stages (connect, TLS, sign-in, …), then the test message to `recipient` (if any)."""
    try:
        transport.open(progress.passed)
    except StageFailedError as error:
        return progress.failed(error.stage, error)
    except XoromailError as error:
        return progress.failed("config", error)
    if recipient is None:
        return None
    try:
        delivery = transport.send(test_message(profile, recipient))
    except XoromailError as error:
        return progress.failed("send", error)
    if not delivery.ok:
        return progress.failed("send", StageFailedError("send", f"server replied: {delivery.reply}",
                                                        delivery.hint, ExitCode(delivery.exit_code)))
    progress.passed("send", f"test message to {recipient} accepted: {delivery.reply}")
    return None


def ledger_is_shared(profile: Profile) -> bool:
    from xoromail_cli import ledger

    return ledger.is_shared(profile)


def check_shared_ledger(profile: Profile, secrets: SecretStore, timeout: float) -> str:
    """A PostgreSQL ledger must be reachable, or `send` would stop before its first message: prove it now."""
    from xoromail_cli import ledger

    return ledger.prove_shared(profile, secrets.get, timeout)


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


def _domain_notes(profile: Profile, on_stage: StageCallback) -> list[str]:
    """SPF / DKIM / DMARC of the From domain, as notes (bounded, never a failure)."""
    from xoromail_cli.domain.notes import deliverability_notes

    started = time.monotonic()
    on_stage("domain", None)
    notes = deliverability_notes(profile)
    on_stage("domain", Stage(name="domain", ok=True, seconds=time.monotonic() - started,
                             detail=f"SPF, DKIM and DMARC of {profile.email.rpartition('@')[2]} looked up"))
    return notes
