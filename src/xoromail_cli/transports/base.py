"""The contract every transport keeps, so batching, the ledger and validation stay shared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

DeliveryStatus = Literal["sent", "failed", "temporary"]
StageCallback = Callable[[str, str], None]
"""Called with (stage name, detail) each time a stage of opening a connection succeeds."""


@dataclass(frozen=True)
class Envelope:
    """A rendered message ready for the wire: who it is from, who gets it, and its bytes."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes
    message_id: str


@dataclass
class Delivery:
    """What the server said about one message."""

    status: DeliveryStatus
    reply: str
    refused: dict[str, str] = field(default_factory=dict)
    exit_code: int = 0
    hint: str | None = None
    stops_batch: bool = False
    """True when every later message would fail the same way (quota reached, sender refused)."""
    unknown: bool = False
    """The connection was lost after the message's data went out: it may or may not have been accepted."""

    @property
    def ok(self) -> bool:
        return self.status == "sent"


class Transport(Protocol):
    name: str
    accepted_as: Literal["sent", "written"]
    """How a message this transport accepted is reported: sent to a server, or written to a file."""

    def open(self, on_stage: StageCallback | None = None) -> None:
        """Connect and sign in; raise StageFailedError naming the stage that failed."""

    def send(self, envelope: Envelope, before_data: Callable[[], None] | None = None) -> Delivery:
        """Deliver one message. Server refusals come back as a Delivery; a lost connection raises."""

    def close(self) -> None:
        """Say goodbye politely; never raises."""
