"""Send jobs through any transport: idempotency, ledger, retries, reconnects and pacing, once for all."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.compose.events import Event
from xoromail_cli.compose.render import Recipients, Renderer, compose
from xoromail_cli.errors import ExitCode, StageFailedError, XoromailError
from xoromail_cli.pacing import Backoff, RateLimiter, now
from xoromail_cli.profile import Profile
from xoromail_cli.sending.batch import InvalidRow, SendJob
from xoromail_cli.sending.inflight import InFlight, owed_state
from xoromail_cli.sending.keys import check_key_template, idempotency_key
from xoromail_cli.sending.results import MessageResult, ResultStatus, Summary
from xoromail_cli.sending.rows import (
    InOrder,
    Item,
    JobSource,
    batch_items,
    invalid_result,
    settle_interrupted,
    stop_error,
)
from xoromail_cli.services.base import ConnectionLostError, Delivery, PipeliningTransport, Refusal, Transport

if TYPE_CHECKING:
    from xoromail_cli.ledger.sqlite import LedgerEntry  # sqlite3 loads only when a ledger is used
    from xoromail_cli.ledger.sqlite import SentLedger as Ledger


@dataclass(frozen=True)
class _Ready:
    """A message composed and due: everything the delivery needs."""

    job: SendJob
    envelope: Envelope
    key: str


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
    retry_in_doubt: bool = True
    """Send a message again in the same run when the connection was lost after its data (a possible
    duplicate, reported as such); False keeps it in flight for the next run to report instead."""
    before_delivery: Callable[[int], None] | None = None
    """Told each message's recipient count just before it goes out (daily-quota watch)."""
    on_open: Callable[[], None] | None = None
    """Told each time the transport has opened (signed in): a parallel run starts the others after the first."""
    _connected: bool = False
    _opened_before: bool = False

    @property
    def owner(self) -> tuple[str, str]:
        """Whose ledger rows these are: the sending account's key, and the profile's name for people."""
        from xoromail_cli.ledger.accounts import account_key

        return account_key(self.profile.service, self.profile.email), self.profile.name

    def run(self, jobs: Iterable[SendJob | InvalidRow], invalid_first: Sequence[InvalidRow] = (),
            total: int | None = None) -> Summary:
        """Send every job. `invalid_first` (bad rows a checking pass found) are reported before anything is
        sent, so a run that stops early still names them; the stream's copies of them are then skipped.
        `total` (the rows of the batch) lets the summary count those a stopped run never reached. Ctrl-C
        and SIGTERM (`interrupts.Terminated`) end the run like any stop: the summary says why (130, 143)."""
        summary, emit = self.begin_run(invalid_first, total)
        try:
            stopper = self.send_each(InOrder(batch_items(self.event, jobs, invalid_first)),
                                     lambda place, result: emit(result))
            if stopper is not None:
                summary.aborted = stop_error(stopper)
        except XoromailError as error:
            summary.aborted = error
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM turned into Terminated: report, don't vanish
            from xoromail_cli.interrupts import interruption

            summary.aborted = interruption(stop)
        finally:
            self.close()
        return summary

    def begin_run(self, invalid_first: Sequence[InvalidRow],
                  total: int | None) -> tuple[Summary, Callable[[MessageResult], None]]:
        """What every run does before sending, on one connection or many: check the key template, then report
        what an earlier run left in flight and the bad rows found up front. Returns the summary and the
        function that adds a result to it and passes it on."""
        if self.key_template:
            check_key_template(self.event, self.key_template)
        summary = Summary(total=total)

        def emit(result: MessageResult) -> None:
            summary.add(result)
            self.on_result(result)

        for result in settle_interrupted(self.ledger, self.owner[0], self.event.name):
            emit(result)
        for invalid in invalid_first:
            emit(invalid_result(self.event, invalid))
        return summary, emit

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def send_each(self, source: JobSource, emit: Callable[[int, MessageResult], None]) -> MessageResult | None:
        """Send what `source` hands out, each result emitted with its place; returns the result that stopped
        the batch, if one did. With a pipelining transport the next message is prepared (and its envelope
        commands sent) while this one's data is on the way: see `_look_ahead`."""
        taken = source.take()
        prepared: _Ready | MessageResult | None = None
        announced = False
        pipeliner = self.transport if isinstance(self.transport, PipeliningTransport) else None  # checked once: slow
        while taken is not None and not source.halted():
            place, item = taken
            if prepared is None:
                prepared = item if isinstance(item, MessageResult) else self._prepare(item)
            if isinstance(prepared, MessageResult):
                emit(place, prepared)
                if prepared.stops_batch:
                    return prepared
                taken, prepared, announced = source.take(), None, False
                continue
            if not announced:
                self._pace(prepared)
            upcoming = source.take(wait=False) if pipeliner is not None and pipeliner.pipelining else None
            ahead, ahead_announced = self._look_ahead(prepared, upcoming)
            result = self._deliver(prepared.job, prepared.envelope, prepared.key,
                                   ahead.envelope if isinstance(ahead, _Ready) and ahead_announced else None)
            emit(place, result)
            if result.stops_batch:
                return result
            taken = upcoming if upcoming is not None else source.take()
            prepared, announced = ahead, ahead_announced
        return None

    def _look_ahead(self, current: _Ready, upcoming: tuple[int, Item] | None) -> tuple[_Ready | MessageResult | None,
                                                                                       bool]:
        """Prepare the next item now, and say whether its envelope may go out behind `current`'s data.

        It may when its rate slot is due already (pacing stays exact: no MAIL FROM before its time) and its
        key differs from `current`'s (a repeated row must see `current`'s ledger row before it is checked).
        """
        if upcoming is None:
            return None, False
        item = upcoming[1]
        if isinstance(item, MessageResult):
            return item, False
        if idempotency_key(self.event, item, self.key_template) == current.key:
            return None, False
        try:
            prepared = self._prepare(item)
        except XoromailError:
            return None, False  # prepared again in its turn, after `current`, and reported there
        if isinstance(prepared, _Ready) and not self._too_large(prepared.envelope) and self.rate.try_take():
            if self.before_delivery is not None:
                self.before_delivery(len(prepared.envelope.recipients))
            return prepared, True
        return prepared, False

    def _pace(self, ready: _Ready) -> None:
        """Just before a message goes out: the daily-quota watch, then the rate limit."""
        if self.before_delivery is not None:
            self.before_delivery(len(ready.envelope.recipients))
        self.rate.wait()

    def _prepare(self, job: SendJob) -> _Ready | MessageResult:
        """Everything before sending: already sent (skipped), owed recipients only, composed; or a dry run."""
        key = idempotency_key(self.event, job, self.key_template)
        owed = self._owed(key, job.row, job.recipients.envelope)
        if isinstance(owed, MessageResult):
            return owed
        envelope, rendered = compose(self.profile, self.renderer, self.event, job.recipients, job.variables,
                                     attachments=job.attachments, reply_to=job.reply_to, subject=self.subject,
                                     row=job.row)
        restricted = self._restrict(envelope, owed, key, job.row)
        if isinstance(restricted, MessageResult):
            return restricted
        if self.transport is None:
            return MessageResult(self.event.name, job.row, envelope.recipients, "dry-run", "not sent (dry run)",
                                 restricted.message_id, key=key, rendered=rendered, envelope=restricted)
        return _Ready(job, restricted, key)

    def deliver_envelope(self, envelope: Envelope, key: str) -> MessageResult:
        """Deliver a message built elsewhere (the relay's spool) as `run` delivers a job's: skipped when the
        ledger has it sent under `key`, only the still-owed recipients after a partial, then pacing, the quota
        watch, retries and the ledger rows of `_deliver`. Raises XoromailError when the service cannot be used."""
        owed = self._owed(key, 0, envelope.recipients)
        if isinstance(owed, MessageResult):
            return owed
        restricted = self._restrict(envelope, owed, key, 0)
        if isinstance(restricted, MessageResult):
            return restricted
        job = SendJob(0, Recipients(restricted.to, restricted.cc, restricted.bcc), {})
        self._pace(_Ready(job, restricted, key))
        return self._deliver(job, restricted, key)

    def _owed(self, key: str, row: int, recipients: tuple[str, ...]) -> tuple[str, ...] | MessageResult:
        """What the ledger says of `key`: () when the message is due to everyone, the recipients still owed
        after a partial delivery, or the "skipped" result when everyone got it."""
        if self.ledger is None or self.resend:
            return ()
        previous = self.ledger.last_sent(self.owner[0], key)
        if previous is None or self._due_again(previous):
            return ()
        still_owed = {address.lower() for address in previous.pending}
        owed = tuple(a for a in recipients if a.lower() in still_owed)
        if owed:
            return owed
        return MessageResult(self.event.name, row, recipients, "skipped",
                             f"already sent on {previous.updated_at:%Y-%m-%d %H:%M} UTC ({previous.message_id})",
                             previous.message_id, "pass --resend to send it again, or --resend-after for reminders",
                             key=key)

    def _restrict(self, envelope: Envelope, owed: tuple[str, ...], key: str, row: int) -> Envelope | MessageResult:
        """The envelope for those still owed; refused clearly where the service cannot send to some only."""
        if not owed:
            return envelope
        if self.transport is not None and not self.transport.subset_retries and len(owed) < len(envelope.recipients):
            return MessageResult(self.event.name, row, envelope.recipients, "failed",
                                 f"{len(owed)} recipient(s) are still owed from an earlier partial delivery, "
                                 f"and {self.transport.name} cannot send to some recipients only",
                                 envelope.message_id, "send it to them with --to … --resend", int(ExitCode.DATAERR),
                                 key=key)
        return envelope.restricted_to(owed)

    def _due_again(self, previous: LedgerEntry) -> bool:
        """Due once `resend_after` has passed, less a grace (5%, at most an hour) for cron's jitter."""
        if self.resend_after is None:
            return False
        grace = min(self.resend_after * 0.05, timedelta(hours=1))
        return previous.created_at <= now() - self.resend_after + grace

    def _deliver(self, job: SendJob, envelope: Envelope, key: str, following: Envelope | None = None) -> MessageResult:
        """Send with retries; recipients refused with a 4xx are retried alone, never the ones that got it.

        The ledger row of the first delivery always says who is still owed, so a run that stops at any
        point (signal, sign-in refused, quota) leaves the next run exactly the recipients left to do.
        """
        pending, permanent = envelope, dict[str, str]()
        message_row: InFlight | None = None
        attempt = 0
        in_doubt = False
        while True:
            attempt += 1
            marker = InFlight(self.ledger, self.owner, self.event.name, key, pending, job.row or None)
            delivery = self._attempt(pending, marker, attempt, following if attempt == 1 else None)
            if delivery.unknown:
                if not self.retry_in_doubt or in_doubt or attempt > self.retries:
                    return MessageResult(self.event.name, job.row, envelope.recipients, "temporary", delivery.reply,
                                         envelope.message_id, delivery.hint, delivery.exit_code, attempt, key,
                                         possible_duplicate=in_doubt)
                # RFC 5321 4.5.4.1: an MTA retries a message whose reply it never got; so do we, once, and say so
                in_doubt = True
                marker.settle("temporary", f"{delivery.reply}; sent again in this run (a possible duplicate)",
                              record_refusal=False)
                self.backoff.pause(attempt - 1)
                continue
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
            state = owed_state(delivery.reply if message_row is marker else None, {**permanent, **temporary},
                                tuple(temporary))
            if message_row is not None:
                message_row.conclude(*state)
            if retry:
                pending = pending.restricted_to(temporary)
                if delivery.reconnect:
                    self._disconnect()
                if delivery.retry_after:
                    self.rate.hold(delivery.retry_after)  # every connection sharing the limit waits too
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
                                     envelope.message_id, delivery.hint, exit_code, attempt, key, stops_batch=quota,
                                     possible_duplicate=in_doubt)
            result = self._outcome(job, envelope, key, attempt, state, delivery.reply, quota)
            if in_doubt:
                result.possible_duplicate = True
                result.reply = f"{result.reply} (a possible duplicate: an earlier attempt's answer was lost)"
            return result

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

    def _attempt(self, envelope: Envelope, marker: InFlight, attempt: int, following: Envelope | None) -> Delivery:
        """One try: (re)connect if needed, then send. A connection lost before the data is temporary; once the
        message's data went out, its fate is unknown: it stays in flight for the next run to report."""
        assert self.transport is not None
        try:
            if not self._connected:
                self.transport.open()
                self._connected = self._opened_before = True
                if self.on_open is not None:
                    self.on_open()
            if self._too_large(envelope):
                from xoromail_cli.sending.sizelimit import too_large

                assert self.transport.max_message_size is not None
                return too_large(len(envelope.data), self.transport.max_message_size, self.transport.name)
            if following is not None and isinstance(self.transport, PipeliningTransport):
                return self.transport.send_then(envelope, marker.mark, following)
            return self.transport.send(envelope, before_data=marker.mark)
        except StageFailedError as failure:
            self._disconnect()
            error = self._went_away(failure)
            if error.exit_code != ExitCode.TEMPFAIL or attempt > self.retries:
                raise error from None
            return Delivery("temporary", error.message, exit_code=int(error.exit_code), hint=error.hint)
        except ConnectionLostError as lost:
            self._disconnect()
            if lost.committed:  # the transport knows whether the data was handed over; trust it
                return Delivery("temporary", lost.message, exit_code=int(ExitCode.TEMPFAIL),
                                hint="it stays in flight: the next run reports it and sends it again "
                                     "(a possible duplicate)", unknown=True)
            return Delivery("temporary", lost.message, exit_code=int(ExitCode.TEMPFAIL),
                            hint=lost.hint or "the connection was lost before the message; it was retried")

    def _went_away(self, failure: StageFailedError) -> StageFailedError:
        """A server that worked earlier in this run and now cannot be reached has gone away (stopped, restarted,
        the network is down): that is temporary, and the settings are not to blame."""
        if not self._opened_before or failure.stage not in ("dns", "connect"):
            return failure
        return StageFailedError(failure.stage, f"the server stopped answering during the run: {failure.message}",
                                "it worked earlier in this run, so the settings are right; a re-run sends the "
                                "messages not sent (the summary counts them)", ExitCode.TEMPFAIL)

    def _too_large(self, envelope: Envelope) -> bool:
        """Over the limit the open service announced (SMTP SIZE) or states: refused before any of it goes."""
        limit = self.transport.max_message_size if self.transport is not None else None
        return limit is not None and len(envelope.data) > limit

    def _disconnect(self) -> None:
        self._connected = False
        if self.transport is not None:
            self.transport.close()
