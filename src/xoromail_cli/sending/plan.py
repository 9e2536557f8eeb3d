"""`xoromail send` without the CLI: plan (check everything), then execute (limits, lock, ledger, transport, Sender).

Only `send` comes here: validate and the relay enter the engine through `ledger.open_for_sending` and
`sending.limits`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xoromail_cli import ledger as ledger_doors
from xoromail_cli.compose.events import Event
from xoromail_cli.compose.render import Renderer, templates_dir_of
from xoromail_cli.errors import UsageError
from xoromail_cli.pacing import Backoff, RateLimiter, pacing_notice, parse_duration
from xoromail_cli.profile import Profile
from xoromail_cli.sending.batch import InvalidRow, SendJob, check_batch, jobs_from_file, make_job
from xoromail_cli.sending.deliverer import Deliverer
from xoromail_cli.sending.limits import QuotaWatch, RunLimits
from xoromail_cli.sending.results import MessageResult, Summary
from xoromail_cli.sending.sender import Sender

if TYPE_CHECKING:
    from xoromail_cli.ledger.sqlite import SentLedger
    from xoromail_cli.services.base import Transport


@dataclass(kw_only=True)
class BatchSource:
    """A batch file checked once up front, then streamed again for sending."""

    event: Event
    path: Path
    defaults: dict[str, Any]
    skip_invalid: bool
    header_variables: frozenset[str] = frozenset()
    reply_to: str | None = None
    attach_dir: Path | None = None
    total: int = 0
    recipients: int = 0
    invalid_count: int = 0

    def check(self) -> list[InvalidRow]:
        """First pass: stop on a bad row unless --skip-invalid; returns the bad rows to report."""
        found = check_batch(self.event, self.path, self.defaults, self.header_variables, self.reply_to,
                            attach_dir=self.attach_dir)
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
        return jobs_from_file(self.event, self.path, self.defaults, self.header_variables, self.reply_to,
                              self.attach_dir)


@dataclass(kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
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
    retry_in_doubt: bool = True
    preview_pending: bool = False
    """With `dry_run`: read the ledger (never write it) and preview only what a re-run would send."""
    connections: int | None = None

    @property
    def really_sends(self) -> bool:
        return not self.dry_run and self.outbox is None


def plan_send(profile: Profile, event: Event, *, variables: dict[str, Any], to: Sequence[str] = (),
              cc: Sequence[str] = (), bcc: Sequence[str] = (), attach: Sequence[str] = (),
              reply_to: str | None = None, subject: str | None = None, batch: Path | None = None,
              skip_invalid: bool = False, attach_dir: Path | None = None) -> SendPlan:
    """Check one message, or read a whole batch once, so that bad input stops the run before it sends."""
    renderer = Renderer(profile, templates_dir_of(profile))
    header_variables = frozenset() if subject is not None else renderer.subject_variables(event)
    if batch is not None:
        if to or cc or bcc or attach:
            raise UsageError("--to, --cc, --bcc and --attach go in the batch file's columns, not beside --batch",
                             "add them as columns: to, cc, bcc, attach")
        source = BatchSource(event=event, path=batch, defaults=variables, skip_invalid=skip_invalid,
                             header_variables=header_variables, reply_to=reply_to, attach_dir=attach_dir)
        invalid = source.check()
        return SendPlan(profile=profile, event=event, renderer=renderer, jobs=source,
                        total=source.total + source.invalid_count, recipients=source.recipients, is_batch=True,
                        invalid=invalid)
    if attach_dir is not None:
        raise UsageError("--attach-dir goes with --batch", "files given with --attach are taken as they are")
    if not to:
        raise UsageError("no recipient", "pass --to ADDR, or --batch FILE")
    job = make_job(event, 0, to=to, cc=cc, bcc=bcc, variables=variables, attach=attach, reply_to=reply_to,
                   header_variables=header_variables)
    return SendPlan(profile=profile, event=event, renderer=renderer, jobs=[job], total=1,
                    recipients=len(job.recipients.envelope), is_batch=False)


def execute(plan: SendPlan, options: SendOptions, on_result: Callable[[MessageResult], None],
            on_warning: Callable[[str], None]) -> Summary:
    """Send (or preview, or write out) a plan: the run's limits (asked once), then the lock, the ledger, the
    quota watch and the transports, then the Sender."""
    limits = RunLimits.of(plan.profile, options.rate)
    resend_after = parse_duration(options.resend_after) if options.resend_after else None
    per_second = limits.per_second if options.really_sends else None
    notice = pacing_notice(plan.total - len(plan.invalid), per_second, limits.pace_source, limits.per_hour)
    if notice:
        on_warning(notice)
    with ExitStack() as stack:
        ledger, transports, watch = _open_run(plan, options, limits, stack, on_warning)
        deliverer = Deliverer(profile=plan.profile, event=plan.event.name,
                              transport=transports[0] if transports else None, ledger=ledger,
                              retries=options.retries, backoff=Backoff(base=options.retry_delay),
                              rate=RateLimiter(per_second=per_second, per_hour=limits.per_hour if per_second else None),
                              resend=options.resend, resend_after=resend_after,
                              before_delivery=watch, retry_in_doubt=options.retry_in_doubt)
        sender = Sender(event=plan.event, renderer=plan.renderer, deliverer=deliverer, subject=options.subject,
                        key_template=options.key_template, on_result=on_result)
        if len(transports) > 1:
            from xoromail_cli.sending.parallel import run_parallel

            profile = plan.profile
            return run_parallel(sender, transports, lambda: ledger_doors.open_connection(profile), plan.jobs,
                                plan.invalid, on_warning, total=plan.total)
        return sender.run(plan.jobs, plan.invalid, total=plan.total)


def _open_run(plan: SendPlan, options: SendOptions, limits: RunLimits, stack: ExitStack,
              on_warning: Callable[[str], None]) -> tuple[SentLedger | None, list[Transport], QuotaWatch | None]:
    """What the run needs open for as long as it lasts: to send, the locked ledger, the quota watch and one
    transport per connection; to write an outbox, its transport; to preview what is pending, the ledger
    read-only; a plain dry run needs nothing."""
    from xoromail_cli import credentials, services

    profile = plan.profile
    if options.really_sends:
        from xoromail_cli.ledger.accounts import account_key
        from xoromail_cli.sending.parallel import RememberedSecrets

        ledger = stack.enter_context(ledger_doors.open_for_sending(profile, options.wait))
        watch = QuotaWatch(limits.provider, account_key(profile.email), ledger, on_warning)
        wanted = options.connections or profile.connections or 1
        connections = limits.connections(wanted, on_warning) if plan.is_batch else 1
        secrets = RememberedSecrets(credentials.Secrets(profile))
        return ledger, [services.open_transport(profile, secrets, timeout=options.timeout)
                        for _ in range(connections)], watch
    if options.outbox is not None and not options.dry_run:
        return None, [services.open_transport(profile, credentials.Secrets(profile), outbox=options.outbox)], None
    if options.dry_run and options.preview_pending:
        return stack.enter_context(ledger_doors.open_preview(profile)), [], None
    return None, [], None
