"""Build RFC 5322 / MIME messages as bytes, the same way for test messages and event emails.

Messages are assembled directly rather than through `email.message.EmailMessage`: the structure is
always one of three shapes (text; text + HTML; those plus attachments), and writing it out is several
times cheaper than the general-purpose generator, which matters for batches of thousands. Every header
value is checked for CR/LF before it gets here, and tests parse the result back with the `email` package.
"""

from __future__ import annotations

import binascii
import io
import mimetypes
import os
import re
import secrets as _random
import stat
import time
from base64 import encodebytes
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import formataddr, formatdate
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from xoromail_cli.addresses import check_header_value, domain_of
from xoromail_cli.compose import headers
from xoromail_cli.errors import DataError, NoInputError

CRLF = b"\r\n"
MAX_ATTACHMENT_BYTES = 112 * 1024 * 1024
"""The largest file any supported service can carry (Exchange Online: 150 MB, which base64 makes of 112 MB);
checked from the file's size before any of it is read."""
_SYSTEM_FOLDERS = re.compile(r"/(proc|sys|dev)(/|$)")


@dataclass(frozen=True)
class Attachment:
    path: Path
    filename: str
    content_type: str
    identity: tuple[int, int] | None = None
    """(st_dev, st_ino) of the file that was checked: the file read when the message is built must be that one."""

    @classmethod
    def from_path(cls, path: Path, filename: str | None = None) -> Attachment:
        """Check the file now, so a batch fails before its first message rather than midway."""
        name = filename or path.name
        check_header_value("attachment file name", name)
        if _SYSTEM_FOLDERS.match(str(path.resolve())):
            raise DataError(f"attachment {path} is in /proc, /sys or /dev", "attach ordinary files only")
        try:
            status = path.stat()
            if not stat.S_ISREG(status.st_mode):
                raise FileNotFoundError
            if status.st_size > MAX_ATTACHMENT_BYTES:
                raise DataError(f"attachment {path} is {status.st_size:,} bytes; at most "
                                f"{MAX_ATTACHMENT_BYTES:,} can be attached",
                                "no email service takes a file this large: send a link to it")
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        except FileNotFoundError:
            raise NoInputError(f"attachment {path} does not exist or is not a file",
                               "check the path (relative paths start from the current folder, or in a batch "
                               "from the batch file's folder)") from None
        except OSError as exc:
            raise NoInputError(f"attachment {path} cannot be read: {exc.strerror}",
                               "check the file's permissions") from None
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return cls(path, name, content_type, (status.st_dev, status.st_ino))


def make_message_id(sender: str) -> str:
    """A unique Message-ID on the sender's own domain (spam filters look at that)."""
    return f"<{int(time.time() * 1000)}.{_random.token_hex(8)}@{domain_of(sender)}>"


def format_sender(display_name: str, address: str) -> str:
    """The From value as people read it (for previews); the header itself is built by `headers.mailbox`."""
    return formataddr((display_name, address)) if display_name else address


def encode_header(name: str, value: str) -> bytes:
    """One free-text header line: folded at 78 columns, RFC 2047 encoded words (at most 75 characters)
    when the value is not ASCII, has a word too long to fold, or would itself read as an encoded word."""
    return headers.unstructured(name, value)


def _text_part(body: str, subtype: str) -> bytes:
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    if text.isascii() and "\x00" not in text and max(map(len, text.split("\n"))) <= 900:
        encoding, payload = "7bit", text.encode("ascii")
    else:
        encoding = "quoted-printable"
        payload = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    head = f"Content-Type: text/{subtype}; charset=\"utf-8\"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    return head.encode("ascii") + payload.replace(b"\n", CRLF)


_READ_CHUNK = 57 * 16 * 1024
"""Bytes read at a time: a multiple of 57, so each chunk encodes to whole 76-character base64 lines."""
_CACHED_UP_TO = 1024 * 1024
"""Files up to this size are encoded once per batch (the same PDF on every row); larger ones are streamed
into each message, so memory holds one encoded copy, never the file and two or three copies of it."""


@lru_cache(maxsize=8)
def _encoded_small_file(attachment: Attachment, mtime_ns: int) -> bytes:
    buffer = io.BytesIO()
    _write_base64(attachment, buffer)
    return buffer.getvalue()


def _write_base64(attachment: Attachment, out: BinaryIO) -> None:
    """The file as base64 lines with CRLF, written chunk by chunk; never more than the largest attachment."""
    left = MAX_ATTACHMENT_BYTES + 1  # one byte more than allowed tells a file that grew after its check
    try:
        with _open_checked(attachment) as handle:
            while left > 0 and (chunk := handle.read(min(_READ_CHUNK, left))):
                left -= len(chunk)
                out.write(encodebytes(chunk).replace(b"\n", CRLF))
    except OSError as exc:
        raise NoInputError(f"attachment {attachment.path} cannot be read: {exc.strerror}",
                           "check the file still exists and is readable") from None
    if left <= 0:
        raise DataError(f"attachment {attachment.path} grew past {MAX_ATTACHMENT_BYTES:,} bytes while being read",
                        "attach files that are complete and no longer being written")


