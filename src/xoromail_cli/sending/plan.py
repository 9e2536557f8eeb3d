"""`xoromail send` without the CLI: plan (check everything), then execute (lock, ledger, transport, Sender)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xoromail_cli import paths
from xoromail_cli.compose.events import Event
from xoromail_cli.compose.render import Renderer
from xoromail_cli.errors import UsageError
from xoromail_cli.pacing import Backoff, RateLimiter, now, pacing_notice, parse_duration, parse_rate
from xoromail_cli.profile import Profile
from xoromail_cli.sending.batch import InvalidRow, SendJob, check_batch, jobs_from_file, make_job
from xoromail_cli.sending.results import MessageResult, Summary
from xoromail_cli.sending.sender import Sender

if TYPE_CHECKING:
    from xoromail_cli.ledger.location import LedgerLocation
    from xoromail_cli.ledger.sqlite import LedgerEntry, SentLedger
    from xoromail_cli.services.base import Limits, Transport


def ledger_location(profile: Profile) -> LedgerLocation:
    """`$XOROMAIL_LEDGER`, else the profile's `ledger` (a path, sqlite:///path or postgresql://…), else the
    SQLite file in the state folder."""
    from xoromail_cli.ledger.location import location

    return location(profile.ledger, paths.state_dir() / "ledger.sqlite3")


def ledger_path(profile: Profile) -> Path:
    """The SQLite ledger's file (a PostgreSQL ledger has none: this is where it would be)."""
    found = ledger_location(profile)
    return found.path if found.path is not None else paths.state_dir() / "ledger.sqlite3"


def lock_path(profile: Profile) -> Path:
    """The file lock of the sending account (service and From address), beside a SQLite ledger."""
    from xoromail_cli.ledger.accounts import account_key
    from xoromail_cli.ledger.sqlite import lock_file

    return lock_file(ledger_path(profile), account_key(profile.service, profile.email))


def open_sending_ledger(profile: Profile, wait: float, stack: ExitStack) -> SentLedger:
    """Lock the account and open its ledger: a file lock and SQLite here, or one advisory lock and
    PostgreSQL for every host. Rows an older release wrote under the profile's name become the account's."""
    from xoromail_cli.ledger.accounts import account_key, legacy_domain
    from xoromail_cli.ledger.location import open_ledger

    account = account_key(profile.service, profile.email)
    found = ledger_location(profile)
    if found.is_postgres:
        ledger = stack.enter_context(closing(open_ledger(found, profile.name, timeout=min(profile.timeout, 30.0))))
        stack.enter_context(ledger.exclusive(account, wait))
    else:
        from xoromail_cli.ledger.locking import ProfileLock

        stack.enter_context(ProfileLock(lock_path(profile), wait))
        ledger = stack.enter_context(closing(open_ledger(found, profile.name)))
    ledger.adopt(account, profile.name, legacy_domain(profile.email))
    return ledger


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


def _pace_source(profile: Profile, option: str | None) -> str:
    """Whose pace it is, as the notice names it."""
    if option:
        return "--rate"
    if profile.rate:
        return "the profile's rate"
    limits = provider_limits(profile)
    return f"{limits.label}'s published limit" if limits and limits.per_minute else "the pace"


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
    notice = pacing_notice(plan.total - len(plan.invalid), per_second, _pace_source(profile, options.rate))
    if notice:
        on_warning(notice)
    with ExitStack() as stack:
        ledger: SentLedger | None = None
        transports: list[Transport] = []
        watch: QuotaWatch | None = None
        if options.really_sends:
            from xoromail_cli.sending.parallel import RememberedSecrets

            ledger = open_sending_ledger(profile, options.wait, stack)
            watch = QuotaWatch(profile, ledger, on_warning)
            connections = connections_for(profile, options.connections, on_warning) if plan.is_batch else 1
            secrets = RememberedSecrets(credentials.Secrets(profile))
            transports = [services.open_transport(profile, secrets, timeout=options.timeout)
                          for _ in range(connections)]
        elif options.outbox is not None and not options.dry_run:
            transports = [services.open_transport(profile, credentials.Secrets(profile), outbox=options.outbox)]
        elif options.dry_run and options.preview_pending:
            ledger = _preview_ledger(profile, stack)
        sender = Sender(profile, plan.event, plan.renderer, transports[0] if transports else None, ledger,
                        retries=options.retries, backoff=Backoff(base=options.retry_delay),
                        rate=RateLimiter(per_second), subject=options.subject, key_template=options.key_template,
                        resend=options.resend, resend_after=resend_after, on_result=on_result,
                        before_delivery=watch, retry_in_doubt=options.retry_in_doubt)
        if len(transports) > 1:
            from xoromail_cli.sending.parallel import run_parallel

            return run_parallel(sender, transports, lambda: _worker_ledger(profile), plan.jobs, plan.invalid,
                                on_warning, total=plan.total)
        return sender.run(plan.jobs, plan.invalid, total=plan.total)


def _preview_ledger(profile: Profile, stack: ExitStack) -> SentLedger | None:
    """The ledger opened read-only for `--dry-run --pending` (SQLite or PostgreSQL): a preview settles no
    interrupted row, since that is a write; it shows them as due, as a re-run would send them."""
    from xoromail_cli.ledger.location import open_ledger

    found = ledger_location(profile)
    if found.path is not None and not found.path.exists():
        return None  # nothing was ever sent: everything is pending
    ledger = open_ledger(found, profile.name, read_only=True)
    stack.callback(ledger.close)
    return _ReadOnlyPreview(ledger)


class _ReadOnlyPreview:
    """A ledger for previews: every read goes through, the interrupted rows are not settled."""

    def __init__(self, inner: SentLedger) -> None:
        self._inner = inner

    def interrupted(self, account: str, event: str | None = None) -> list[LedgerEntry]:
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _worker_ledger(profile: Profile) -> SentLedger:
    """A ledger connection of its own for each connection of a parallel run (SQLite or PostgreSQL); the run's
    lock is held by the first one, opened with `open_sending_ledger`."""
    from xoromail_cli.ledger.location import open_ledger

    return open_ledger(ledger_location(profile), profile.name)


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

    def __init__(self, profile: Profile, ledger: SentLedger, on_warning: Callable[[str], None]) -> None:
        from xoromail_cli.ledger.accounts import account_key

        self._profile, self._on_warning = profile, on_warning
        self._sent = ledger.count_since(account_key(profile.service, profile.email), now() - timedelta(days=1))
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
