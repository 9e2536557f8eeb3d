"""Build RFC 5322 messages the same way for test messages and event emails."""

from __future__ import annotations

import email.policy
import mimetypes
import secrets as _random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from xoromail_cli.addresses import check_header_value, domain_of
from xoromail_cli.errors import NoInputError

SMTP_POLICY = email.policy.SMTP.clone(max_line_length=998)


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
                               "check the path (relative paths are relative to the current folder)")
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
    local, _, domain = address.rpartition("@")
    return str(Address(display_name=display_name, username=local, domain=domain))


def build_message(*, display_name: str, sender: str, to: Sequence[str], subject: str, text: str,
                  html: str | None = None, cc: Sequence[str] = (), reply_to: str | None = None,
                  attachments: Sequence[Attachment] = (), message_id: str | None = None,
                  extra_headers: Sequence[tuple[str, str]] = ()) -> EmailMessage:
    """An EmailMessage with From, To, Date, Message-ID and Auto-Submitted (RFC 3834)."""
    for name, value in (("From name", display_name), ("Subject", subject), *extra_headers):
        check_header_value(name, value)
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = format_sender(display_name, sender)
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = message_id or make_message_id(sender)
    message["Auto-Submitted"] = "auto-generated"
    for name, value in extra_headers:
        message[name] = value
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for attachment in attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        try:
            payload = attachment.path.read_bytes()
        except OSError as exc:
            raise NoInputError(f"attachment {attachment.path} cannot be read: {exc.strerror}",
                               "check the file still exists and is readable") from None
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=attachment.filename)
    return message
