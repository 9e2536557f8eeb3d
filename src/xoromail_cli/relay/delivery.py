"""The relay's background delivery: spooled messages go out through the profile's service, via `Deliverer`.

Each burst of due messages is one ledger lock (`ledger.open_for_sending`) and one session with the service.
The `Deliverer`, the envelope level of the engine `send` uses, does what it does for `send`: the ledger rows
(idempotency key from the Message-ID and the content, so a message delivered before a crash is never sent again), the
retries of refused recipients, pacing and quota stops; the limits are asked once (`sending.limits`). What
stays the relay's own is the spool's schedule: a temporary failure keeps the message queued with back-off
(kept across restarts), a permanent one moves it to `failed/` and may be reported by mail, a service that
cannot be used (down, sign-in refused) pauses the whole queue, and so does a refusal of the whole account; a
refusal of one From address (Send As not granted for it) holds that address's messages only. The pause and the
held senders are kept in the spool's `control.json` (`control`), where `queue status` reads them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from xoromail_cli.errors import DataError, ExitCode, NoInputError, UnavailableError, XoromailError
from xoromail_cli.pacing import Backoff, RateLimiter
from xoromail_cli.relay.control import SenderHold, read_control, write_control
from xoromail_cli.relay.outcomes import (
    IN_DOUBT_HELD,
    INTERRUPTED_HELD,
    RELAY_EVENT,
    held_in_doubt,
    held_in_doubt_hint,
    relay_advice,
    relay_key,
)
from xoromail_cli.relay.sizes import SizeLimit
from xoromail_cli.relay.spool import QueueState, Spool, Spooled
from xoromail_cli.sending.results import MessageResult

if TYPE_CHECKING:
    from xoromail_cli.ledger.sqlite import SentLedger
    from xoromail_cli.profile import Profile
    from xoromail_cli.sending.deliverer import Deliverer
    from xoromail_cli.services.base import Transport

EventLog = Callable[[str], None]


def event_line(kind: str, **fields: object) -> str:
    """One log line: `kind key=value …`, values quoted when they hold spaces, never a line break."""
    parts = [kind]
    for name, value in fields.items():
        if value is None:
            continue
        text = " ".join(str(value).split()).replace('"', "'")
        key = name.replace("_", "-")
        parts.append(f'{key}="{text}"' if " " in text or not text else f"{key}={text}")
    return " ".join(parts)


def _cause(exc: BaseException) -> str:
    """An unexpected error by its type (and a file error by its reason): a library's text may quote secrets."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__} ({exc.strerror})"
    return type(exc).__name__


@dataclass(frozen=True, kw_only=True)
class DeliveryOptions:
    retry_delay: float = 30.0
    """The spool's back-off base: a message refused for now is tried again after about this, then twice as
    long each time, up to `max_delay`."""
    max_delay: float = 3600.0
    give_up_after: float = 5 * 86400.0
    """Seconds after which a message still refused for now is failed (as MTAs give up after some days)."""
    retries: int = 1
    """Retries within one attempt (a 421 or an expired token: reconnect and try again at once)."""
    quota_pause: float = 900.0
    lock_wait: float = 10.0
    """Seconds to wait for the account lock a `send` holds before pausing (a stop waits at most this long)."""
    timeout: float | None = None
    rate: str | None = None
    bounce_to: str | None = None
    linger: float = 2.0
    """Seconds a session (and the ledger lock) is kept after the queue empties, for the next message."""
    retry_in_doubt: bool = True
    """Send a message whose answer was lost after its data again (a possible duplicate); False holds it for
    a person (`queue release` sends it, `queue drop` does not)."""
    idle: float = 5.0
    """Seconds between looks at the spool when nothing wakes the worker (a `queue retry` from outside)."""


