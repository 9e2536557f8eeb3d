"""Build RFC 5322 / MIME messages as bytes, the same way for test messages and event emails.

Messages are assembled directly rather than through `email.message.EmailMessage`: the structure is
always one of three shapes (text; text + HTML; those plus attachments), and writing it out is several
times cheaper than the general-purpose generator, which matters for batches of thousands. Every header
value is checked for CR/LF before it gets here, and tests parse the result back with the `email` package.
"""

from __future__ import annotations

import binascii
import mimetypes
import secrets as _random
import time
from base64 import encodebytes
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate
from functools import lru_cache
from pathlib import Path

from xoromail_cli.addresses import check_header_value, domain_of
from xoromail_cli.errors import NoInputError

CRLF = b"\r\n"


@dataclass(frozen=True)
class Attachment:
    path: Path
    filename: str
    content_type: str

    @classmethod
    def from_path(cls, path: Path, filename: str | None = None) -> Attachment:
        """Check the file now, so a batch fails before its first message rather than midway."""
        name = filename or path.name
        check_header_value("attachment file name", name)
        if not path.is_file():
            raise NoInputError(f"attachment {path} does not exist or is not a file",
                               "check the path (relative paths start from the current folder, or in a batch "
                               "from the batch file's folder)")
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise NoInputError(f"attachment {path} cannot be read: {exc.strerror}",
                               "check the file's permissions") from None
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return cls(path, name, content_type)


def make_message_id(sender: str) -> str:
    """A unique Message-ID on the sender's own domain (spam filters look at that)."""
    return f"<{int(time.time() * 1000)}.{_random.token_hex(8)}@{domain_of(sender)}>"


def format_sender(display_name: str, address: str) -> str:
    return formataddr((display_name, address), charset="utf-8") if display_name else address


def encode_header(name: str, value: str) -> bytes:
    """One header line, RFC 2047-encoded when not ASCII, folded at 78 columns."""
    check_header_value(name, value)
    if value.isascii() and len(name) + len(value) < 76:
        return f"{name}: {value}\r\n".encode("ascii")
    charset = "us-ascii" if value.isascii() else "utf-8"
    folded = Header(value, charset, header_name=name).encode(linesep="\r\n")
    return f"{name}: {folded}\r\n".encode("ascii")


def bcc_header(addresses: Sequence[str]) -> bytes:
    """The Bcc line, without its line break, that `Envelope.data_with_bcc` inserts for header-driven APIs."""
    return encode_header("Bcc", ", ".join(addresses)).removesuffix(b"\r\n")


def _text_part(body: str, subtype: str) -> bytes:
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    if text.isascii() and max(map(len, text.split("\n"))) <= 900:
        encoding, payload = "7bit", text.encode("ascii")
    else:
        encoding = "quoted-printable"
        payload = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    head = f"Content-Type: text/{subtype}; charset=\"utf-8\"\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    return head.encode("ascii") + payload.replace(b"\n", CRLF)


@lru_cache(maxsize=4)
def _encoded_file(path: Path, mtime_ns: int) -> bytes:
    try:
        return encodebytes(path.read_bytes()).replace(b"\n", CRLF)
    except OSError as exc:
        raise NoInputError(f"attachment {path} cannot be read: {exc.strerror}",
                           "check the file still exists and is readable") from None


def _attachment_part(attachment: Attachment) -> bytes:
    try:
        mtime = attachment.path.stat().st_mtime_ns
    except OSError as exc:
        raise NoInputError(f"attachment {attachment.path} cannot be read: {exc.strerror}",
                           "check the file still exists and is readable") from None
    disposition = encode_header("Content-Disposition", "attachment")[:-2].decode("ascii")
    name = attachment.filename
    if name.isascii() and '"' not in name and "\\" not in name:
        disposition += f'; filename="{name}"'
    else:
        disposition += f"; filename*=utf-8''{_rfc2231(name)}"
    head = (f"Content-Type: {attachment.content_type}\r\n{disposition}\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n")
    return head.encode("ascii") + _encoded_file(attachment.path, mtime)


def _rfc2231(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def _multipart(subtype: str, parts: Sequence[bytes]) -> bytes:
    boundary = f"=_xoromail_{_random.token_hex(12)}"
    chunks = [f"Content-Type: multipart/{subtype}; boundary=\"{boundary}\"\r\n\r\n".encode("ascii")]
    for part in parts:
        chunks.append(f"--{boundary}\r\n".encode("ascii"))
        chunks.append(part)
        if not part.endswith(CRLF):
            chunks.append(CRLF)
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks)


def build_message(*, display_name: str, sender: str, to: Sequence[str], subject: str, text: str,
                  html: str | None = None, cc: Sequence[str] = (), reply_to: str | None = None,
                  attachments: Sequence[Attachment] = (), message_id: str | None = None) -> bytes:
    """The message's bytes (CRLF line ends): From, To, Date, Message-ID, Auto-Submitted (RFC 3834)."""
    headers = [
        encode_header("From", format_sender(display_name, sender)),
        encode_header("To", ", ".join(to)),
    ]
    if cc:
        headers.append(encode_header("Cc", ", ".join(cc)))
    if reply_to:
        headers.append(encode_header("Reply-To", reply_to))
    headers += [
        encode_header("Subject", subject),
        encode_header("Date", formatdate(localtime=True)),
        encode_header("Message-ID", message_id or make_message_id(sender)),
        b"Auto-Submitted: auto-generated\r\n",
    ]
    headers.append(b"MIME-Version: 1.0\r\n")
    body = _text_part(text, "plain")
    if html is not None:
        body = _multipart("alternative", [body, _text_part(html, "html")])
    if attachments:
        body = _multipart("mixed", [body, *(_attachment_part(a) for a in attachments)])
    return b"".join(headers) + body

