"""`xoromail send` without the CLI: plan (check everything), then execute (lock, ledger, transport, Sender)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xoromail_cli import paths
from xoromail_cli.batch import InvalidRow, SendJob, check_batch, jobs_from_file, make_job
from xoromail_cli.config import Profile
from xoromail_cli.errors import UsageError
from xoromail_cli.events import Event
from xoromail_cli.messages import Renderer
from xoromail_cli.pacing import Backoff, RateLimiter, now, parse_duration, parse_rate
from xoromail_cli.results import MessageResult, Summary
from xoromail_cli.sending import Sender

if TYPE_CHECKING:
    from xoromail_cli.ledger import Ledger
    from xoromail_cli.services.base import Limits, Transport


def ledger_path(profile: Profile) -> Path:
    return Path(profile.ledger).expanduser() if profile.ledger else paths.state_dir() / "ledger.sqlite3"


def lock_path(profile: Profile) -> Path:
    return ledger_path(profile).parent / "locks" / f"{profile.name}.lock"


def templates_dir(profile: Profile | None) -> Path:
    if profile is not None and profile.templates_dir:
        return Path(profile.templates_dir).expanduser()
    return paths.default_templates_dir()


def messages_per_second(profile: Profile, option: str | None) -> float | None:
    """--rate, else the profile's `rate`, else the provider's published limit, else unlimited."""
    if option:
        return parse_rate(option)
    if profile.rate:
        return parse_rate(profile.rate)
    limits = provider_limits(profile)
    if limits is not None and limits.per_minute:
        return limits.per_minute / 60.0
    return None


def connections_for(profile: Profile, option: int | None, on_warning: Callable[[str], None]) -> int:
    """--connections, else the profile's `connections`, else 1; never more than the provider allows."""
    wanted = option or profile.connections or 1
    limits = provider_limits(profile)
    cap = limits.max_connections if limits is not None else None
    if cap is not None and wanted > cap:
        on_warning(f"{limits.label if limits else 'the provider'} allows {cap} connection{'s' if cap != 1 else ''} "
                   f"at a time; sending over {cap} instead of {wanted}")
        return cap
    return wanted


def provider_limits(profile: Profile) -> Limits | None:
    from xoromail_cli import services

    return services.for_profile(profile).limits(profile)


@dataclass
class BatchSource:
    """A batch file checked once up front, then streamed again for sending."""

    event: Event
    path: Path
    defaults: dict[str, Any]
    skip_invalid: bool
    header_variables: frozenset[str] = frozenset()
    reply_to: str | None = None
    total: int = 0
    recipients: int = 0
    invalid_count: int = 0

    def check(self) -> list[InvalidRow]:
        """First pass: stop on a bad row unless --skip-invalid; returns the bad rows to report."""
        found = check_batch(self.event, self.path, self.defaults, self.header_variables, self.reply_to)
        self.total, self.recipients, self.invalid_count = found.valid, found.recipients, found.invalid_count
        if found.invalid and not self.skip_invalid:
            first = found.invalid[0].error
            more = found.invalid_count - 1
            suffix = f" (and {more} more invalid row{'s' if more != 1 else ''})" if more else ""
            raise type(first)(f"row {found.invalid[0].row}: {first.message}{suffix}; nothing was sent",
                              (first.hint or "") + "; or pass --skip-invalid to send the valid rows",
                              exit_code=first.exit_code)
        return found.invalid

    def __iter__(self) -> Iterator[SendJob | InvalidRow]:
        return jobs_from_file(self.event, self.path, self.defaults, self.header_variables, self.reply_to)


@dataclass
class SendPlan:
    """One `xoromail send` run, fully checked before anything is sent."""

    profile: Profile
    event: Event
    renderer: Renderer
    jobs: Iterable[SendJob | InvalidRow]
    total: int
    recipients: int
    is_batch: bool
    invalid: Sequence[InvalidRow] = ()


@dataclass(frozen=True)
class SendOptions:
    dry_run: bool = False
    outbox: Path | None = None
    retries: int = 3
    retry_delay: float = 2.0
    rate: str | None = None
    wait: float = 0.0
    timeout: float | None = None
    subject: str | None = None
    key_template: str | None = None
    resend: bool = False
    resend_after: str | None = None
    connections: int | None = None

    @property
    def really_sends(self) -> bool:
        return not self.dry_run and self.outbox is None


