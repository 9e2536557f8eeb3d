"""SMTP PIPELINING (RFC 2920): one message's MAIL, RCPT… and DATA in one write, their replies read in order.

smtplib speaks lock-step only, so these helpers write on the session `transport.connect` opened (certificate
verified, STARTTLS refused when stripped) and read each reply with the session's bounded `getreply()`. RFC 2920 lets
the end of one message's data share a write with the next message's commands; DATA is always the last command
of a group, and the message itself follows only after its 354, so the in-flight mark stays exact.
"""

from __future__ import annotations

import re
import select
import smtplib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xoromail_cli.compose.envelope import Envelope
    from xoromail_cli.services.smtp.session import _Client

Reply = tuple[int, bytes]
CLOSING = 421
"""The server is closing the session: no reply follows this one (RFC 5321 §3.8)."""


@dataclass
class GroupReplies:
    """The server's answers to one message's MAIL FROM, RCPT TO… and DATA, matched to them in order.

    After a 421 no further reply comes: the commands behind it have none (`rcpt` is then short, `data` None).
    """

    envelope: Envelope
    mail: Reply
    rcpt: list[Reply] = field(default_factory=list)
    data: Reply | None = None

    @property
    def closing(self) -> bool:
        return any(code == CLOSING for code, _ in (self.mail, *self.rcpt, *([self.data] if self.data else [])))

    @property
    def awaits_data(self) -> bool:
        """The server said 354: it now reads message data, so only the data or a dropped connection may follow."""
        return self.data is not None and self.data[0] == 354


_DOT_ATOM_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                               r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def quote_address(address: str) -> str:
    """`<address>` exactly as `smtplib.quoteaddr` gives it; a plain `local@domain` (nearly every address)
    skips its RFC 2822 parser, which cost more per message than the rest of MAIL FROM and RCPT TO."""
    if _DOT_ATOM_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def advertised(client: smtplib.SMTP) -> bool:
    return bool(client.has_extn("pipelining"))


def body_options(client: smtplib.SMTP, data: bytes) -> list[str]:
    """`BODY=8BITMIME` for a message with 8-bit bytes when the server offers it (RFC 6152), else nothing."""
    return ["BODY=8BITMIME"] if not data.isascii() and client.has_extn("8bitmime") else []


def commands(envelope: Envelope, options: list[str] | tuple[str, ...] = ()) -> list[bytes]:
    """MAIL FROM (with `options`), one RCPT TO per recipient, DATA: the lines smtplib would send, as one group."""
    lines = [f"MAIL FROM:{quote_address(envelope.sender)}{''.join(' ' + option for option in options)}\r\n"]
    lines += [f"RCPT TO:{quote_address(recipient)}\r\n" for recipient in envelope.recipients]
    lines.append("DATA\r\n")
    return [line.encode("ascii") for line in lines]


def message_data(data: bytes) -> bytes:
    """The message as it travels after 354: leading dots doubled, ending with CRLF . CRLF (as smtplib.data)."""
    return b"".join(message_pieces(data))


def message_pieces(data: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    """`message_data` in pieces of about `size` bytes, cut after a line end where there is one: a large
    message is never copied whole on its way out (smtplib's data() makes three copies of it)."""
    start, at_line_start = 0, True
    while start < len(data):
        end = min(len(data), start + size)
        if end < len(data) and (line_end := data.rfind(b"\n", start, end)) >= start:
            end = line_end + 1
        piece = data[start:end].replace(b"\n.", b"\n..")  # a dot after any LF, as smtplib's (?m)^\.
        yield b"." + piece if at_line_start and piece[:1] == b"." else piece
        at_line_start, start = piece.endswith(b"\n"), end
    yield b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"


def read_group(client: _Client, envelope: Envelope) -> GroupReplies:
    """Read the replies of one group in order; stop at a 421, after which the server says nothing more.

    Raises SMTPServerDisconnected (an OSError-like smtplib error) when the connection ends early.
    """
    replies = GroupReplies(envelope, client.getreply())
    if replies.mail[0] == CLOSING:
        return replies
    for _ in envelope.recipients:
        replies.rcpt.append(client.getreply())
        if replies.rcpt[-1][0] == CLOSING:
            return replies
    replies.data = client.getreply()
    return replies


def hung_up(client: _Client) -> bool:
    """Whether the server closed (or spoke out of turn) while it should be waiting for our data after 354.

    Checked just before the data goes: a server that hung up behind its 354 has not got the message, so the
    connection is lost *before* the data and the message is retried, not left in doubt.
    """
    sock = client.sock
    if sock is None or client.buffered():
        return True
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)
