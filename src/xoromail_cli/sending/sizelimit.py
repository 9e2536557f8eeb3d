"""A message larger than the service takes is refused here, before any of it goes on the wire.

Sending 40 MB only to hear `552 5.3.4` costs the upload, and a scheduler re-running the job would pay it
again every time. Every transport states its limit as `max_message_size` (SMTP learns it from the SIZE
extension at `open`, RFC 1870; Exchange and the APIs from the provider's published limit), so the check
is made by the `Sender` for every transport: each message is measured against the limit the open
connection announced, once, just before it would be sent (and before it is announced behind another).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from xoromail_cli.errors import ExitCode
from xoromail_cli.services.base import Delivery

if TYPE_CHECKING:
    from xoromail_cli.compose.mime import Attachment

TOO_LARGE_HINT = (
    "attach fewer or smaller files (compress them, or put a link in the message instead): attachments grow "
    "by a third when encoded for email; re-sending will not help"
)


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def too_large(size: int, limit: int, service: str, hint: str | None = None) -> Delivery:
    """The permanent refusal of a message over the limit: a data error (65), never retried. `hint` is the
    transport's own (`size_hint`: Graph names the permission that would lift its limit)."""
    return Delivery(status="failed",
                    reply=f"the message is {megabytes(size)} ({size:,} bytes) and {service} accepts at most "
                    f"{megabytes(limit)} ({limit:,} bytes): not sent", exit_code=int(ExitCode.DATAERR),
                    hint=hint or TOO_LARGE_HINT)


WORTH_CONNECTING_FOR = 1024 * 1024
"""Attachments larger than this on disk are measured against the service's limit before they are read, the
connection opened first if need be (SMTP learns its limit from the server's SIZE)."""


def on_disk(attachments: Sequence[Attachment]) -> int:
    """The attachments' sizes on disk, from stat (a file gone since the check counts 0: building the message
    says so)."""
    total = 0
    for attachment in attachments:
        try:
            total += attachment.path.stat().st_size
        except OSError:
            continue
    return total


def encoded_size(file_size: int) -> int:
    """What `file_size` bytes take in a message: base64 in lines of 76 characters and CRLF per 57 bytes."""
    return (file_size + 56) // 57 * 78


def attachments_too_large(attachments: Sequence[Attachment], limit: int | None, service: str,
                          hint: str | None = None) -> Delivery | None:
    """Files that alone make a message larger than the service takes, refused by their size on disk before
    any of them is read (a 100 MB file is not read into memory to be refused). `limit` is the open
    connection's (none before it opened)."""
    if limit is None or not attachments:
        return None
    size = encoded_size(on_disk(attachments))
    if size <= limit:
        return None
    return Delivery(status="failed",
                    reply=f"its attachments alone come to {megabytes(size)} ({size:,} bytes) once encoded, and "
                    f"{service} accepts at most {megabytes(limit)} ({limit:,} bytes): not sent",
                    exit_code=int(ExitCode.DATAERR), hint=hint or TOO_LARGE_HINT)