def plan_send(profile: Profile, event: Event, *, variables: dict[str, Any], to: Sequence[str] = (),
              cc: Sequence[str] = (), bcc: Sequence[str] = (), attach: Sequence[str] = (),
              reply_to: str | None = None, subject: str | None = None, batch: Path | None = None,
              skip_invalid: bool = False) -> SendPlan:
    """Check one message, or read a whole batch once, so that bad input stops the run before it sends."""
    renderer = Renderer(profile, templates_dir(profile))
    header_variables = frozenset() if subject is not None else renderer.subject_variables(event)
    if batch is not None:
        if to or cc or bcc or attach:
            raise UsageError("--to, --cc, --bcc and --attach go in the batch file's columns, not beside --batch",
                             "add them as columns: to, cc, bcc, attach")
        source = BatchSource(event, batch, variables, skip_invalid, header_variables, reply_to)
        invalid = source.check()
        return SendPlan(profile, event, renderer, source, source.total + source.invalid_count, source.recipients,
                        is_batch=True, invalid=invalid)
    if not to:
        raise UsageError("no recipient", "pass --to ADDR, or --batch FILE")
    job = make_job(event, 0, to=to, cc=cc, bcc=bcc, variables=variables, attach=attach, reply_to=reply_to,
                   header_variables=header_variables)
    return SendPlan(profile, event, renderer, [job], 1, len(job.recipients.envelope), is_batch=False)


def execute(plan: SendPlan, options: SendOptions, on_result: Callable[[MessageResult], None],
            on_warning: Callable[[str], None]) -> Summary:
    """Send (or preview, or write out) a plan: lock, ledger, quota warning and transport, then the Sender."""
    from xoromail_cli import credentials, services

    profile = plan.profile
    resend_after = parse_duration(options.resend_after) if options.resend_after else None
    rate = messages_per_second(profile, options.rate)
    per_second = rate if options.really_sends else None
    with ExitStack() as stack:
        ledger: Ledger | None = None
        transports: list[Transport] = []
        watch: QuotaWatch | None = None
        if options.really_sends:
            from xoromail_cli.ledger import Ledger
            from xoromail_cli.locking import ProfileLock
            from xoromail_cli.sending_parallel import RememberedSecrets

            stack.enter_context(ProfileLock(lock_path(profile), options.wait))
            ledger = stack.enter_context(Ledger(ledger_path(profile)))
            watch = QuotaWatch(profile, ledger, on_warning)
            connections = connections_for(profile, options.connections, on_warning) if plan.is_batch else 1
            secrets = RememberedSecrets(credentials.Secrets(profile))
            transports = [services.open_transport(profile, secrets, timeout=options.timeout)
                          for _ in range(connections)]
        elif options.outbox is not None and not options.dry_run:
            transports = [services.open_transport(profile, credentials.Secrets(profile), outbox=options.outbox)]
        sender = Sender(profile, plan.event, plan.renderer, transports[0] if transports else None, ledger,
                        retries=options.retries, backoff=Backoff(base=options.retry_delay),
                        rate=RateLimiter(per_second), subject=options.subject, key_template=options.key_template,
                        resend=options.resend, resend_after=resend_after, on_result=on_result,
                        before_delivery=watch)
        if len(transports) > 1:
            from xoromail_cli.sending_parallel import run_parallel

            return run_parallel(sender, transports, lambda: Ledger(ledger_path(profile)), plan.jobs, plan.invalid,
                                on_warning)
        return sender.run(plan.jobs, plan.invalid)


def quota_warnings(profile: Profile, sent: tuple[int, int], messages: int, recipients: int) -> list[str]:
    """What passing the provider's daily limits would mean: `sent` is (messages, recipients) of the last
    24 hours; `messages` and `recipients` are what this run has gone on to send."""
    return list(_quota_overruns(profile, sent, messages, recipients).values())


def _quota_overruns(profile: Profile, sent: tuple[int, int], messages: int, recipients: int) -> dict[str, str]:
    """Each daily limit passed ("messages", "recipients") with the warning that says so."""
    preset = provider_limits(profile)
    if preset is None:
        return {}
    sent_messages, sent_recipients = sent
    warnings: dict[str, str] = {}
    if preset.daily_messages and sent_messages + messages > preset.daily_messages:
        warnings["messages"] = (f"{preset.label} allows about {preset.daily_messages:,} messages a day; "
                                f"{sent_messages:,} were sent in the last 24 hours and this run is sending its "
                                f"{messages:,}th: the provider may start refusing")
    if preset.daily_recipients and sent_recipients + recipients > preset.daily_recipients:
        warnings["recipients"] = (f"{preset.label} allows {preset.daily_recipients:,} recipients a day; "
                                  f"{sent_recipients:,} in the last 24 hours plus {recipients:,} in this run")
    return warnings


class QuotaWatch:
    """Warns once, at the message that passes a daily limit: rows skipped as already sent never count."""

    def __init__(self, profile: Profile, ledger: Ledger, on_warning: Callable[[str], None]) -> None:
        self._profile, self._on_warning = profile, on_warning
        self._sent = ledger.count_since(profile.name, now() - timedelta(days=1))
        self._messages = self._recipients = 0
        self._warned: set[str] = set()
        self._lock = threading.Lock()  # shared by the connections of a parallel run

    def __call__(self, recipients: int) -> None:
        with self._lock:
            self._messages += 1
            self._recipients += recipients
            overruns = _quota_overruns(self._profile, self._sent, self._messages, self._recipients)
            fresh = [warning for kind, warning in overruns.items() if kind not in self._warned]
            self._warned.update(overruns)
        for warning in fresh:
            self._on_warning(warning)
