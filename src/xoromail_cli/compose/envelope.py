"""The envelope: a rendered message ready to go, as every transport and the relay receive it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """A rendered message ready to go: who it is from, who gets it (To, Cc and Bcc apart), and its bytes.

    `data` never contains a Bcc header: a transport that reads recipients from the headers (Gmail's API,
    Graph's MIME sendMail) asks for `data_with_bcc()` and relies on the service to strip it on delivery.
    """

    sender: str
    to: tuple[str, ...]
    data: bytes
    message_id: str
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    label: str = ""
    """What the message is, for names a person reads (an outbox file: `overdue-invoice-row12`); never sent."""

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every address the message goes to, in the order To, Cc, Bcc."""
        return (*self.to, *self.cc, *self.bcc)

    def restricted_to(self, addresses: Iterable[str]) -> Envelope:
        """The same message for some of its recipients only (a retry to those still owed)."""
        keep = {address.lower() for address in addresses}

        def pick(group: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(address for address in group if address.lower() in keep)

        return dataclasses.replace(self, to=pick(self.to), cc=pick(self.cc), bcc=pick(self.bcc))

    def data_with_bcc(self) -> bytes:
        """The message with a Bcc header for header-driven APIs (the provider removes it on delivery)."""
        if not self.bcc:
            return self.data
        from xoromail_cli.compose.mime import bcc_header

        head, separator, body = self.data.partition(b"\r\n\r\n")
        header: bytes = bcc_header(self.bcc)
        return head + b"\r\n" + header.rstrip(b"\r\n") + separator + body
