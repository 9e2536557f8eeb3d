"""What the delivery decided for a whole spool, kept beside it so that `queue` commands see and steer it.

`control.json` in the spool's folder says whether delivery is paused (until when, why, what to do), which From
addresses are held (the service refused to let the mailbox send as them) and the pace delivery runs at. The
relay writes it when it pauses or holds a sender; `queue retry` clears the pause and the holds, and a running
relay reads it again before each look at the queue. The file is replaced whole (fsynced, renamed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xoromail_cli.paths import private_dir
from xoromail_cli.relay.spool import write_durably

CONTROL_FILE = "control.json"


@dataclass(frozen=True, kw_only=True)
class SenderHold:
    """One From address the service refused to let the mailbox send as: its messages wait, the others go."""

    until: float
    reason: str
    hint: str = ""


@dataclass(kw_only=True)
class SpoolControl:
    """The spool-wide state: the pause, the held senders and the pace (messages a second, None: unpaced)."""

    paused_until: float = 0.0
    pause_reason: str = ""
    pause_hint: str = ""
    senders: dict[str, SenderHold] = field(default_factory=dict)
    per_second: float | None = None

    def paused(self, moment: float) -> bool:
        return moment < self.paused_until

    def sender_hold(self, address: str, moment: float) -> SenderHold | None:
        hold = self.senders.get(address.lower())
        return hold if hold is not None and moment < hold.until else None

    def clear(self) -> bool:
        """End the pause and every sender hold (`queue retry`); False when there was nothing to end."""
        had = bool(self.paused_until or self.senders)
        self.paused_until, self.pause_reason, self.pause_hint = 0.0, "", ""
        self.senders = {}
        return had

    def to_json(self) -> dict[str, Any]:
        return {"paused_until": self.paused_until, "pause_reason": self.pause_reason, "pause_hint": self.pause_hint,
                "senders": {address: asdict(hold) for address, hold in self.senders.items()},
                "per_second": self.per_second}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> SpoolControl:
        senders = values.get("senders") or {}
        per_second = values.get("per_second")
        return cls(paused_until=float(values.get("paused_until") or 0.0),
                   pause_reason=str(values.get("pause_reason") or ""),
                   pause_hint=str(values.get("pause_hint") or ""),
                   senders={str(address): SenderHold(until=float(hold["until"]), reason=str(hold["reason"]),
                                                     hint=str(hold.get("hint") or ""))
                            for address, hold in senders.items()},
                   per_second=float(per_second) if per_second else None)


def read_control(root: Path) -> SpoolControl:
    """The spool's control state; a missing or damaged file is no pause (delivery simply tries)."""
    try:
        values = json.loads((root / CONTROL_FILE).read_text(encoding="utf-8"))
        return SpoolControl.from_json(values)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return SpoolControl()


def write_control(root: Path, control: SpoolControl) -> None:
    """Replace the control file whole (durably: the pause outlives a restart)."""
    text = json.dumps(control.to_json(), ensure_ascii=True).encode("ascii")
    write_durably(private_dir(root) / CONTROL_FILE, private_dir(root / "tmp") / CONTROL_FILE, (text,))
