"""Send jobs through any transport: idempotency, ledger, retries, reconnects and pacing, once for all."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from xoromail_cli.batch import InvalidRow, SendJob
from xoromail_cli.config import Profile
from xoromail_cli.errors import ExitCode, StageFailedError, XoromailError
from xoromail_cli.events import Event
from xoromail_cli.idempotency import check_key_template, idempotency_key
from xoromail_cli.messages import Recipients, Renderer, compose
from xoromail_cli.pacing import Backoff, RateLimiter, now
from xoromail_cli.results import MessageResult, ResultStatus, Summary
from xoromail_cli.services.base import ConnectionLostError, Delivery, Envelope, Refusal, Transport

if TYPE_CHECKING:
    from xoromail_cli.ledger import LedgerEntry  # sqlite3 loads only when a ledger is used
    from xoromail_cli.ledger import SentLedger as Ledger


class InFlight:
    """Ledger bookkeeping of one attempt: in flight just before DATA, then settled with its outcome."""

    def __init__(self, ledger: Ledger | None, owner: tuple[str, str], event: str, key: str, envelope: Envelope,
                 row: int | None) -> None:
        """`owner` is (account key, profile name): rows belong to the account, the profile is noted."""
        self._ledger, (self._account, self._profile), self._event, self._key = ledger, owner, event, key
        self._envelope, self._row = envelope, row
        self.entry_id: int | None = None
        self.data_started = False
        self._written: tuple[str, str, tuple[str, ...]] | None = None

    def mark(self) -> None:
        """Called just before DATA: from here on the message may reach the server."""
        self.data_started = True
        if self._ledger is not None:
            self.entry_id = self._ledger.begin(self._account, self._event, self._key, self._envelope.recipients,
                                               self._envelope.message_id, self._row, profile=self._profile)

    def conclude(self, status: str, reply: str, pending: tuple[str, ...] = (), refused: tuple[str, ...] = ()) -> None:
        """The message's state, kept on the row of its first delivery: who got it and who is still owed."""
        if self._ledger is not None and self.entry_id is not None and self._written != (status, reply, pending):
            self._ledger.finish(self.entry_id, status, reply, pending, refused)
            self._written = (status, reply, pending)

    def settle(self, status: str, reply: str, *, record_refusal: bool) -> None:
        """Close the in-flight row; an attempt refused before DATA is recorded once it is final."""
        if self._ledger is None:
            return
        if self.entry_id is not None:
            self._ledger.finish(self.entry_id, status, reply)
            self._written = (status, reply, ())
        elif record_refusal:
            self._ledger.record(self._account, self._event, self._key, self._envelope.recipients,
                                self._envelope.message_id, self._row, status, reply, profile=self._profile)


def _owed_state(reply: str | None, remaining: dict[str, str],
                owed: tuple[str, ...]) -> tuple[str, str, tuple[str, ...], tuple[str, ...]]:
    """How the message row reads now: sent, or partial with the refusals listed and who is still owed."""
    if not remaining:
        return "sent", reply or "delivered to every recipient", (), ()
    listed = "; ".join(f"{address}: {text}" for address, text in remaining.items())
    return "partial", f"delivered except to {listed}", owed, tuple(remaining)


