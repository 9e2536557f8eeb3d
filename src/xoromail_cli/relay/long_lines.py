"""A message's body without lines over 998 octets, part by part, in about one more copy of the message.

Runs only for a body that has such a line (`mending.has_long_line`), in the worker thread that reads the
message. The body is walked in place (`find` for MIME boundaries, memoryview slices for what stays): only a
part with a long line is copied, and the result is joined once. The email package's parser and generator,
used before, held about nine copies of a 30 MiB message. What changes, by where the long line is:

- a base64 part: its text re-wrapped at 76 characters, nothing decoded (each character checked to be of the
  base64 alphabet; `550 5.6.0` when one is not, since no re-wrapping makes that part deliverable);
- any other leaf part (7bit, 8bit or binary text; quoted-printable without its soft line breaks): decoded and
  encoded quoted-printable again, a text part's line ends as hard line breaks;
- a multipart's preamble or epilogue: the long line dropped (mail programs show neither to a reader, and a
  line cut in two could put boundary-like text at a line's start);
- a part's header line: folded at a space, as the message's own header lines are;
- a message/rfc822 part: the same, inside it.

Decoding and encoding again change no octet a reader gets; anything still too long (a boundary line of over
998 octets, nesting deeper than `MAX_DEPTH`) is refused with `550 5.6.0` rather than accepted and failed later.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator
from dataclasses import dataclass

from xoromail_cli.relay.mending import SMTP_LINE, MendRefused, first_long_line, fold_field, has_long_line, header_fields

Chunks = list[bytes | memoryview]
MAX_DEPTH = 20
MAX_BOUNDARIES = 10_000
"""A message of a million one-character parts would otherwise cost a million steps and chunks."""
BASE64_LINE = 76
"""RFC 2045 6.8: base64 lines of at most 76 characters."""
_BLOCK = BASE64_LINE * 4096
_QP_BLOCK = 1 << 20
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
NOT_BASE64_REPLY = ("550 5.6.0 A part marked base64 (Content-Transfer-Encoding) has a line of over {limit} octets "
                    "that is not base64, which mail servers refuse and the relay cannot re-wrap; check the program's "
                    "attachment encoding")
STILL_LONG_REPLY = ("550 5.6.0 The message has a line of over {limit} octets the relay cannot shorten (a MIME "
                    "boundary line, parts nested over {depth} deep or over {parts:,} parts), which mail servers "
                    "refuse")
CRLF = b"\r\n"


@dataclass
class _Body:
    data: bytes | bytearray
    view: memoryview
    boundaries: int = 0
    """Boundary lines (and look-alikes) met so far: past `MAX_BOUNDARIES` the rest is kept as it is."""


@dataclass(frozen=True)
class _Kind:
    content_type: str
    boundary: bytes | None
    encoding: str


def _kind(header: bytes) -> _Kind:
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    parsed = BytesHeaderParser(policy=compat32).parsebytes(header)
    boundary = parsed.get_boundary()
    return _Kind(content_type=parsed.get_content_type(),
                 boundary=boundary.encode("utf-8", "surrogateescape") if boundary else None,
                 encoding=str(parsed.get("Content-Transfer-Encoding", "7bit")).strip().lower())




def _field_name(field: bytes) -> bytes:
    return field.partition(b":")[0].strip().lower()


def rewrapped_base64(segment: memoryview) -> Chunks:
    """Base64 text in lines of 76 characters (no line end after the last), nothing decoded; MendRefused
    when a character is not of the base64 alphabet. Taken `_BLOCK` octets at a time (`translate` one C pass
    each), the characters past a block's last whole line carried to the next: about one copy in all."""
    out: Chunks = []
    carry = b""
    for at in range(0, len(segment), _BLOCK):
        compact = carry + bytes(segment[at:at + _BLOCK]).translate(None, b" \t\r\n")
        if compact.translate(None, _BASE64_ALPHABET):
            raise MendRefused(NOT_BASE64_REPLY.format(limit=SMTP_LINE))
        whole = len(compact) - len(compact) % BASE64_LINE
        if whole:
            out += [CRLF] if out else []
            out.append(CRLF.join(compact[line:line + BASE64_LINE] for line in range(0, whole, BASE64_LINE)))
        carry = compact[whole:]
    if carry:
        out += [CRLF, carry] if out else [carry]
    return out


