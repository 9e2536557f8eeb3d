"""From an SMTP session to an `Envelope`: who may send, who is Bcc, and the headers kept as they came.

The message's bytes are kept as submitted except for three header edits: a Bcc header is removed (the
recipients it named stay in the envelope), a missing Message-ID is added (made from the envelope and the
content, as the ledger's idempotency key is: the same submission twice is delivered once), and under
`--rewrite-from` a From the mailbox may not send as becomes the mailbox, with the original in Reply-To.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from email.utils import getaddresses

from xoromail_cli.addresses import domain_of
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.compose.mime import encode_header, format_sender
from xoromail_cli.errors import DataError
from xoromail_cli.relay.outcomes import generated_message_id

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


def _name(field: bytes) -> str:
    return field.partition(b":")[0].strip().decode("ascii", "replace").lower()


def _value(field: bytes) -> str:
    """A header's value, unfolded, as text (RFC 2047 words stay encoded: only addresses are read)."""
    raw = field.partition(b":")[2].decode("utf-8", "replace")
    return " ".join(raw.split())


def _split(data: bytes | bytearray) -> tuple[bytes, int]:
    """(header fields with their line ends, where the body begins); a message of headers only has no body.
    The body is not copied: a message of the maximum size is held once more only as the envelope's bytes."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        return bytes(data[: end + 2]), end + 4
    return bytes(data), len(data)


ADDRESS_HEADERS = ("from", "sender", "resent-from", "resent-sender")
"""The headers that say who sent the message: the From policy covers each."""
MAX_HEADER = 512 * 1024


def _check_head(head: bytes, max_header: int) -> None:
    if len(head) > max_header:
        raise Refused(f"552 5.3.4 The message's header section is {len(head):,} bytes; the relay takes at most "
                      f"{max_header:,} (send long recipient lists as RCPT only, not in To)")
    if b"\x00" in head:
        raise Refused("550 5.6.0 The message's header section holds a NUL character, which no mail server passes "
                      "on; remove it from the From, To or Subject the program fills in")


def _strangers(values: dict[str, list[str]], mail_from: str, policy: SenderPolicy) -> dict[str, list[str]]:
    """Per sender header (and `mail from`), the addresses the mailbox may not send as."""
    found: dict[str, list[str]] = {}
    if not policy.may_send_as(mail_from):
        found["mail from"] = [mail_from]
    for name in ADDRESS_HEADERS:
        addresses = [address for _, address in getaddresses(values.get(name, [])) if address]
        if any(ord(character) < 32 for address in addresses for character in address):
            raise Refused(f"550 5.6.0 The {name.title()} header holds an address with a control character")
        others = [address for address in addresses if not policy.may_send_as(address)]
        if others:
            found[name] = others
    return found


def _rewrite(kept: list[bytes], values: dict[str, list[str]], mail_from: str, policy: SenderPolicy,
             strangers: dict[str, list[str]]) -> list[bytes]:
    """--rewrite-from: From becomes the mailbox (the original in Reply-To); other sender headers naming
    someone else are dropped (the mailbox sends the message itself)."""
    dropped = {name for name in strangers if name in ADDRESS_HEADERS}
    kept = [field for field in kept if _name(field) not in dropped | {"from"}]
    try:
        kept.insert(0, encode_header("From", format_sender(policy.display_name, policy.mailbox)))
        if "reply-to" not in values and "from" in strangers:
            kept.append(encode_header("Reply-To", ", ".join(values.get("from", [])) or mail_from))
    except DataError as error:
        raise Refused(f"550 5.6.0 The From header cannot be rewritten: {error.message}") from None
    return kept


@dataclass(frozen=True, kw_only=True)
class Taken:
    """A message taken in: its envelope without the bytes (`data` empty) and the bytes as pieces in order
    (the fixed header, then memoryview slices of what came and mended parts), which the spool writes one
    after another (`Spool.put`): the message is never joined into one more copy of itself."""

    envelope: Envelope
    pieces: tuple[bytes | memoryview, ...]

    @property
    def size(self) -> int:
        return sum(len(piece) for piece in self.pieces)

    def joined(self) -> Envelope:
        """The envelope with its bytes (what the spool's file holds after the envelope line)."""
        return replace(self.envelope, data=b"".join(self.pieces))


def accept_message(data: bytes | bytearray, mail_from: str, rcpt_tos: tuple[str, ...], policy: SenderPolicy, *,
                   max_header: int = MAX_HEADER) -> Envelope:
    """The envelope to keep, its bytes joined (`take_message`)."""
    return take_message(data, mail_from, rcpt_tos, policy, max_header=max_header).joined()


def take_message(data: bytes | bytearray, mail_from: str, rcpt_tos: tuple[str, ...], policy: SenderPolicy, *,
                 max_header: int = MAX_HEADER) -> Taken:
    """The envelope to keep: To and Cc as the headers name them, every other SMTP recipient Bcc; line ends
    CRLF and lines of at most 998 octets (`mending`). Refused for what must not be passed on."""
    from xoromail_cli.relay.long_lines import short_line_pieces
    from xoromail_cli.relay.mending import MendRefused, crlf_line_ends, fold_field, has_long_line, header_fields

    try:
        data = crlf_line_ends(data)
    except MendRefused as refused:
        raise Refused(refused.reply) from None
    head, start = _split(data)
    _check_head(head, max_header)
    fields = header_fields(head)
    values: dict[str, list[str]] = {}
    for field in fields:
        values.setdefault(_name(field), []).append(_value(field))
    shown = {name: {address.lower() for _, address in getaddresses(values.get(name, []))} for name in ("to", "cc")}
    to = tuple(address for address in rcpt_tos if address.lower() in shown["to"])
    cc = tuple(address for address in rcpt_tos if address.lower() in shown["cc"] and address not in to)
    bcc = tuple(address for address in rcpt_tos if address not in to and address not in cc)
    kept = [field for field in fields if _name(field) not in ("bcc", "resent-bcc")]
    message_id = (values.get("message-id") or [""])[0].strip()
    if not message_id:  # made from the content: the same submission again gets the same one (outcomes)
        message_id = generated_message_id(data, mail_from, rcpt_tos, domain_of(policy.mailbox))
        kept.append(encode_header("Message-ID", message_id))
    sender = mail_from
    strangers = _strangers(values, mail_from, policy)
    if strangers and not policy.rewrite:
        name, addresses = next(iter(strangers.items()))
        raise Refused(policy.reply_for(addresses[-1] or "<>")
                      + ("" if name in ("from", "mail from") else f" (in the {name.title()} header)"))
    if strangers:
        kept = _rewrite(kept, values, mail_from, policy, strangers)
        sender = policy.mailbox
    try:
        kept = [fold_field(field) for field in kept]
    except MendRefused as refused:
        raise Refused(refused.reply) from None
    fixed = b"".join(field if field.endswith(b"\n") else field + b"\r\n" for field in kept)
    envelope = Envelope(sender=sender, to=to, data=b"", message_id=message_id, cc=cc, bcc=bcc)
    if has_long_line(data, start):
        try:
            return Taken(envelope=envelope, pieces=tuple(short_line_pieces(fixed, data, start)))
        except MendRefused as refused:
            raise Refused(refused.reply) from None
    return Taken(envelope=envelope, pieces=(fixed, b"\r\n", memoryview(data)[start:]))
