"""`queue status`: the spool in numbers, for a person and for monitoring (its exit code says healthy or not).

Queued, held, failed and in doubt; the oldest queued message's age; whether delivery is paused, why and until
when; and how long the backlog takes at the mailbox's pace. `notes` is a list of plain sentences about what
needs a person (senders held, messages held, and what expires soon: `queue status` adds `services.expiry`'s
notes for the profile, also as `expiring`); other parts may add theirs with `QueueStatus.note`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from xoromail_cli.relay.control import SpoolControl, read_control

if TYPE_CHECKING:
    from xoromail_cli.relay.spool import QueueEntry, Spool

STATUS_SCHEMA = 1
DEFAULT_MAX_AGE = 3600.0


def iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(kw_only=True)
class QueueStatus:
    """One spool's state at one moment (seconds, counts; times as ISO 8601 UTC)."""

    queued: int = 0
    held: int = 0
    failed: int = 0
    in_doubt: int = 0
    oldest_age_s: float | None = None
    paused: bool = False
    pause_reason: str | None = None
    pause_hint: str | None = None
    resumes_at: str | None = None
    eta_s: float | None = None
    held_senders: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Sentences for a person: what is held and why, what expires soon; more may be added (`note`)."""
    expiring: list[dict[str, str]] = field(default_factory=list)
    """What the profile depends on that expires soon (`services.expiry`: kind, expires, command, note)."""
    spool: str = ""
    profile: str = ""
    """The profile whose spool it is (`queue status --all-profiles`); empty for one spool."""

    def note(self, text: str) -> None:
        self.notes.append(text)

    def healthy(self, max_age: float) -> bool:
        """Not paused, and no queued message older than `max_age` seconds."""
        return not self.paused and (self.oldest_age_s is None or self.oldest_age_s <= max_age)

    def to_json(self) -> dict[str, Any]:
        return {"queued": self.queued, "held": self.held, "failed": self.failed, "in_doubt": self.in_doubt,
                "oldest_age_s": self.oldest_age_s, "paused": self.paused, "pause_reason": self.pause_reason,
                "pause_hint": self.pause_hint, "resumes_at": self.resumes_at, "eta_s": self.eta_s,
                "held_senders": self.held_senders, "notes": self.notes, "expiring": self.expiring,
                "spool": self.spool,
                **({"profile": self.profile} if self.profile else {}), "schema": STATUS_SCHEMA}


def due_at(entry: QueueEntry, control: SpoolControl, moment: float) -> float | None:
    """When a queued message will really be tried: its own next try, put off by a pause or by its sender's
    hold; None for a held message (never, until released) and for a failed one."""
    if entry.where != "queue" or entry.state.held:
        return None
    due = entry.state.next_attempt
    if control.paused(moment):
        due = max(due, control.paused_until)
    hold = control.sender_hold(entry.sender, moment)
    if hold is not None:
        due = max(due, hold.until)
    return max(due, moment)


def _count(status: QueueStatus, entry: QueueEntry, moment: float) -> None:
    if entry.where == "failed":
        status.failed += 1
        return
    status.in_doubt += int(entry.state.in_doubt)
    if entry.state.held:
        status.held += 1
        return
    status.queued += 1
    age = max(0.0, moment - entry.received_at)
    status.oldest_age_s = age if status.oldest_age_s is None else max(status.oldest_age_s, age)


def queue_status(spool: Spool, moment: float, per_second: float | None = None) -> QueueStatus:
    """The spool's status at `moment`; `per_second` is the pace when the relay has not written its own."""
    control = read_control(spool.root)
    status = QueueStatus(spool=str(spool.root))
    for entry in spool.entries():
        _count(status, entry, moment)
    if status.oldest_age_s is not None:
        status.oldest_age_s = round(status.oldest_age_s, 1)
    wait = 0.0
    if control.paused(moment):
        status.paused, status.resumes_at = True, iso(control.paused_until)
        status.pause_reason, status.pause_hint = control.pause_reason, control.pause_hint or None
        wait = control.paused_until - moment
    pace = control.per_second or per_second
    status.eta_s = round(wait + status.queued / pace if pace else wait, 1) if status.queued else 0.0
    for address, hold in sorted(control.senders.items()):
        if moment < hold.until:
            status.held_senders.append({"sender": address, "reason": hold.reason, "resumes_at": iso(hold.until)})
            status.note(f"messages from {address} wait until {iso(hold.until)}: {hold.reason}")
    if status.held:
        status.note(f"{status.held} message(s) held for a person: `xoromail queue release ID` sends one")
    return status