class DeliveryWorker:
    """Delivers the spool in a thread; `wake()` after a message is kept, `stop()` to finish and end."""

    def __init__(self, profile: Profile, spool: Spool, log: EventLog, options: DeliveryOptions | None = None) -> None:
        from xoromail_cli.sending.limits import RunLimits

        self.profile, self.spool, self.log = profile, spool, log
        self.options = options or DeliveryOptions()
        self.limits = RunLimits.of(profile, self.options.rate)  # asked of the provider once, for every burst
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self.control = read_control(spool.root)
        self._failures = 0
        self.rate = RateLimiter(per_second=self.limits.per_second, per_hour=self.limits.per_hour, sleep=self._sleep)
        self._schedule = Backoff(base=self.options.retry_delay, cap=self.options.max_delay)
        self._thread: threading.Thread | None = None
        self.size = SizeLimit()
        """The largest message the service takes (the relay refuses a larger one at DATA)."""

    def _sleep(self, seconds: float) -> None:
        """Pacing and retry waits end early on stop: the message in hand is finished, not abandoned."""
        self._stopping.wait(seconds)

    def start(self) -> DeliveryWorker:
        """Deliver in a thread. A start is a fresh look: a pause an earlier run left ends (the senders held
        stay held), and the pace is written down for `queue status`."""
        self.control = read_control(self.spool.root)
        self.control.paused_until, self.control.pause_reason, self.control.pause_hint = 0.0, "", ""
        self.control.per_second = self.limits.per_second
        write_control(self.spool.root, self.control)
        self._thread = threading.Thread(target=self._loop, name="relay-delivery", daemon=True)
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Finish the delivery in progress, then end; the rest stays in the spool."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def refuse_size(self, size: int) -> str | None:
        """The DATA answer for a message too large for this mailbox's service, else None."""
        return self.size.refusal(size)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._round()
            except OSError as exc:  # the spool itself cannot be written (a full disk): wait and look again
                self._failures += 1
                delay = self._schedule.delay(self._failures - 1)
                self.log(event_line("paused", cause=f"the spool {self.spool.root} cannot be written: {_cause(exc)}",
                                    hint=relay_advice("free disk space or fix the spool folder's permissions",
                                                      delay), retry_in=f"{delay:.1f}s"))
                self._wake.wait(delay)

    def _round(self) -> None:
        """One look at the queue: deliver what is due, or wait until something is (or a pause ends)."""
        self._wake.clear()
        self.control = read_control(self.spool.root)  # `queue retry` may have ended a pause meanwhile
        moment = time.time()
        if self.control.paused(moment):
            self._wake.wait(min(self.control.paused_until - moment, self.options.idle))
            return
        try:
            ready, later = self.spool.due(moment)
            if ready:
                self.deliver(ready)
                return
        except Exception as exc:  # noqa: BLE001  # the worker outlives any one failure; the spool keeps the mail
            self._pause(UnavailableError(f"delivery stopped by an unexpected {_cause(exc)}",
                                         "the messages stay in the spool; if this repeats, report it"))
            return
        wait = self.options.idle if later is None else max(0.02, min(self.options.idle, later - moment))
        self._wake.wait(wait)

    def deliver(self, ready: list[str]) -> None:
        """One burst: the ledger locked and one session with the service, for as long as messages are due."""
        from xoromail_cli import credentials, ledger, services

        with ExitStack() as stack:
            try:
                sent_ledger = stack.enter_context(ledger.open_for_sending(self.profile, self.options.lock_wait))
                transport = services.open_transport(self.profile, credentials.Secrets(self.profile),
                                                    timeout=self.options.timeout)
            except XoromailError as error:
                self._pause(error)
                return
            current: str | None = None
            try:
                deliverer = self._deliverer(transport, sent_ledger)
                self._report_interrupted(deliverer.report_interrupted())  # what an earlier run left in flight
                while ready and not self._stopping.is_set():
                    for current in ready:
                        if self._stopping.is_set() or self.control.paused(time.time()):
                            return
                        self._one(deliverer, current)
                    current = None
                    ready = self.spool.due(time.time())[0] or self._linger()
                self._failures = 0
            except XoromailError as error:
                self._pause(error, current)
            finally:
                self.size.update(transport)  # a permission granted meanwhile (Graph) shows up here
                transport.close()

    def _linger(self) -> list[str]:
        """With the queue empty, keep the session a moment for the next message of a trickle (an ERP sends
        one message per connection, often a second apart) rather than signing in again for each."""
        self._wake.clear()
        if self._stopping.is_set() or not self._wake.wait(self.options.linger):
            return []
        return self.spool.due(time.time())[0]

    def _deliverer(self, transport: Transport, sent_ledger: SentLedger) -> Deliverer:
        """The envelope level of the send engine, for one burst: the ledger, the pace and the quota watch."""
        from xoromail_cli.ledger.accounts import account_key
        from xoromail_cli.sending.deliverer import Deliverer
        from xoromail_cli.sending.limits import QuotaWatch

        def warn(text: str) -> None:
            self.log(event_line("warning", text=text))

        watch = QuotaWatch(self.limits.provider, account_key(self.profile.email), sent_ledger,
                           warn)
        return Deliverer(profile=self.profile, event=RELAY_EVENT, transport=transport, ledger=sent_ledger,
                         retries=self.options.retries, backoff=Backoff(base=1.0, cap=10.0, sleep=self._sleep),
                         rate=self.rate, before_delivery=watch, retry_in_doubt=self.options.retry_in_doubt)

    def _report_interrupted(self, results: list[MessageResult]) -> None:
        """Messages an earlier run left in flight (killed during an upload): reported; under
        --no-retry-in-doubt, their spool files are held for a person instead of sent again."""
        held = held_in_doubt(self.spool, results) if results and not self.options.retry_in_doubt else {}
        for result in results:
            spool_id = held.get(result.key or "")
            self.log(event_line("held" if spool_id else "in-doubt", id=spool_id, message_id=result.message_id,
                                to=len(result.recipients), reply=INTERRUPTED_HELD if spool_id else result.reply,
                                hint=held_in_doubt_hint(spool_id) if spool_id else None))

    def _one(self, deliverer: Deliverer, spool_id: str) -> None:
        try:
            spooled = self.spool.load(spool_id)
        except NoInputError:
            return  # dropped by `queue drop` meanwhile
        except DataError as damaged:
            self.spool.fail(spool_id, QueueState(attempts=1, last_reply=damaged.message))
            self.log(event_line("failed", id=spool_id, reply=damaged.message, hint=damaged.hint))
            return
        state = self.spool.state(spool_id)
        if state.held:
            return  # held by `queue hold` meanwhile
        self.control = read_control(self.spool.root)  # a `queue retry` during a long burst ends a hold at once
        hold = self.control.sender_hold(spooled.envelope.sender, time.time())
        if hold is not None:  # its From is held: the message waits with it, the others go on
            self.spool.set_state(spool_id, replace(state, next_attempt=hold.until, last_reply=hold.reason))
            return
        result = deliverer.deliver(spooled.envelope, relay_key(spooled.envelope))
        self._settle(spooled, state, result)

    def _settle(self, spooled: Spooled, state: QueueState, result: MessageResult) -> None:
        """Remove, keep for later, or fail the message, from what the Deliverer made of it."""
        fields = {"id": spooled.id, "message_id": spooled.envelope.message_id, "to": len(spooled.envelope.recipients)}
        if result.status in ("sent", "written", "skipped"):
            self.spool.remove(spooled.id)
            kind = "delivered" if result.status != "skipped" else "already-delivered"
            self.log(event_line(kind, **fields, attempts=state.attempts + 1, reply=result.reply))
            return
        attempts = state.attempts + 1
        if result.in_doubt and not self.options.retry_in_doubt:
            self.spool.set_state(spooled.id, QueueState(attempts=attempts, last_reply=result.reply, in_doubt=True,
                                                        held=IN_DOUBT_HELD))
            self.log(event_line("held", **fields, reply=result.reply, hint=held_in_doubt_hint(spooled.id)))
            return
        # a quota or a refusal of the whole account holds every message, a refusal of one From address that
        # address's messages: kept until it clears or is fixed
        temporary = result.status == "temporary" or result.stops_batch or (
            result.status == "partial" and result.exit_code == ExitCode.TEMPFAIL)
        if temporary and time.time() - spooled.received_at < self.options.give_up_after:
            self._defer(spooled, attempts, result, fields)
            return
        reply = result.reply if not temporary else f"gave up after {attempts} attempts: {result.reply}"
        self.spool.fail(spooled.id, QueueState(attempts=attempts, last_reply=reply))
        self.log(event_line("failed", **fields, attempts=attempts, reply=reply, hint=result.hint))
        if self.options.bounce_to and not spooled.report:
            from xoromail_cli.relay.report import failure_report

            report = failure_report(self.profile, spooled, reply, self.options.bounce_to)
            self.log(event_line("reported", id=self.spool.put(report, report=True), about=spooled.id,
                                to=self.options.bounce_to))

    def _defer(self, spooled: Spooled, attempts: int, result: MessageResult, fields: dict[str, object]) -> None:
        """Keep the message for a later try; a refused From holds its sender, a quota or a refusal of the
        whole account pauses the mailbox."""
        delay = self._schedule.delay(attempts - 1)
        sender = spooled.envelope.sender
        kind, hint, pausing = ("in-doubt" if result.in_doubt else "deferred"), result.hint, False
        if result.stops_batch:
            delay = max(delay, self.options.quota_pause)
            hint = relay_advice(result.hint, delay)
            if result.refuses_sender and sender.lower() != self.profile.email.lower():
                kind = "sender-held"
                self.control.senders[sender.lower()] = SenderHold(until=time.time() + delay, reason=result.reply,
                                                                  hint=hint)
            else:
                pausing = True
                self._set_pause(delay, result.reply, hint)
            write_control(self.spool.root, self.control)
        self.spool.set_state(spooled.id, QueueState(attempts=attempts, next_attempt=time.time() + delay,
                                                    last_reply=result.reply, in_doubt=result.in_doubt))
        self.log(event_line(kind, **fields, sender=sender if kind == "sender-held" else None, attempts=attempts,
                            retry_in=f"{delay:.1f}s", reply=result.reply, hint=hint))
        if pausing:
            self.log(event_line("paused", cause=result.reply, hint=hint, exit_code=result.exit_code or None,
                                retry_in=f"{delay:.1f}s", **self._backlog()))

    def _backlog(self) -> dict[str, int]:
        queued, held = self.spool.backlog()
        return {"queued": queued, "held": held}

    def _set_pause(self, delay: float, reason: str, hint: str) -> None:
        self.control.paused_until = time.time() + delay
        self.control.pause_reason, self.control.pause_hint = reason, hint

    def _pause(self, error: XoromailError, spool_id: str | None = None) -> None:
        """The service cannot be used now (down, sign-in refused, ledger locked): every message waits."""
        from xoromail_cli.services import expiry

        expiry.learn_from_error(self.profile, error.message)  # AADSTS7000222: a note from now on, as send's
        self._failures += 1
        delay = self._schedule.delay(self._failures - 1)
        hint = relay_advice(error.hint, delay)
        self._set_pause(delay, error.message, hint)
        write_control(self.spool.root, self.control)
        if spool_id is not None:
            state = self.spool.state(spool_id)
            self.spool.set_state(spool_id, replace(state, attempts=state.attempts + 1, last_reply=error.message))
        self.log(event_line("paused", cause=error.message, hint=hint, exit_code=int(error.exit_code),
                            retry_in=f"{delay:.1f}s", **self._backlog()))
