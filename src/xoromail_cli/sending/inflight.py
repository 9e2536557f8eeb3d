"""The ledger rows of one message's attempts: in flight just before its data, then settled with its outcome.

One row per delivery attempt; the row of the first delivery always says who is still owed, so a run that
stops at any point leaves the next run exactly the recipients left to do. A row an earlier run left in
flight is reported once by the next (`settle_interrupted`), its result `in_doubt`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from xoromail_cli.sending.results import MessageResult

if TYPE_CHECKING:
    from xoromail_cli.compose.envelope import Envelope
    from xoromail_cli.ledger.sqlite import LedgerStatus
    from xoromail_cli.ledger.sqlite import SentLedger as Ledger

OwedState = tuple[Literal["sent", "partial"], str, tuple[str, ...], tuple[str, ...]]
"""How a message's ledger row reads: (status, summary, still owed, refused)."""


class InFlight:
    """Ledger bookkeeping of one attempt: in flight just before DATA, then settled with its outcome."""

    def __init__(self, ledger: Ledger | None, owner: tuple[str, str, str], event: str, key: str,
                 envelope: Envelope, row: int | None) -> None:
        """`owner` is (account key, profile name, service): rows belong to the mailbox; the profile and the
        service that carried the message are noted."""
        self._ledger, (self._account, self._profile, self._service) = ledger, owner
        self._event, self._key = event, key
        self._envelope, self._row = envelope, row
        self.entry_id: int | None = None
        self._written: tuple[str, str, tuple[str, ...]] | None = None

    def mark(self) -> None:
        """Called just before DATA: from here on the message may reach the server."""
        if self._ledger is not None:
            self.entry_id = self._ledger.begin(self._account, self._event, self._key, self._envelope.recipients,
                                               self._envelope.message_id, self._row, profile=self._profile,
                                               service=self._service)

    def conclude(self, status: LedgerStatus, reply: str, pending: tuple[str, ...] = (),
                 refused: tuple[str, ...] = ()) -> None:
        """The message's state, kept on the row of its first delivery: who got it and who is still owed."""
        if self._ledger is not None and self.entry_id is not None and self._written != (status, reply, pending):
            self._ledger.finish(self.entry_id, status, reply, pending, refused)
            self._written = (status, reply, pending)

    def settle(self, status: LedgerStatus, reply: str, *, record_refusal: bool) -> None:
        """Close the in-flight row; an attempt refused before DATA is recorded once it is final."""
        if self._ledger is None:
            return
        if self.entry_id is not None:
            self._ledger.finish(self.entry_id, status, reply)
            self._written = (status, reply, ())
        elif record_refusal:
            self._ledger.record(self._account, self._event, self._key, self._envelope.recipients,
                                self._envelope.message_id, self._row, status, reply, profile=self._profile,
                                service=self._service)


def owed_state(reply: str | None, remaining: dict[str, str], owed: tuple[str, ...]) -> OwedState:
    """How the message row reads now: sent, or partial with the refusals listed and who is still owed."""
    if not remaining:
        return "sent", reply or "delivered to every recipient", (), ()
    listed = "; ".join(f"{address}: {text}" for address, text in remaining.items())
    return "partial", f"delivered except to {listed}", owed, tuple(remaining)


STOPPED_REPLY = "the run was stopped while the message was being written, before its end went out: not sent"
"""How the row of a message reads when Ctrl-C or SIGTERM cut its data short: not in flight, never in doubt."""
STOPPED_HINT = "a server accepts a message only once it has read its end: a re-run sends it, with no duplicate"

EARLIER_RUN_REPLY = ("an earlier run sent it and its answer never came: that run was stopped, or the server did not "
                     "answer the data in time; it may have been delivered; it is sent again if still due (a "
                     "possible duplicate)")
"""True whether the earlier run was killed mid-message or ended normally after a timed-out DATA reply."""


def settle_interrupted(ledger: Ledger | None, account: str, event: str) -> list[MessageResult]:
    """Messages an earlier run left in flight (for this account): reported once, before anything is sent."""
    if ledger is None:
        return []
    results = []
    for entry in ledger.interrupted(account, event):
        ledger.settle_interrupted(entry.id)
        results.append(MessageResult(event=entry.event, row=entry.row or 0, recipients=entry.recipients,
                                     status="interrupted",
                                     reply=EARLIER_RUN_REPLY,
                                     message_id=entry.message_id, key=entry.idempotency_key, in_doubt=True))
    return results
