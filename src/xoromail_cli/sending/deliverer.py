"""Deliver ready envelopes through any transport: ledger rows, retries, reconnects, pacing and in-flight marks.

This is the envelope level of the engine: it knows nothing of events' templates, batch files or rows' variables.
`Sender` (the batch level) composes each row into an `Envelope` and hands it here; the relay hands its spooled
envelopes here directly. Whether a message's fate is unknown is a field of its result (`in_doubt`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, cast

from xoromail_cli.errors import ExitCode, StageFailedError, XoromailError
from xoromail_cli.pacing import Backoff, RateLimiter, now
from xoromail_cli.profile import Profile
from xoromail_cli.sending.inflight import InFlight, OwedState, owed_state, settle_interrupted
from xoromail_cli.sending.results import MessageResult, ResultStatus, UnrecordedDelivery, carry_result
from xoromail_cli.services.base import ConnectionLostError, Delivery, PipeliningTransport, Refusal, Transport

if TYPE_CHECKING:
    from xoromail_cli.compose.envelope import Envelope
    from xoromail_cli.ledger.sqlite import LedgerEntry  # sqlite3 loads only when a ledger is used
    from xoromail_cli.ledger.sqlite import SentLedger as Ledger

IN_DOUBT_HINT = "it stays in flight: the next run reports it and sends it again (a possible duplicate)"


@dataclass(kw_only=True)
class _Tries:
    """One message's attempts so far: who is still to be tried, who refused it for good, its ledger row."""

    envelope: Envelope
    pending: Envelope
    permanent: dict[str, str] = field(default_factory=dict)
    message_row: InFlight | None = None
    attempt: int = 0
    in_doubt: bool = False
    """An earlier attempt's answer was lost and the message went again: a possible duplicate."""