@dataclass
class Sender:
    profile: Profile
    event: Event
    renderer: Renderer
    transport: Transport | None
    ledger: Ledger | None = None
    retries: int = 3
    backoff: Backoff = field(default_factory=Backoff)
    rate: RateLimiter = field(default_factory=lambda: RateLimiter(None))
    subject: str | None = None
    key_template: str | None = None
    resend: bool = False
    resend_after: timedelta | None = None
    on_result: Callable[[MessageResult], None] = lambda result: None
    before_delivery: Callable[[int], None] | None = None
    """Told each message's recipient count just before it goes out (daily-quota watch)."""
    _connected: bool = False

    @property
    def owner(self) -> tuple[str, str]:
        """Whose ledger rows these are: the sending account's key, and the profile's name for people."""
        from xoromail_cli.ledger import account_key

        return account_key(self.profile.service, self.profile.email), self.profile.name

    def run(self, jobs: Iterable[SendJob | InvalidRow], invalid_first: Sequence[InvalidRow] = ()) -> Summary:
        """Send every job. `invalid_first` (bad rows a checking pass found) are reported before anything is
        sent, so a run that stops early still names them; the stream's copies of them are then skipped."""
        if self.key_template:
            check_key_template(self.event, self.key_template)
        summary = Summary()

        def emit(result: MessageResult) -> None:
            summary.add(result)
            self.on_result(result)

        if self.ledger is not None:
            for entry in self.ledger.interrupted(self.owner[0], self.event.name):
                self.ledger.settle_interrupted(entry.id)
                emit(MessageResult(entry.event, entry.row or 0, entry.recipients, "interrupted",
                                   "was in flight when an earlier run stopped: it may have been delivered; "
                                   "it is sent again if still due (a possible duplicate)",
                                   entry.message_id, key=entry.idempotency_key))

        def report(invalid: InvalidRow) -> None:
            emit(MessageResult(self.event.name, invalid.row, (), "invalid", invalid.error.message,
                               hint=invalid.error.hint, exit_code=int(invalid.error.exit_code)))

        for invalid in invalid_first:
            report(invalid)
        reported = {invalid.row for invalid in invalid_first}
        try:
            for item in jobs:
                if isinstance(item, InvalidRow):
                    if item.row not in reported:
                        report(item)
                    continue
                result = self._one(item)
                emit(result)
                if result.stops_batch:
                    summary.aborted = XoromailError(
                        f"stopped the batch: {result.reply}; the remaining messages were not sent",
                        f"{result.hint}; re-running later sends only what is still missing",
                        exit_code=ExitCode(result.exit_code or ExitCode.TEMPFAIL))
                    break
        except XoromailError as error:
            summary.aborted = error
        finally:
            if self.transport is not None:
                self.transport.close()
        return summary

    def _one(self, job: SendJob) -> MessageResult:
        key = idempotency_key(self.event, job, self.key_template)
        recipients = job.recipients.envelope
        owed: tuple[str, ...] = ()
        if self.ledger is not None and not self.resend:
            previous = self.ledger.last_sent(self.owner[0], key)
            if previous is not None and not self._due_again(previous):
                still_owed = {address.lower() for address in previous.pending}
                owed = tuple(a for a in recipients if a.lower() in still_owed)
                if not owed:
                    return MessageResult(self.event.name, job.row, recipients, "skipped",
                                         f"already sent on {previous.updated_at:%Y-%m-%d %H:%M} UTC "
                                         f"({previous.message_id})", previous.message_id,
                                         "pass --resend to send it again, or --resend-after for reminders",
                                         key=key)
        envelope, rendered = compose(self.profile, self.renderer, self.event, job.recipients, job.variables,
                                     attachments=job.attachments, reply_to=job.reply_to, subject=self.subject)
        if owed:
            if self.transport is not None and not self.transport.subset_retries and len(owed) < len(recipients):
                return MessageResult(self.event.name, job.row, recipients, "failed",
                                     f"{len(owed)} recipient(s) are still owed from an earlier partial delivery, "
                                     f"and {self.transport.name} cannot send to some recipients only",
                                     envelope.message_id, "send it to them with --to … --resend", int(ExitCode.DATAERR),
                                     key=key)
            envelope = envelope.restricted_to(owed)
        if self.transport is None:
            return MessageResult(self.event.name, job.row, recipients, "dry-run", "not sent (dry run)",
                                 envelope.message_id, key=key, rendered=rendered, envelope=envelope)
        if self.before_delivery is not None:
            self.before_delivery(len(envelope.recipients))
        self.rate.wait()
        return self._deliver(job, envelope, key)

    def deliver_envelope(self, envelope: Envelope, key: str) -> MessageResult:
        """Deliver a message built elsewhere (the relay's spool) as `run` delivers a job's: skipped when the
        ledger has it sent under `key`, only the still-owed recipients after a partial, then pacing, the quota
        watch, retries and the ledger rows of `_deliver`. Raises XoromailError when the service cannot be used."""
        if self.ledger is not None and not self.resend:
            previous = self.ledger.last_sent(self.owner[0], key)
            if previous is not None:
                if not previous.pending:
                    return MessageResult(self.event.name, 0, envelope.recipients, "skipped",
                                         f"already sent on {previous.updated_at:%Y-%m-%d %H:%M} UTC "
                                         f"({previous.message_id})", previous.message_id, key=key)
                assert self.transport is not None
                if not self.transport.subset_retries:
                    return MessageResult(self.event.name, 0, envelope.recipients, "failed",
                                         f"{len(previous.pending)} recipient(s) are still owed from an earlier "
                                         f"partial delivery, and {self.transport.name} cannot send to some "
                                         "recipients only", envelope.message_id, "send it to them again yourself",
                                         int(ExitCode.DATAERR), key=key)
                envelope = envelope.restricted_to(previous.pending)
        assert self.transport is not None
        if self.before_delivery is not None:
            self.before_delivery(len(envelope.recipients))
        self.rate.wait()
        job = SendJob(0, Recipients(envelope.to, envelope.cc, envelope.bcc), {})
        return self._deliver(job, envelope, key)

    def _due_again(self, previous: LedgerEntry) -> bool:
        """Due once `resend_after` has passed, less a grace (5%, at most an hour) for cron's jitter."""
        if self.resend_after is None:
            return False
        grace = min(self.resend_after * 0.05, timedelta(hours=1))
        return previous.created_at <= now() - self.resend_after + grace

    def _deliver(self, job: SendJob, envelope: Envelope, key: str) -> MessageResult:
        """Send with retries; recipients refused with a 4xx are retried alone, never the ones that got it.

        The ledger row of the first delivery always says who is still owed, so a run that stops at any
        point (signal, sign-in refused, quota) leaves the next run exactly the recipients left to do.
        """
        pending, permanent = envelope, dict[str, str]()
        message_row: InFlight | None = None
        attempt = 0
        while True:
            attempt += 1
            marker = InFlight(self.ledger, self.owner, self.event.name, key, pending, job.row or None)
            delivery = self._attempt(pending, marker, attempt)
            if delivery.unknown:
                return MessageResult(self.event.name, job.row, envelope.recipients, "temporary", delivery.reply,
                                     envelope.message_id, delivery.hint, delivery.exit_code, attempt, key)
            refused = dict(delivery.refused) if delivery.ok or delivery.refused else dict.fromkeys(
                pending.recipients, Refusal(delivery.reply, delivery.status == "temporary", delivery.stops_batch))
            temporary = {a: r.reply for a, r in refused.items() if r.temporary}
            permanent.update({a: r.reply for a, r in refused.items() if not r.temporary})
            quota = delivery.stops_batch or any(r.stops_batch for r in refused.values())
            subset = len(temporary) < len(pending.recipients)
            retry = (bool(temporary) and attempt <= self.retries and not quota
                     and (self.transport is None or self.transport.subset_retries or not subset))
            marker.settle("partial" if delivery.ok and refused else delivery.status, delivery.reply,
                          record_refusal=not retry)
            if delivery.ok and message_row is None:
                message_row = marker
            state = _owed_state(delivery.reply if message_row is marker else None, {**permanent, **temporary},
                                tuple(temporary))
            if message_row is not None:
                message_row.conclude(*state)
            if retry:
                pending = pending.restricted_to(temporary)
                if delivery.reconnect:
                    self._disconnect()
                self.backoff.pause(attempt - 1, at_least=delivery.retry_after)
                continue
            if message_row is None:
                status: ResultStatus = "temporary" if temporary else "failed"
                everyone = {**permanent, **temporary}
                reply = delivery.reply if len(set(everyone.values())) <= 1 else "refused: " + "; ".join(
                    f"{address}: {text}" for address, text in everyone.items())
                exit_code = int(ExitCode.TEMPFAIL) if temporary and not permanent else delivery.exit_code
                if permanent and temporary:
                    status, exit_code = "failed", int(ExitCode.DATAERR)
                return MessageResult(self.event.name, job.row, envelope.recipients, status, reply,
                                     envelope.message_id, delivery.hint, exit_code, attempt, key, stops_batch=quota)
            return self._outcome(job, envelope, key, attempt, state, delivery.reply, quota)

    def _outcome(self, job: SendJob, envelope: Envelope, key: str, attempts: int,
                 state: tuple[str, str, tuple[str, ...], tuple[str, ...]], reply: str,
                 stops_batch: bool) -> MessageResult:
        """The result of a message that reached at least one recipient, from its row's final `state`."""
        status, summary, owed, refused = state
        if status == "sent":
            assert self.transport is not None
            return MessageResult(self.event.name, job.row, envelope.recipients, self.transport.accepted_as, reply,
                                 envelope.message_id, attempts=attempts, key=key)
        temporary_only = set(refused) <= set(owed)
        hint = ("the others got it; re-running sends it to these recipients only" if temporary_only
                else "the others got it; fix these addresses, then send to them with --to … --resend")
        return MessageResult(self.event.name, job.row, envelope.recipients, "partial", summary, envelope.message_id,
                             hint, int(ExitCode.TEMPFAIL if temporary_only else ExitCode.DATAERR), attempts, key,
                             stops_batch=stops_batch)

    def _attempt(self, envelope: Envelope, marker: InFlight, attempt: int) -> Delivery:
        """One try: (re)connect if needed, then send. A connection lost before the data is temporary; once the
        message's data went out, its fate is unknown: it stays in flight for the next run to report."""
        assert self.transport is not None
        try:
            if not self._connected:
                self.transport.open()
                self._connected = True
            return self.transport.send(envelope, before_data=marker.mark)
        except StageFailedError as error:
            self._disconnect()
            if error.exit_code != ExitCode.TEMPFAIL or attempt > self.retries:
                raise
            return Delivery("temporary", error.message, exit_code=int(error.exit_code), hint=error.hint)
        except ConnectionLostError as lost:
            self._disconnect()
            if lost.committed or marker.data_started:
                return Delivery("temporary", lost.message, exit_code=int(ExitCode.TEMPFAIL),
                                hint="it stays in flight: the next run reports it and sends it again "
                                     "(a possible duplicate)", unknown=True)
            return Delivery("temporary", lost.message, exit_code=int(ExitCode.TEMPFAIL),
                            hint=lost.hint or "the connection was lost before the message; it was retried")

    def _disconnect(self) -> None:
        self._connected = False
        if self.transport is not None:
            self.transport.close()
