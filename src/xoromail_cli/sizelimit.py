"""A message larger than the service takes is refused here, before any of it goes on the wire.

Sending 40 MB only to hear `552 5.3.4` costs the upload, and a scheduler re-running the job would pay it
again every time. Every transport states its limit as `max_message_size` (SMTP learns it from the SIZE
extension at `open`, RFC 1870; Exchange and the APIs from the provider's published limit), so the check
is one wrapper the `Sender` puts around any transport: each message is measured against the limit the
open connection announced, once, just before it would be sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from xoromail_cli.errors import ExitCode
from xoromail_cli.services.base import Delivery, Envelope, StageCallback, Transport

TOO_LARGE_HINT = (
    "attach fewer or smaller files (compress them, or put a link in the message instead): attachments grow "
    "by a third when encoded for email; re-sending will not help"
)


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def too_large(size: int, limit: int, service: str) -> Delivery:
    """The permanent refusal of a message over the limit: a data error (65), never retried."""
    return Delivery("failed", f"the message is {megabytes(size)} ({size:,} bytes) and {service} accepts at most "
                    f"{megabytes(limit)} ({limit:,} bytes): not sent", exit_code=int(ExitCode.DATAERR),
                    hint=TOO_LARGE_HINT)


class SizeChecked:
    """A transport that measures each message against the limit its service announced; the other
    attributes are the wrapped transport's own (settable, as the `Transport` protocol has them)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    @name.setter
    def name(self, value: str) -> None:
        self.inner.name = value

    @property
    def accepted_as(self) -> Literal["sent", "written"]:
        return self.inner.accepted_as

    @accepted_as.setter
    def accepted_as(self, value: Literal["sent", "written"]) -> None:
        self.inner.accepted_as = value

    @property
    def max_message_size(self) -> int | None:
        return self.inner.max_message_size

    @max_message_size.setter
    def max_message_size(self, value: int | None) -> None:
        self.inner.max_message_size = value

    @property
    def subset_retries(self) -> bool:
        return self.inner.subset_retries

    @subset_retries.setter
    def subset_retries(self, value: bool) -> None:
        self.inner.subset_retries = value

    def open(self, on_stage: StageCallback | None = None) -> None:
        self.inner.open(on_stage)

    def send(self, envelope: Envelope, before_data: Callable[[], None] | None = None) -> Delivery:
        limit = self.inner.max_message_size
        if limit is not None and len(envelope.data) > limit:
            return too_large(len(envelope.data), limit, self.inner.name)
        return self.inner.send(envelope, before_data)

    def close(self) -> None:
        self.inner.close()


def size_checked(transport: Transport) -> Transport:
    """`transport`, wrapped once."""
    return transport if isinstance(transport, SizeChecked) else SizeChecked(transport)
