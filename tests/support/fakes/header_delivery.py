"""What a header-driven API (Gmail's users.messages.send, Graph's MIME sendMail) does with a message.

Both read the recipients from To, Cc and Bcc and remove the Bcc header before the message goes out, so a
fake shows the test both halves: who would get it, and the bytes those recipients would see.
"""

from __future__ import annotations

import re
from email import message_from_bytes
from email.utils import getaddresses

_BCC = re.compile(rb"^Bcc:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*\r?\n", re.IGNORECASE | re.MULTILINE)


def recipients(mime: bytes) -> tuple[str, ...]:
    """Every address of To, Cc and Bcc, in that order, as the provider reads them."""
    message = message_from_bytes(mime)
    fields = [value for name in ("To", "Cc", "Bcc") for value in message.get_all(name, [])]
    return tuple(address for _, address in getaddresses(fields) if address)


def as_delivered(mime: bytes) -> bytes:
    """The message as its recipients receive it: the Bcc header (and its folded lines) removed, nothing else."""
    head, separator, body = mime.partition(b"\r\n\r\n")
    return _BCC.sub(b"", head + b"\r\n").removesuffix(b"\r\n") + separator + body
