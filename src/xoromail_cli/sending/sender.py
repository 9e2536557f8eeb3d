"""Send a batch's jobs: compose each row into an envelope and hand it to the `Deliverer` (the envelope level).

The batch level owns what rows mean: the event, its templates, the idempotency key of a row, dry runs, bad
rows' reports and stopping the batch. Everything about one envelope (the ledger, retries, pacing, the
transport) is the `Deliverer`'s, shared with the relay.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.compose.events import Event
from xoromail_cli.compose.render import Renderer, compose
from xoromail_cli.errors import XoromailError
from xoromail_cli.profile import Profile
from xoromail_cli.sending.batch import InvalidRow, SendJob
from xoromail_cli.sending.deliverer import Deliverer
from xoromail_cli.sending.keys import check_key_template, idempotency_key
from xoromail_cli.sending.results import MessageResult, Summary, UnrecordedDelivery, carried_result
from xoromail_cli.sending.rows import InOrder, Item, JobSource, batch_items, invalid_result, stop_error, unexpected

if TYPE_CHECKING:
    from xoromail_cli.ledger.sqlite import SentLedger as Ledger
    from xoromail_cli.services.base import PipeliningTransport, Transport


@dataclass(frozen=True)
class _Ready:
    """A message composed and due: everything the delivery needs."""

    job: SendJob
    envelope: Envelope
    key: str


@dataclass(kw_only=True)
class Sender:
    """One event's batch over one `Deliverer` (a parallel run copies it per connection: `on_connection`)."""

    event: Event
    renderer: Renderer
    deliverer: Deliverer
    subject: str | None = None
    key_template: str | None = None
    on_result: Callable[[MessageResult], None] = lambda result: None

    def __post_init__(self) -> None:
        if self.deliverer.event != self.event.name:
            raise ValueError(f"the deliverer records {self.deliverer.event!r}, not {self.event.name!r}")

    @property
    def profile(self) -> Profile:
        return self.deliverer.profile

    def on_connection(self, transport: Transport, ledger: Ledger | None,
                      on_open: Callable[[], None] | None = None) -> Sender:
        """A copy of this sender for another connection of the same run (its own transport and ledger
        connection; the pace and the quota watch stay shared)."""
        deliverer = dataclasses.replace(self.deliverer, transport=transport, ledger=ledger, on_open=on_open)
        return dataclasses.replace(self, deliverer=deliverer)

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

            summary.aborted = interruption(stop, "send")
        except Exception as error:  # noqa: BLE001  # a bug: the summary still names what was and was not sent
            summary.aborted = unexpected(error)
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

        for result in self.deliverer.report_interrupted():
            emit(result)
        for invalid in invalid_first:
            emit(invalid_result(self.event, invalid))
        return summary, emit

    def close(self) -> None:
        self.deliverer.close()

    def send_each(self, source: JobSource, emit: Callable[[int, MessageResult], None]) -> MessageResult | None:
        """Send what `source` hands out, each result emitted with its place; returns the result that stopped
        the batch, if one did. With a pipelining transport the next message is prepared (and its envelope
        commands sent) while this one's data is on the way: see `_look_ahead`."""
        taken = source.take()
        prepared: _Ready | MessageResult | None = None
        announced = False
        carried: _Early | None = None
        pipeliner = self.deliverer.pipeliner
        while taken is not None and not source.halted():
            place, item = taken
            if prepared is None:
                prepared = item if isinstance(item, MessageResult) else self._prepare(item)
            if isinstance(prepared, MessageResult):
                emit(place, prepared)
                if prepared.stops_batch:
                    return prepared
                after = carried or _Next()
            else:
                if not announced:
                    self.deliverer.pace(prepared.envelope)
                result, after = self._deliver_and_count(place, prepared, (source, pipeliner, carried), emit)
                if result.stops_batch:
                    return result
            if after.error is not None:
                raise after.error
            taken = after.upcoming if after.upcoming is not None else source.take()
            prepared, announced, carried = after.ahead, after.announced, after.carried
        return None

    def _deliver_and_count(self, place: int, prepared: _Ready,
                           how: tuple[JobSource, PipeliningTransport | None, _Early | None],
                           emit: Callable[[int, MessageResult], None]) -> tuple[MessageResult, _Next]:
        """`_deliver`, then `emit` its result. A Ctrl-C or SIGTERM that comes once the outcome is being written to
        the ledger waits until it is emitted (counted in the summary): the ledger and the summary agree. One that
        cut the message's data short (not sent) carries its result, emitted before the stop goes on."""
        with ExitStack() as holding:
            self.deliverer.holding = holding
            try:
                result, after = self._deliver(prepared, *how)
            except UnrecordedDelivery as unrecorded:  # reported in doubt, then the run stops on the ledger's error
                emit(place, unrecorded.result)
                raise
            except KeyboardInterrupt as stop:  # cut short before its end went out: counted as its row reads
                stopped = carried_result(stop)
                if stopped is not None:
                    emit(place, stopped)
                raise
            finally:
                self.deliverer.holding = None
            emit(place, result)
        return result, after

    def _deliver(self, prepared: _Ready, source: JobSource, pipeliner: PipeliningTransport | None,
                 carried: _Early | None) -> tuple[MessageResult, _Next]:
        """Send `prepared`; returns its result and what is known of the next item (see `_Next`). `carried` is
        the item after `prepared`, if it was taken (and prepared) while the previous message's reply was awaited.

        Pipelining: the next item is prepared and announced behind this message's data (`_look_ahead`), and the
        one after it is prepared while the replies are awaited. Lock-step: the next item is prepared then."""
        if pipeliner is None:
            return self.deliverer.send(prepared.envelope, prepared.key, prepared.job.row), _Next()
        if not pipeliner.pipelining:
            early = _Early(self, source, frozenset({prepared.key}))
            return self.deliverer.send(prepared.envelope, prepared.key, prepared.job.row, meanwhile=early), early
        upcoming, made = (carried.upcoming, carried.ahead) if carried and carried.upcoming else (
            source.take(wait=False), None)
        ahead, ahead_announced = self._look_ahead(prepared, upcoming, made)
        # the one after `ahead` must differ from both keys: neither is recorded as sent while it is prepared
        then = _Early(self, source, frozenset({prepared.key, ahead.key})) if isinstance(ahead, _Ready) else None
        result = self.deliverer.send(prepared.envelope, prepared.key, prepared.job.row,
                                     ahead.envelope if isinstance(ahead, _Ready) and ahead_announced else None,
                                     meanwhile=then)
        return result, _Next(upcoming, ahead, ahead_announced, then)

    def _look_ahead(self, current: _Ready, upcoming: tuple[int, Item] | None,
                    made: _Ready | MessageResult | None = None) -> tuple[_Ready | MessageResult | None, bool]:
        """Prepare the next item now (unless `made` is its preparation already, checked against `current`'s key
        when it was made), and say whether its envelope may go out behind `current`'s data.

        It may when its rate slot is due already (pacing stays exact: no MAIL FROM before its time) and its
        key differs from `current`'s (a repeated row must see `current`'s ledger row before it is checked).
        """
        if upcoming is None:
            return None, False
        item = upcoming[1]
        if isinstance(item, MessageResult):
            return item, False
        prepared = made
        if prepared is None:
            key = idempotency_key(self.event, item, self.key_template)
            if key == current.key:
                return None, False
            try:
                prepared = self._prepare(item, key)
            except XoromailError:
                return None, False  # prepared again in its turn, after `current`, and reported there
        if isinstance(prepared, _Ready) and self.deliverer.reserve(prepared.envelope):
            return prepared, True
        return prepared, False

    def prepare_early(self, avoid: frozenset[str], upcoming: tuple[int, Item] | None) -> _Ready | MessageResult | None:
        """An item prepared while a reply is awaited, or None to prepare it in its turn: when its key is one of
        `avoid` (the messages not yet recorded: it must see their ledger rows) or preparing it failed (reported in
        its turn, as before). Nothing goes out early: its pace and its MAIL FROM wait for its turn."""
        if upcoming is None:
            return None
        item = upcoming[1]
        if isinstance(item, MessageResult):
            return item
        try:
            key = idempotency_key(self.event, item, self.key_template)
            return None if key in avoid else self._prepare(item, key)
        except Exception:  # noqa: BLE001  # prepared again in its turn, which reports the error as before
            return None

    def _too_large_on_disk(self, job: SendJob, key: str) -> MessageResult | None:
        """Attachments too large for the service, refused by their size on disk before any is read. For files
        worth it (over a megabyte), the connection opens first, so even the first message knows the limit."""
        from xoromail_cli.sending.sizelimit import WORTH_CONNECTING_FOR, attachments_too_large, on_disk

        transport = self.deliverer.transport
        if transport is None or not job.attachments:
            return None
        limit = self.deliverer.open_limit(connect=on_disk(job.attachments) > WORTH_CONNECTING_FOR)
        refusal = attachments_too_large(job.attachments, limit, transport.name, getattr(transport, "size_hint", None))
        if refusal is None:
            return None
        return MessageResult(event=self.event.name, row=job.row, recipients=job.recipients.envelope,
                             status="failed", reply=refusal.reply, hint=refusal.hint, exit_code=refusal.exit_code,
                             key=key)

    def _prepare(self, job: SendJob, key: str | None = None) -> _Ready | MessageResult:
        """Everything before sending: already sent (skipped), owed recipients only, composed; or a dry run.
        `key` is the job's idempotency key when the caller has it already."""
        key = key if key is not None else idempotency_key(self.event, job, self.key_template)
        owed = self.deliverer.owed(key, job.row, job.recipients.envelope)
        if isinstance(owed, MessageResult):
            return owed
        oversize = self._too_large_on_disk(job, key)
        if oversize is not None:
            return oversize
        envelope, rendered = compose(self.profile, self.renderer, self.event, job.recipients, job.variables,
                                     attachments=job.attachments, reply_to=job.reply_to, subject=self.subject,
                                     row=job.row)
        restricted = self.deliverer.restrict(envelope, owed, key, job.row)
        if isinstance(restricted, MessageResult):
            return restricted
        if self.deliverer.transport is None:
            return MessageResult(event=self.event.name, row=job.row, recipients=envelope.recipients,
                                 status="dry-run", reply="not sent (dry run)", message_id=restricted.message_id,
                                 key=key, rendered=rendered, envelope=restricted)
        return _Ready(job, restricted, key)