def _open_checked(attachment: Attachment) -> BinaryIO:
    """The very file `from_path` checked, opened without waiting: a batch folder may change between the check and
    the message (a swapped-in symlink to /proc/self/environ, a FIFO), and the read must not follow it."""
    descriptor = os.open(attachment.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or (attachment.identity is not None
                                             and (status.st_dev, status.st_ino) != attachment.identity):
        os.close(descriptor)
        raise DataError(f"attachment {attachment.path} was replaced after the batch was checked",
                        "nothing was attached from it; make sure nothing changes the batch folder while it is "
                        "sent, then re-run (what was sent is skipped)")
    os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "rb")


def _attachment_head(attachment: Attachment) -> bytes:
    """Content-Type with a `name=` fallback (munpack, older Outlook) and Content-Disposition with
    `filename=`, or RFC 2231 `filename*=` (split into continuations so no line is too long)."""
    name = attachment.filename
    if headers.needs_encoding(name) or '"' in name or "\\" in name:
        fallback = "\r\n ".join(headers.encoded_words(name))
        content_type = f'{attachment.content_type};\r\n name="{fallback}"'
        disposition = "attachment;\r\n " + ";\r\n ".join(headers.rfc2231_parameter("filename", name))
    else:
        content_type = f'{attachment.content_type};\r\n name="{name}"'
        disposition = f'attachment;\r\n filename="{name}"'
    return (f"Content-Type: {content_type}\r\nContent-Disposition: {disposition}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n").encode("ascii")


def _write_attachment(attachment: Attachment, out: BinaryIO) -> None:
    try:
        stat = attachment.path.stat()
    except OSError as exc:
        raise NoInputError(f"attachment {attachment.path} cannot be read: {exc.strerror}",
                           "check the file still exists and is readable") from None
    out.write(_attachment_head(attachment))
    if stat.st_size <= _CACHED_UP_TO:
        out.write(_encoded_small_file(attachment, stat.st_mtime_ns))
    else:
        _write_base64(attachment, out)


def _boundary() -> str:
    return f"=_xoromail_{_random.token_hex(12)}"


def _multipart(subtype: str, parts: Sequence[bytes]) -> bytes:
    boundary = _boundary()
    chunks = [f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\r\n\r\n".encode("ascii")]
    for part in parts:
        chunks.append(f"--{boundary}\r\n".encode("ascii"))
        chunks.append(part)
        if not part.endswith(CRLF):
            chunks.append(CRLF)
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks)


def _write_mixed(out: BinaryIO, body: bytes, attachments: Sequence[Attachment]) -> None:
    """multipart/mixed written straight into `out`: each attachment is encoded once, into the message."""
    boundary = _boundary()
    out.write(f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\n".encode("ascii"))
    out.write(body if body.endswith(CRLF) else body + CRLF)
    for attachment in attachments:
        out.write(f"--{boundary}\r\n".encode("ascii"))
        _write_attachment(attachment, out)
    out.write(f"--{boundary}--\r\n".encode("ascii"))


def build_message(*, display_name: str, sender: str, to: Sequence[str], subject: str, text: str,
                  html: str | None = None, cc: Sequence[str] = (), reply_to: str | None = None,
                  attachments: Sequence[Attachment] = (), message_id: str | None = None) -> bytes:
    """The message's bytes (CRLF line ends): From, To, Date, Message-ID, Auto-Submitted (RFC 3834).

    Written into one buffer whose bytes become the message without a further copy (`BytesIO.getvalue`
    hands over its buffer), so a 100 MB attachment costs about its encoded size once.
    """
    out = io.BytesIO()
    out.write(headers.mailbox("From", display_name, sender))
    out.write(headers.address_list("To", to))
    if cc:
        out.write(headers.address_list("Cc", cc))
    if reply_to:
        out.write(headers.address_list("Reply-To", [reply_to]))
    out.write(encode_header("Subject", subject))
    out.write(f"Date: {formatdate(localtime=True)}\r\n".encode("ascii"))
    out.write(f"Message-ID: {check_header_value('Message-ID', message_id or make_message_id(sender))}\r\n"
              .encode("ascii"))
    out.write(b"Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n")
    body = _text_part(text, "plain")
    if html is not None:
        body = _multipart("alternative", [body, _text_part(html, "html")])
    if attachments:
        _write_mixed(out, body, attachments)
    else:
        out.write(body)
    return out.getvalue()


def bcc_header(addresses: Sequence[str]) -> bytes:
    """A Bcc header line, for services that read recipients from the headers and strip it on delivery."""
    return headers.address_list("Bcc", addresses)