def _blocks(data: bytes | bytearray, start: int, end: int, at_lines: bool) -> Iterator[memoryview]:
    """data[start:end] in pieces of about `_QP_BLOCK` octets, not copied: one C call each, so no call holds
    the interpreter's lock (and with it every session) for long. With `at_lines` each piece ends at a line
    end (the relay's lines are 256 KiB at most); without, at one when there is one nearby."""
    view = memoryview(data)
    while start < end:
        cut = data.find(b"\n", start + _QP_BLOCK, end if at_lines else start + 2 * _QP_BLOCK) + 1
        if cut <= 0:
            cut = end if at_lines else start + _QP_BLOCK
        stop = min(cut, end)
        yield view[start:stop]
        start = stop


def _qp(data: bytes, text: bool) -> bytes:
    """Quoted-printable with LF line ends (binascii writes CRLF ones when the data's first line end is CRLF;
    in binary mode every CR and LF of the data is encoded, so each left in the output is a line end)."""
    return binascii.b2a_qp(data, quotetabs=False, istext=text, header=False).replace(CRLF, b"\n")


def _decoded(data: bytes | bytearray, start: int, end: int, encoding: str, text: bool) -> Iterator[bytes]:
    """data[start:end] decoded (quoted-printable, or as it is), a text's line ends LF, a block at a time."""
    for block in _blocks(data, start, end, at_lines=True):  # an encoded line never spans a line end
        piece = binascii.a2b_qp(block) if encoding == "quoted-printable" else bytes(block)
        yield piece.replace(CRLF, b"\n") if text else piece


def quoted_printable(data: bytes | bytearray, start: int, end: int, encoding: str, text: bool) -> Chunks:
    """data[start:end] (in `encoding`) decoded and encoded quoted-printable in lines of 76 at most (78 where
    a line ends in white space: binascii's and quopri's way), with CRLF; a text part's line ends are hard
    line breaks (not `=0D=0A`). Decoded a block at a time (twice: first to learn whether a CR is left),
    never whole: about one copy of the part in all, the encoded one."""
    as_text = text and not any(b"\r" in piece for piece in _decoded(data, start, end, encoding, text))
    pieces: Chunks = []
    carry = b""  # the bytes of a piece's last, unfinished line: encoded again at the next piece's start
    for decoded in _decoded(data, start, end, encoding, text):
        for block in _blocks(decoded, 0, len(decoded), at_lines=False):  # a line cut: carried
            encoded = _qp(carry + block, as_text)
            cut = encoded.rfind(b"\n") + 1
            pieces.append(encoded[:cut].replace(b"\n", CRLF))
            carry = binascii.a2b_qp(encoded[cut:])
    pieces.append(_qp(carry, as_text).replace(b"\n", CRLF))
    return pieces


def _recoded_header(header: bytes, top: bool) -> bytes:
    fields = [field for field in header_fields(header) if _field_name(field) != b"content-transfer-encoding"]
    if top and not any(_field_name(field) == b"mime-version" for field in fields):
        fields.append(b"MIME-Version: 1.0\r\n")
    fields.append(b"Content-Transfer-Encoding: quoted-printable\r\n")
    return b"".join(fields)


def _leaf(body: _Body, header: bytes, kind: _Kind, span: tuple[int, int], depth: int, out: Chunks) -> None:
    start, end = span
    if kind.encoding == "base64":
        out += [header, CRLF, *rewrapped_base64(body.view[start:end])]
        return
    encoded = quoted_printable(body.data, start, end, kind.encoding, kind.content_type.startswith("text/"))
    out += [_recoded_header(header, depth == 0), CRLF, *encoded]


def short_lines_only(body: _Body, start: int, end: int, out: Chunks) -> None:
    """body[start:end] without its lines over 998 octets (a preamble or an epilogue)."""
    while (found := first_long_line(body.data, start, end)) is not None:
        out.append(body.view[start:found[0]])
        start = found[1]
    out.append(body.view[start:end])


def _delimiter(body: _Body, boundary: bytes, start: int, end: int) -> tuple[int, int, bool] | None:
    """The next boundary line from `start` (a line start): (its start, after its line end, whether it closes);
    None when there is none, or after `MAX_BOUNDARIES`."""
    marker = b"--" + boundary
    at = start if body.data.startswith(marker, start, end) else -1
    while body.boundaries < MAX_BOUNDARIES:
        body.boundaries += 1
        if at < 0:
            found = body.data.find(CRLF + marker, start, end)
            if found < 0:
                return None
            at = found + 2
        rest = at + len(marker)
        closes = body.data.startswith(b"--", rest, end)
        line_end = body.data.find(CRLF, rest, end)
        after = end if line_end < 0 else line_end + 2
        if not body.data[rest + (2 if closes else 0):after].strip():
            return at, after, closes
        start, at = at, -1  # a longer boundary that begins with this one
    return None


