"""One message in, one message out: line ends made CRLF, lines over 998 octets re-encoded.

A bare CR is refused (`550 5.6.0`): an upstream that ends lines at a lone CR would read what follows it as
new lines, a second message among them (SMTP smuggling); no mail program writes one. A bare LF is a Unix
line end and is made CRLF, so every upstream reads the same lines (and the dot-stuffing at delivery covers
each). A body line longer than 998 octets (RFC 5322 2.1.1; .NET writes a whole HTML body on one line, 7bit)
is taken, as Postfix and Exim take it, and its part re-encoded quoted-printable, so an SMTP upstream that
enforces the limit gets lines it accepts; a header line that long is folded at a space (refused when it has
none); messages without such lines pass byte for byte.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from email.message import Message

SMTP_LINE = 998
BARE_CR_REPLY = ("550 5.6.0 The message holds a bare CR (a carriage return without a line feed), which servers "
                 "read differently (SMTP smuggling); end every line with CRLF")


class MendRefused(Exception):
    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


def crlf_line_ends(data: bytes | bytearray) -> bytes | bytearray:
    """Bare LF made CRLF (a copy only then); MendRefused on a bare CR.

    Counting and `replace` are C loops that take some milliseconds for the largest message; a regular
    expression over millions of short lines took seconds, and a worker thread holds the interpreter's lock
    through one C call, so every session waited for it."""
    pairs = data.count(b"\r\n")
    if data.count(b"\r") != pairs:  # a CR that is not part of a CRLF
        raise MendRefused(BARE_CR_REPLY)
    if data.count(b"\n") == pairs:
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # no bare CR: every CR is a CRLF's


def has_long_line(body: bytes | bytearray, start: int = 0, limit: int = SMTP_LINE) -> bool:
    """Whether a line from `start` on (a line start) is longer than `limit` octets (CRLF not counted).

    Looks a window of `limit` + 2 octets ahead for its last LF and jumps there: a few steps per `limit`
    octets however short the lines (a line-by-line loop over 15 million empty lines took seconds)."""
    end = len(body)
    while end - start > limit:
        newline = body.rfind(b"\n", start, start + limit + 2)
        if newline < 0:
            return True
        start = newline + 1
    return False


def fold_field(field: bytes, limit: int = SMTP_LINE) -> bytes:
    """A header field with each line over `limit` octets folded before a space or tab (RFC 5322 2.2.3: the
    same field to a reader); MendRefused when a line has no place to fold within the limit."""
    if len(field) <= limit:
        return field
    lines: list[bytes] = []
    for line in field.split(b"\r\n"):
        name_ends = 0 if lines else line.find(b":")  # never within the field's name
        while len(line) > limit:
            cut = max(line.rfind(b" ", 1, limit + 1), line.rfind(b"\t", 1, limit + 1))
            if cut <= name_ends:
                name = field.partition(b":")[0].decode("ascii", "replace")
                raise MendRefused(f"550 5.6.0 The {name} header has a line of over {limit} octets without a space "
                                  f"to fold it at, which mail servers refuse; shorten it or fold it")
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return b"\r\n".join(lines)


BASE64_LINE = 76
"""RFC 2045 6.8: base64 lines of at most 76 characters."""
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
NOT_BASE64_REPLY = ("550 5.6.0 A part marked base64 (Content-Transfer-Encoding) has a line of over {limit} octets "
                    "that is not base64, which mail servers refuse and the relay cannot re-wrap; check the program's "
                    "attachment encoding")


def _octets(text: str) -> bytes:
    """The octets of text the parser read from bytes: exact for ASCII with other bytes as surrogates (base64,
    quoted-printable, a preamble); never fewer for a payload the parser decoded by its charset."""
    return text.encode("utf-8", "surrogateescape")


def _is_long(text: str) -> bool:
    return has_long_line(_octets(text))


def rewrap_base64(text: str) -> str:
    """Base64 text in lines of 76 characters, nothing decoded: white space removed, every other character
    checked to be of the base64 alphabet (MendRefused when one is not). `translate` is one C pass each."""
    compact = _octets(text).translate(None, b" \t\r\n")
    if compact.translate(None, _BASE64_ALPHABET):
        raise MendRefused(NOT_BASE64_REPLY.format(limit=SMTP_LINE))
    return "\r\n".join(compact[at:at + BASE64_LINE].decode("ascii")
                        for at in range(0, len(compact), BASE64_LINE)) + "\r\n"


def without_long_lines(text: str | None) -> str | None:
    """A preamble or epilogue without its lines over 998 octets: no mail program shows either to a reader,
    and folding a line could put a boundary-like text at a line's start."""
    if text is None or not _is_long(text):
        return text
    return "".join(line for line in text.splitlines(keepends=True)
                   if len(line.rstrip("\r\n")) <= SMTP_LINE)


def _quoted_printable(part: Message) -> None:
    """The part decoded (quoted-printable or none) and encoded quoted-printable again, in lines of 76 at most;
    a text part's line ends become quoted-printable's hard line breaks (not `=0D`)."""
    from email import encoders

    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)  # a leaf part's payload decodes to bytes
    if part.get_content_maintype() == "text":
        payload = payload.replace(b"\r\n", b"\n")
    del part["Content-Transfer-Encoding"]
    part.set_payload(payload)
    encoders.encode_quopri(part)


def _mend_part(part: Message) -> None:
    if part.is_multipart():
        part.preamble = without_long_lines(part.preamble)
        part.epilogue = without_long_lines(part.epilogue)
        return
    raw = part.get_payload(decode=False)
    if not isinstance(raw, str) or not _is_long(raw):
        return
    encoding = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    if encoding == "base64":
        part.set_payload(rewrap_base64(raw))
    else:  # 7bit/8bit/binary written on long lines, or quoted-printable without its soft line breaks
        _quoted_printable(part)


def short_lines(head: bytes, body: bytes) -> bytes:
    """The message with every line over 998 octets gone (runs only when the body has one): a base64 part
    re-wrapped, any other leaf part re-encoded quoted-printable, a preamble's or epilogue's long line dropped.
    Decoding and encoding again change no octet a reader gets."""
    import email
    from email.generator import BytesGenerator
    from email.policy import compat32
    from io import BytesIO

    message = email.message_from_bytes(head + b"\r\n" + body, policy=compat32)
    for part in message.walk():
        _mend_part(part)
    out = BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=compat32.clone(linesep="\r\n", max_line_length=0)).flatten(message)
    return out.getvalue()