class _Next:
    """What a send left known of the next item: taken already (`upcoming`), prepared (`ahead`), its envelope
    announced behind the data (pipelining), or the error taking it raised, raised once this message is reported."""

    def __init__(self, upcoming: tuple[int, Item] | None = None, ahead: _Ready | MessageResult | None = None,
                 announced: bool = False, carried: _Early | None = None) -> None:
        self.upcoming, self.ahead, self.announced, self.carried = upcoming, ahead, announced, carried
        """`carried`: the item after `ahead`, taken while the replies were awaited (pipelining)."""
        self._error: Exception | None = None

    @property
    def error(self) -> Exception | None:
        return self._error if self._error is not None else self.carried.error if self.carried else None


class _Early(_Next):
    """`meanwhile` of a lock-step send: takes the next item and prepares it (ledger lookup, render, MIME) while
    the server works on the current message's data, whose reply is read afterwards. Runs at most once."""

    def __init__(self, sender: Sender, source: JobSource, avoid: frozenset[str]) -> None:
        super().__init__()
        self._sender, self._source, self._avoid = sender, source, avoid
        self._called = False

    def __call__(self) -> None:
        if self._called:
            return
        self._called = True
        try:
            self.upcoming = self._source.take(wait=False)
        except Exception as error:  # noqa: BLE001  # a failing batch reader: raised after this message is recorded
            self._error = error
            return
        self.ahead = self._sender.prepare_early(self._avoid, self.upcoming)