def _multipart(body: _Body, boundary: bytes, span: tuple[int, int], depth: int, out: Chunks) -> None:
    """The parts between boundary lines, each mended; the preamble and epilogue without long lines."""
    start, end = span
    found = _delimiter(body, boundary, start, end)
    if found is None:
        out.append(body.view[start:end])  # no part to mend: the final check refuses it if it is too long
        return
    short_lines_only(body, start, found[0], out)
    while found is not None and not found[2]:
        out.append(body.view[found[0]:found[1]])
        following = _delimiter(body, boundary, found[1], end)
        if body.boundaries >= MAX_BOUNDARIES:  # kept as it is: the final check refuses a long line in it
            out.append(body.view[found[1]:end])
            return
        stop = following[0] if following is not None else end
        content_end = stop - 2 if following is not None and stop - 2 >= found[1] else stop
        _part(body, (found[1], content_end), depth + 1, out)
        out.append(body.view[content_end:stop])
        found = following
    if found is not None:
        out.append(body.view[found[0]:found[1]])
        short_lines_only(body, found[1], end, out)


def _part(body: _Body, span: tuple[int, int], depth: int, out: Chunks) -> None:
    """One part (header, blank line, body) in body[start:end]."""
    start, end = span
    if not has_long_line(body.data, start, end=end):
        out.append(body.view[start:end])
        return
    if body.data.startswith(CRLF, start, end):
        entity(body, b"", (start + 2, end), depth, out)
        return
    blank = body.data.find(b"\r\n\r\n", start, end)
    if blank < 0:  # a header without a body
        out.append(b"".join(fold_field(field) for field in header_fields(bytes(body.view[start:end]))))
        return
    entity(body, bytes(body.view[start:blank + 2]), (blank + 4, end), depth, out)


def entity(body: _Body, header: bytes, span: tuple[int, int], depth: int, out: Chunks) -> None:
    """An entity's header (fields with line ends), the blank line and its body, body[start:end], mended."""
    start, end = span
    header = b"".join(fold_field(field) for field in header_fields(header))
    if not has_long_line(body.data, start, end=end) or depth > MAX_DEPTH:
        out += [header, CRLF, body.view[start:end]]
        return
    kind = _kind(header)
    if kind.content_type.startswith("multipart/") and kind.boundary:
        out += [header, CRLF]
        _multipart(body, kind.boundary, span, depth, out)
    elif kind.content_type == "message/rfc822":
        out += [header, CRLF]
        _part(body, span, depth + 1, out)
    else:
        _leaf(body, header, kind, span, depth, out)


def long_line_in(pieces: Chunks, limit: int = SMTP_LINE) -> bool:
    """Whether the pieces, read one after another, hold a line of over `limit` octets (as `has_long_line`
    over their join), looked at in blocks of at most `_QP_BLOCK` octets: never a copy of the whole."""
    run = 0
    """Octets of the line under way, before the block at hand."""
    for piece in pieces:
        for at in range(0, len(piece), _QP_BLOCK):
            block = bytes(piece[at:at + _QP_BLOCK])
            first = block.find(b"\n")
            if first < 0:
                run += len(block)
                if run > limit + 1:
                    return True
                continue
            last = block.rfind(b"\n")
            if run + first > limit + 1 or has_long_line(block, first + 1, limit, end=last + 1):
                return True
            run = len(block) - last - 1
    return run > limit


def short_line_pieces(head: bytes, data: bytes | bytearray, start: int) -> Chunks:
    """The message of header fields `head` and body data[start:] with no line over 998 octets (see the
    module's note), as pieces in order (memoryview slices of `data` where it stays as it came), not joined:
    the spool writes them one after another. MendRefused for what cannot be shortened."""
    out: Chunks = []
    entity(_Body(data, memoryview(data)), head, (start, len(data)), 0, out)
    if long_line_in(out):
        raise MendRefused(STILL_LONG_REPLY.format(limit=SMTP_LINE, depth=MAX_DEPTH, parts=MAX_BOUNDARIES))
    return out


def short_lines(head: bytes, data: bytes | bytearray, start: int) -> bytes:
    """`short_line_pieces` joined into one message."""
    return b"".join(short_line_pieces(head, data, start))