@dataclass(kw_only=True)
class Deliverer:
    """One connection's deliveries for one sending account, recorded under the ledger event `event`."""

    profile: Profile
    event: str
    """The ledger's event name for these messages ("invoice", "relay", …)."""
    transport: Transport | None
    """None for a dry run: nothing is delivered (`Sender` reports the message as composed)."""
    ledger: Ledger | None = None
    retries: int = 3
    backoff: Backoff = field(default_factory=Backoff)
    rate: RateLimiter = field(default_factory=lambda: RateLimiter(per_second=None))
    resend: bool = False
    resend_after: timedelta | None = None
    retry_in_doubt: bool = True
    """Send a message again at once when the connection was lost after its data (a possible duplicate,
    reported as such); False keeps it in flight for the next run to report instead."""
    before_delivery: Callable[[int], None] | None = None
    """Told each message's recipient count just before it goes out (the daily-quota watch)."""
    on_open: Callable[[], None] | None = None
    """Told each time the transport has opened (signed in): a parallel run starts the others after the first."""
    holding: ExitStack | None = field(default=None, init=False, repr=False)
    """Set by `Sender` around one message: a Ctrl-C or SIGTERM that comes once its outcome is being written to the
    ledger waits (`interrupts.recording_outcome`, entered here) until the Sender has counted it, then stops the run."""
    _connected: bool = field(default=False, init=False)
    _opened_before: bool = field(default=False, init=False)
    _pipelines: bool | None = field(default=None, init=False)

    @property
    def owner(self) -> tuple[str, str, str]:
        """Whose ledger rows these are: the sending mailbox's key, the profile's name for people, and the
        service that carries the message (recorded on each row)."""
        from xoromail_cli.ledger.accounts import account_key

        return account_key(self.profile.email), self.profile.name, self.profile.service

    @property
    def pipeliner(self) -> PipeliningTransport | None:
        """The transport, when it can announce the next envelope behind this one's data (checked once per
        Deliverer: isinstance against a runtime-checkable Protocol costs as much as composing a message)."""
        if self._pipelines is None:
            self._pipelines = isinstance(self.transport, PipeliningTransport)
        return cast("PipeliningTransport", self.transport) if self._pipelines else None

    def report_interrupted(self) -> list[MessageResult]:
        """What an earlier run left in flight under this event: reported once (and settled), before sending."""
        return settle_interrupted(self.ledger, self.owner[0], self.event)

    def deliver(self, envelope: Envelope, key: str, row: int = 0) -> MessageResult:
        """Deliver a message built elsewhere (the relay's spool): skipped when the ledger has it sent under
        `key`, only the still-owed recipients after a partial, then the quota watch, pacing, retries and the
        ledger rows. Raises XoromailError when the service cannot be used."""
        owed = self.owed(key, row, envelope.recipients)
        if isinstance(owed, MessageResult):
            return owed
        restricted = self.restrict(envelope, owed, key, row)
        if isinstance(restricted, MessageResult):
            return restricted
        self.pace(restricted)
        return self.send(restricted, key, row)

    def owed(self, key: str, row: int, recipients: tuple[str, ...]) -> tuple[str, ...] | MessageResult:
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
        return MessageResult(event=self.event, row=row, recipients=recipients, status="skipped",
                             reply=f"already sent on {previous.updated_at:%Y-%m-%d %H:%M} UTC "
                                   f"({previous.message_id})",
                             message_id=previous.message_id,
                             hint="pass --resend to send it again, or --resend-after for reminders", key=key)

    def restrict(self, envelope: Envelope, owed: tuple[str, ...], key: str, row: int) -> Envelope | MessageResult:
        """The envelope for those still owed; refused clearly where the service cannot send to some only."""
        if not owed:
            return envelope
        if self.transport is not None and not self.transport.subset_retries and len(owed) < len(envelope.recipients):
            return MessageResult(event=self.event, row=row, recipients=envelope.recipients, status="failed",
                                 reply=f"{len(owed)} recipient(s) are still owed from an earlier partial delivery, "
                                       f"and {self.transport.name} cannot send to some recipients only",
                                 message_id=envelope.message_id, hint="send it to them with --to … --resend",
                                 exit_code=int(ExitCode.DATAERR), key=key)
        return envelope.restricted_to(owed)

    def _due_again(self, previous: LedgerEntry) -> bool:
        """Due once `resend_after` has passed, less a grace (5%, at most an hour) for cron's jitter."""
        if self.resend_after is None:
            return False
        grace = min(self.resend_after * 0.05, timedelta(hours=1))
        return previous.created_at <= now() - self.resend_after + grace

    def pace(self, envelope: Envelope) -> None:
        """Just before a message goes out: the daily-quota watch, then the rate limit."""
        if self.before_delivery is not None:
            self.before_delivery(len(envelope.recipients))
        self.rate.wait()

    def reserve(self, envelope: Envelope) -> bool:
        """Take `envelope`'s turn now if it is due already (pipelining: its envelope may go out behind the
        current message's data): never for a message too large to send, never ahead of the pace."""
        if self.too_large(envelope) or not self.rate.try_take():
            return False
        if self.before_delivery is not None:
            self.before_delivery(len(envelope.recipients))
        return True

    def send(self, envelope: Envelope, key: str, row: int = 0, following: Envelope | None = None,
             meanwhile: Callable[[], None] | None = None) -> MessageResult:
        """Send with retries (its turn taken already); recipients refused with a 4xx are retried alone, never
        the ones that got it. `following`, on a pipelining transport, is announced behind this one's data;
        `meanwhile` (see `PipeliningTransport.send_then`) runs on the first attempt only, if its data goes.

        The ledger row of the first delivery always says who is still owed, so a run that stops at any
        point (signal, sign-in refused, quota) leaves the next run exactly the recipients left to do.
        """
        tries = _Tries(envelope=envelope, pending=envelope)
        while True:
            tries.attempt += 1
            marker = InFlight(self.ledger, self.owner, self.event, key, tries.pending, row or None)
            first = tries.attempt == 1
            try:
                delivery = self._attempt(tries.pending, marker, tries.attempt, following if first else None,
                                         meanwhile if first else None)
            except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: settled not sent if it cut the data short
                self._stopped(stop, tries, marker, key, row)
                raise
            settle = self._after_lost_answer if delivery.unknown else self._after_answer
            try:
                result = settle(tries, marker, delivery, key, row)
            except XoromailError as error:
                if not (delivery.ok or delivery.unknown or tries.message_row is not None):
                    raise
                raise self._unrecorded(tries, error, key, row) from None
            if result is not None:
                return result

    def _stopped(self, stop: KeyboardInterrupt, tries: _Tries, marker: InFlight, key: str, row: int) -> None:
        """A Ctrl-C or SIGTERM came while this attempt's data was written, before its end went out (the transport
        marked it so): the server cannot have accepted it. Its row settles as not sent (temporary) and its result
        rides on the stop for the Sender to count, both under `recording_outcome` (a further signal stops at
        once); the stop then ends the run. A ledger that fails here leaves the row in flight (in doubt)."""
        from xoromail_cli.sending.inflight import STOPPED_HINT, STOPPED_REPLY
        from xoromail_cli.services.base import stopped_before_end

        if not stopped_before_end(stop):
            return
        self._connected = False
        if self.holding is not None:
            from xoromail_cli.interrupts import recording_outcome

            self.holding.enter_context(recording_outcome(stop))
        temporary = dict.fromkeys(tries.pending.recipients, STOPPED_REPLY)
        state = owed_state(None, {**tries.permanent, **temporary}, tuple(temporary))
        try:
            marker.settle("temporary", STOPPED_REPLY, record_refusal=False)
            if tries.message_row is not None:
                tries.message_row.conclude(*state)
        except XoromailError:
            return
        if tries.message_row is None:
            delivery = Delivery(status="temporary", reply=STOPPED_REPLY, exit_code=int(ExitCode.TEMPFAIL),
                                hint=STOPPED_HINT)
            carry_result(stop, self._not_delivered(tries, delivery, temporary, key, row, quota=False))
        else:
            carry_result(stop, self._outcome(tries, key, row, state, STOPPED_REPLY, stops_batch=False))

    def _unrecorded(self, tries: _Tries, error: XoromailError, key: str, row: int) -> UnrecordedDelivery:
        """The ledger failed while recording a message that (maybe) went out: in doubt, its row in flight."""
        envelope = tries.envelope
        result = MessageResult(event=self.event, row=row, recipients=envelope.recipients, status="temporary",
                               reply=f"handed to the server, but the ledger could not record it: {error.message}",
                               message_id=envelope.message_id, hint=IN_DOUBT_HINT, exit_code=int(error.exit_code),
                               attempts=tries.attempt, key=key, possible_duplicate=tries.in_doubt, in_doubt=True)
        return UnrecordedDelivery(error, result)

    def _after_lost_answer(self, tries: _Tries, marker: InFlight, delivery: Delivery, key: str,
                           row: int) -> MessageResult | None:
        """The data went out and the answer was lost: sent again once (RFC 5321 4.5.4.1: an MTA retries a
        message whose reply it never got), or left in flight, its result `in_doubt`."""
        if not self.retry_in_doubt or tries.in_doubt or tries.attempt > self.retries:
            return MessageResult(event=self.event, row=row, recipients=tries.envelope.recipients,
                                 status="temporary", reply=delivery.reply, message_id=tries.envelope.message_id,
                                 hint=delivery.hint, exit_code=delivery.exit_code, attempts=tries.attempt, key=key,
                                 possible_duplicate=tries.in_doubt, in_doubt=True)
        tries.in_doubt = True
        marker.settle("temporary", f"{delivery.reply}; sent again in this run (a possible duplicate)",
                      record_refusal=False)
        self.backoff.pause(tries.attempt - 1)
        return None

    def _after_answer(self, tries: _Tries, marker: InFlight, delivery: Delivery, key: str,
                      row: int) -> MessageResult | None:
        """The service answered: record it, then retry the recipients refused for now, or conclude."""
        refused = self._refusals(tries.pending, delivery)
        temporary = {a: r.reply for a, r in refused.items() if r.temporary}
        tries.permanent.update({a: r.reply for a, r in refused.items() if not r.temporary})
        quota = delivery.stops_batch or any(r.stops_batch for r in refused.values())
        retry = self._retries_alone(tries, temporary, quota)
        if not retry and self.holding is not None:  # the outcome is final: recorded and counted, or neither
            from xoromail_cli.interrupts import recording_outcome

            self.holding.enter_context(recording_outcome())
        marker.settle("partial" if delivery.ok and refused else delivery.status, delivery.reply,
                      record_refusal=not retry)
        if delivery.ok and tries.message_row is None:
            tries.message_row = marker
        state = owed_state(delivery.reply if tries.message_row is marker else None,
                           {**tries.permanent, **temporary}, tuple(temporary))
        if tries.message_row is not None:
            tries.message_row.conclude(*state)
        if retry:
            self._before_retry(tries, delivery, temporary)
            return None
        if tries.message_row is None:
            return self._not_delivered(tries, delivery, temporary, key, row, quota)
        return self._outcome(tries, key, row, state, delivery.reply, quota)

    @staticmethod
    def _refusals(pending: Envelope, delivery: Delivery) -> dict[str, Refusal]:
        """Who refused: the ones named, or everyone when the whole message was refused."""
        if delivery.ok or delivery.refused:
            return dict(delivery.refused)
        return dict.fromkeys(pending.recipients,
                             Refusal(delivery.reply, delivery.status == "temporary", delivery.stops_batch))

    def _retries_alone(self, tries: _Tries, temporary: dict[str, str], quota: bool) -> bool:
        """Worth another try to those refused for now: attempts left, no quota, and the service can send to
        some recipients only (or they are all of them)."""
        if not temporary or tries.attempt > self.retries or quota:
            return False
        everyone = len(temporary) >= len(tries.pending.recipients)
        return self.transport is None or self.transport.subset_retries or everyone

    def _before_retry(self, tries: _Tries, delivery: Delivery, temporary: dict[str, str]) -> None:
        tries.pending = tries.pending.restricted_to(tuple(temporary))
        if delivery.reconnect:
            self._disconnect()
        if delivery.retry_after:
            self.rate.hold(delivery.retry_after)  # every connection sharing the limit waits too
        self.backoff.pause(tries.attempt - 1, at_least=delivery.retry_after)

    def _not_delivered(self, tries: _Tries, delivery: Delivery, temporary: dict[str, str], key: str, row: int,
                       quota: bool) -> MessageResult:
        """The result of a message no recipient got: temporary, failed, or failed for some and owed to others."""
        everyone = {**tries.permanent, **temporary}
        reply = delivery.reply if len(set(everyone.values())) <= 1 else "refused: " + "; ".join(
            f"{address}: {text}" for address, text in everyone.items())
        status: ResultStatus = "temporary" if temporary else "failed"
        exit_code = int(ExitCode.TEMPFAIL) if temporary and not tries.permanent else delivery.exit_code
        if tries.permanent and temporary:
            status, exit_code = "failed", int(ExitCode.DATAERR)
        return MessageResult(event=self.event, row=row, recipients=tries.envelope.recipients, status=status,
                             reply=reply, message_id=tries.envelope.message_id, hint=delivery.hint,
                             exit_code=exit_code, attempts=tries.attempt, key=key, stops_batch=quota,
                             refuses_sender=delivery.refuses_sender, possible_duplicate=tries.in_doubt)

    def _outcome(self, tries: _Tries, key: str, row: int, state: OwedState, reply: str,
                 stops_batch: bool) -> MessageResult:
        """The result of a message that reached at least one recipient, from its row's final `state`."""
        status, summary, owed, refused = state
        envelope = tries.envelope
        if status == "sent":
            assert self.transport is not None
            result = MessageResult(event=self.event, row=row, recipients=envelope.recipients,
                                   status=self.transport.accepted_as, reply=reply, message_id=envelope.message_id,
                                   attempts=tries.attempt, key=key)
        else:
            temporary_only = set(refused) <= set(owed)
            hint = ("the others got it; re-running sends it to these recipients only" if temporary_only
                    else "the others got it; fix these addresses, then send to them with --to … --resend")
            result = MessageResult(event=self.event, row=row, recipients=envelope.recipients, status="partial",
                                   reply=summary, message_id=envelope.message_id, hint=hint,
                                   exit_code=int(ExitCode.TEMPFAIL if temporary_only else ExitCode.DATAERR),
                                   attempts=tries.attempt, key=key, stops_batch=stops_batch)
        if tries.in_doubt:
            result.possible_duplicate = True
            result.reply = f"{result.reply} (a possible duplicate: an earlier attempt's answer was lost)"
        return result

    def _attempt(self, envelope: Envelope, marker: InFlight, attempt: int, following: Envelope | None,
                 meanwhile: Callable[[], None] | None = None) -> Delivery:
        """One try: (re)connect if needed, then send. A connection lost before the end of the data is temporary
        (the in-flight row settles so); once all of it went out, its fate is unknown: it stays in flight."""
        assert self.transport is not None
        try:
            self._connect()
            if self.too_large(envelope):
                from xoromail_cli.sending.sizelimit import too_large

                assert self.transport.max_message_size is not None
                return too_large(len(envelope.data), self.transport.max_message_size, self.transport.name,
                                 getattr(self.transport, "size_hint", None))
            pipeliner = self.pipeliner if following is not None or meanwhile is not None else None
            if pipeliner is not None:
                return pipeliner.send_then(envelope, marker.mark, following, meanwhile)
            return self.transport.send(envelope, before_data=marker.mark)
        except StageFailedError as failure:
            self._disconnect()
            error = self._went_away(failure)
            if error.exit_code != ExitCode.TEMPFAIL or attempt > self.retries:
                raise error from None
            return Delivery(status="temporary", reply=error.message, exit_code=int(error.exit_code), hint=error.hint)
        except ConnectionLostError as lost:
            self._disconnect()
            if lost.committed:  # the transport knows whether the data was handed over; trust it
                return Delivery(status="temporary", reply=lost.message, exit_code=int(ExitCode.TEMPFAIL),
                                hint=IN_DOUBT_HINT,
                                unknown=True)
            return Delivery(status="temporary", reply=lost.message, exit_code=int(ExitCode.TEMPFAIL),
                            hint=lost.hint or "the connection was lost before the message; it was retried")

    def _connect(self) -> None:
        assert self.transport is not None
        if self._connected:
            return
        self.transport.open()
        self._connected = self._opened_before = True
        if self.on_open is not None:
            self.on_open()

    def _went_away(self, failure: StageFailedError) -> StageFailedError:
        """A server that worked earlier in this run and now cannot be reached has gone away (stopped, restarted,
        the network is down): that is temporary, and the settings are not to blame."""
        if not self._opened_before or failure.stage not in ("dns", "connect"):
            return failure
        return StageFailedError(failure.stage, f"the server stopped answering during the run: {failure.message}",
                                "it worked earlier in this run, so the settings are right; a re-run sends the "
                                "messages not sent (the summary counts them)", ExitCode.TEMPFAIL)

    def open_limit(self, *, connect: bool = False) -> int | None:
        """The largest message the open connection takes; None before it opened (SMTP learns its limit from
        SIZE, Microsoft 365 from the permissions the sign-in grants). With `connect`, the connection is opened
        now if it can be (a failure is left for the attempt to meet, retry and report)."""
        if self.transport is None:
            return None
        if connect and not self._connected:
            try:
                self._connect()
            except (StageFailedError, ConnectionLostError):
                self._disconnect()
        return self.transport.max_message_size if self._connected else None

    def too_large(self, envelope: Envelope) -> bool:
        """Over the limit the open service announced (SMTP SIZE) or states: refused before any of it goes."""
        limit = self.transport.max_message_size if self.transport is not None else None
        return limit is not None and len(envelope.data) > limit

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _disconnect(self) -> None:
        self._connected = False
        if self.transport is not None:
            self.transport.close()
