"""One message in, one message out: line ends made CRLF, lines over 998 octets re-encoded.

A bare CR is refused (`550 5.6.0`): an upstream that ends lines at a lone CR would read what follows it as
new lines, a second message among them (SMTP smuggling); no mail program writes one. A bare LF is a Unix
line end and is made CRLF, so every upstream reads the same lines (and the dot-stuffing at delivery covers
each). A body line longer than 998 octets (RFC 5322 2.1.1; .NET writes a whole HTML body on one line, 7bit)
is taken, as Postfix and Exim take it, and the body is mended part by part (`long_lines`: base64 re-wrapped,
other parts re-encoded quoted-printable, a preamble's or epilogue's long line dropped), so an SMTP upstream
that enforces the limit gets lines it accepts; a header line that long is folded at a space (refused when it
has none); messages without such lines pass byte for byte.
"""

from __future__ import annotations

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


def first_long_line(body: bytes | bytearray, start: int = 0, end: int | None = None,
                    limit: int = SMTP_LINE) -> tuple[int, int] | None:
    """The first line in body[start:end] (`start` a line start) longer than `limit` octets, CRLF not counted:
    (where it starts, where the next line starts), or None.

    Looks a window of `limit` + 2 octets ahead for its last LF and jumps there: a few steps per `limit`
    octets however short the lines (a line-by-line loop over 15 million empty lines took seconds)."""
    end = len(body) if end is None else end
    while end - start > limit:
        newline = body.rfind(b"\n", start, start + limit + 2)
        if newline < 0:
            after = body.find(b"\n", start, end)
            return start, (end if after < 0 else after + 1)
        start = newline + 1
    return None


def has_long_line(body: bytes | bytearray, start: int = 0, limit: int = SMTP_LINE, end: int | None = None) -> bool:
    """Whether a line in body[start:end] (`start` a line start) is longer than `limit` octets."""
    return first_long_line(body, start, end, limit) is not None


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


def header_fields(head: bytes) -> list[bytes]:
    """The header's fields, each with its continuation lines and line ends (linear in the header's size:
    a To folded over a hundred thousand lines is joined once, not copied at each line)."""
    fields: list[list[bytes]] = []
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    return [b"".join(parts) for parts in fields]
