"""What happened to each message, and to the run as a whole: data for the CLI to render."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from xoromail_cli.errors import ExitCode, XoromailError

if TYPE_CHECKING:
    from xoromail_cli.compose.envelope import Envelope
    from xoromail_cli.compose.render import Rendered

ResultStatus = Literal["sent", "written", "partial", "failed", "temporary", "skipped", "invalid", "interrupted",
                       "dry-run"]


@dataclass(kw_only=True)
class MessageResult:
    """One message's outcome. Built by keyword: ten of its fields have defaults, and their order means nothing."""

    event: str
    row: int
    recipients: tuple[str, ...]
    status: ResultStatus
    reply: str = ""
    message_id: str | None = None
    hint: str | None = None
    exit_code: int = 0
    attempts: int = 0
    key: str | None = None
    rendered: Rendered | None = None
    envelope: Envelope | None = None
    stops_batch: bool = False
    refuses_sender: bool = False
    """The service refused the From address itself (Send As), not the account: `Delivery.refuses_sender`."""
    possible_duplicate: bool = False
    """Sent again after a lost answer: the recipient may have it twice."""
    in_doubt: bool = False
    """Its fate is unknown: the data went out and the answer never came (in this run or an earlier one). It
    stays in flight in the ledger; the next run reports it and sends it again. Read this, never the hint."""

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "row": self.row or None, "recipients": list(self.recipients),
                "message_id": self.message_id, "status": self.status, "reply": self.reply, "hint": self.hint,
                "attempts": self.attempts, "key": self.key, "possible_duplicate": self.possible_duplicate,
                "in_doubt": self.in_doubt}


@dataclass
class Summary:
    counts: dict[str, int] = field(default_factory=dict)
    first_permanent: int | None = None
    aborted: XoromailError | None = None
    total: int | None = None
    """The rows of the run (`sending.plan.SendPlan.total`), when known: what was not reached is counted from it."""

    def add(self, result: MessageResult) -> None:
        self.counts[result.status] = self.counts.get(result.status, 0) + 1
        permanent = result.status in ("failed", "invalid") or (
            result.status == "partial" and result.exit_code != ExitCode.TEMPFAIL)
        if permanent and self.first_permanent is None:
            self.first_permanent = result.exit_code or int(ExitCode.DATAERR)

    def count(self, status: str) -> int:
        return self.counts.get(status, 0)

    @property
    def not_attempted(self) -> int:
        """Rows the run never reached because it stopped early (reports of earlier runs do not count)."""
        if self.total is None:
            return 0
        reached = sum(count for status, count in self.counts.items() if status != "interrupted")
        return max(self.total - reached, 0)

    @property
    def exit_code(self) -> int:
        """A failure a person must fix outranks one a later run will clear (so a scheduler alerts); a run
        that stopped for any reason but a temporary one reports why it stopped."""
        if self.aborted is not None and self.aborted.exit_code != ExitCode.TEMPFAIL:
            return int(self.aborted.exit_code)
        if self.first_permanent is not None:
            return self.first_permanent
        if self.aborted is not None:
            return int(self.aborted.exit_code)
        if self.count("temporary") or self.count("partial"):
            return int(ExitCode.TEMPFAIL)
        return 0

    def line(self) -> str:
        """This run's rows, then what an earlier run left in doubt (status `interrupted`), so the two never read
        as one count: `0 sent, 0 failed, 0 skipped, 2 not attempted, 2 left in doubt by an earlier run`."""
        order = ("sent", "written", "dry-run", "partial", "failed", "temporary", "skipped", "invalid")
        parts = [f"{self.count(s)} {s}" for s in order if self.count(s) or s in ("sent", "failed", "skipped")]
        if self.not_attempted:
            parts.append(f"{self.not_attempted} not attempted")
        if self.count("interrupted"):
            parts.append(f"{self.count('interrupted')} left in doubt by an earlier run")
        return ", ".join(parts)


class UnrecordedDelivery(XoromailError):
    """The ledger failed (lost, or its table locked past the deadline) after the service accepted a message:
    the run stops with the ledger's own error, and `result` reports that message in doubt, never as not sent
    ("accepted means recorded": it was not recorded, so it is not reported sent either). Its row stays in
    flight; the next run reports it and sends it again (a possible duplicate)."""

    def __init__(self, error: XoromailError, result: MessageResult) -> None:
        super().__init__(error.message, error.hint, exit_code=error.exit_code, field=error.field)
        self.result = result


_CARRIED = "xoromail_result"


def carry_result(stop: KeyboardInterrupt, result: MessageResult) -> None:
    """Let a Ctrl-C or SIGTERM carry the result of the message it cut short (settled in the ledger already) to
    the Sender, which counts it before the stop ends the run (the same exception: `Terminated` stays one)."""
    setattr(stop, _CARRIED, result)


def carried_result(stop: BaseException) -> MessageResult | None:
    result = getattr(stop, _CARRIED, None)
    return result if isinstance(result, MessageResult) else None
