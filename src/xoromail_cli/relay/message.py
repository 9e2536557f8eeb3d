"""From an SMTP session to an `Envelope`: who may send, who is Bcc, and the headers kept as they came.

The message's bytes are kept as submitted except for three header edits: a Bcc header is removed (the
recipients it named stay in the envelope), a missing Message-ID is added (the ledger's idempotency key is
made from it), and under `--rewrite-from` a From the mailbox may not send as becomes the mailbox, with the
original in Reply-To.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import getaddresses

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.compose.mime import encode_header, format_sender, make_message_id

SEND_AS_REPLY = ("550 5.7.60 The mailbox {mailbox} may not send as {address}: send from {mailbox}, or give the "
                 "mailbox Send As rights for it and start the relay with --allow-from {address}, or start it "
                 "with --rewrite-from")
LOGIN_SEND_AS_REPLY = ("550 5.7.60 The relay login {login} may not send as {address}: it may send as {allowed}; "
                       "to allow it, give the mailbox {mailbox} Send As rights for it, then add it to `from` in "
                       "[relay.users.{login}] of the settings file and restart the relay")


class Refused(Exception):
    """A submission the relay answers with `reply` (a 5xx: the client must not try it again as it is)."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True, kw_only=True)
class SenderPolicy:
    """Which From addresses the mailbox may send as, and whether others are rewritten or refused."""

    mailbox: str
    display_name: str = ""
    allowed: frozenset[str] = frozenset()
    """Further addresses the mailbox has Send As rights for (`--allow-from`), lower case."""
    rewrite: bool = False
    login: str = ""
    """The relay login this policy is for (several logins, one process); empty for the one-login relay."""

    def may_send_as(self, address: str) -> bool:
        return address.lower() == self.mailbox.lower() or address.lower() in self.allowed

    def refuse_sender(self, address: str) -> str | None:
        """The answer to MAIL FROM, when it is a refusal."""
        if self.rewrite or self.may_send_as(address):
            return None
        return self.reply_for(address or "<>")

    def reply_for(self, address: str) -> str:
        """The refusal of a From this login (or this mailbox) may not use, with what to do about it."""
        if self.login:
            allowed = ", ".join([self.mailbox, *sorted(self.allowed)])
            return LOGIN_SEND_AS_REPLY.format(login=self.login, address=address, allowed=allowed,
                                              mailbox=self.mailbox)
        return SEND_AS_REPLY.format(mailbox=self.mailbox, address=address)


def _fields(head: bytes) -> list[bytes]:
    """The header's fields, each with its continuation lines and line ends."""
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    return fields


def _name(field: bytes) -> str:
    return field.partition(b":")[0].strip().decode("ascii", "replace").lower()


def _value(field: bytes) -> str:
    """A header's value, unfolded, as text (RFC 2047 words stay encoded: only addresses are read)."""
    raw = field.partition(b":")[2].decode("utf-8", "replace")
    return " ".join(raw.split())


def _split(data: bytes) -> tuple[bytes, bytes]:
    """(header fields with their line ends, body); a message of headers only has an empty body."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = data.find(separator)
        if end >= 0:
            middle = len(separator) // 2
            return data[: end + middle], data[end + len(separator):]
    return data, b""


def accept_message(data: bytes, mail_from: str, rcpt_tos: tuple[str, ...], policy: SenderPolicy) -> Envelope:
    """The envelope to keep: To and Cc as the headers name them, every other SMTP recipient Bcc."""
    head, body = _split(data)
    fields = _fields(head)
    values: dict[str, list[str]] = {}
    for field in fields:
        values.setdefault(_name(field), []).append(_value(field))
    shown = {name: {address.lower() for _, address in getaddresses(values.get(name, []))} for name in ("to", "cc")}
    to = tuple(address for address in rcpt_tos if address.lower() in shown["to"])
    cc = tuple(address for address in rcpt_tos if address.lower() in shown["cc"] and address not in to)
    bcc = tuple(address for address in rcpt_tos if address not in to and address not in cc)
    kept = [field for field in fields if _name(field) not in ("bcc", "resent-bcc")]
    message_id = (values.get("message-id") or [""])[0].strip()
    if not message_id:
        message_id = make_message_id(policy.mailbox)
        kept.append(encode_header("Message-ID", message_id))
    header_from = [address for _, address in getaddresses(values.get("from", [])) if address]
    sender = mail_from
    strangers = [address for address in (mail_from, *header_from) if not policy.may_send_as(address)]
    if strangers and not policy.rewrite:
        raise Refused(policy.reply_for(strangers[-1]))
    if strangers:
        original = ", ".join(values.get("from", [])) or mail_from
        kept = [field for field in kept if _name(field) != "from"]
        kept.insert(0, encode_header("From", format_sender(policy.display_name, policy.mailbox)))
        if "reply-to" not in values:
            kept.append(encode_header("Reply-To", original))
        sender = policy.mailbox
    fixed = b"".join(field if field.endswith(b"\n") else field + b"\r\n" for field in kept)
    return Envelope(sender=sender, to=to, data=fixed + b"\r\n" + body, message_id=message_id, cc=cc, bcc=bcc)
