"""aiosmtpd's hooks for the relay: addresses and the From policy at MAIL and RCPT, the spool at DATA.

The answer to DATA is given only after the spool file is durable: 250 means kept, a 4xx means try again.
Reading the message (headers parsed, line ends and long lines mended) and keeping it run in a worker
thread, so one large or pathological message never holds up the other sessions.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import DataError, TemporaryError
from xoromail_cli.relay.delivery import event_line
from xoromail_cli.relay.limits import DEFAULT_RECIPIENTS
from xoromail_cli.relay.message import Refused, SenderPolicy, take_message
from xoromail_cli.relay.spool import Spool

EventLog = Callable[[str], None]
"""Takes one log line (no line breaks, no secrets): the CLI writes it to stderr for journald."""
NULL_SENDER_REPLY = ("550 5.7.1 An empty sender (MAIL FROM:<>) is for bounces, which the relay does not send: "
                     "submit with MAIL FROM:<{mailbox}>, or start the relay with --rewrite-from")


def peer_of(session: Any) -> str:
    peer = getattr(session, "peer", None)
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"


def address_problem(address: str) -> str | None:
    """Why `address` is not one an SMTP envelope may carry (NUL, line break, no domain), or None."""
    from xoromail_cli.addresses import parse_address

    if any(ord(character) < 32 or ord(character) == 127 for character in address):
        return "it holds a control character (NUL or a line break)"
    try:
        parse_address(address)
    except DataError as error:
        return error.message
    return None


@dataclass(frozen=True)
class Route:
    """Where one login's messages go: its From policy, its mailbox's spool, and the worker to wake."""

    policy: SenderPolicy
    spool: Spool
    on_accepted: Callable[[], None]
    refuse_size: Callable[[int], str | None] | None = None
    """The 552 for a message larger than the mailbox's service takes (DeliveryWorker.refuse_size)."""


class RelayHandler:
    """aiosmtpd hooks: the From policy at MAIL FROM, the recipients at RCPT, the spool at DATA. With `routes`,
    the login decides the policy and the spool (each login its profile's mailbox); without, one of each."""

    def __init__(self, spool: Spool, policy: SenderPolicy, log: EventLog, on_accepted: Callable[[], None], *,
                 routes: dict[str, Route] | None = None) -> None:
        self.spool, self.policy, self.log, self.on_accepted = spool, policy, log, on_accepted
        self.routes = routes
        self.busy = 0
        """Messages between the end of DATA and their answer: a stop waits for them."""

    def route(self, session: Any) -> Route:
        """The authenticated login's route (AUTH comes first: MAIL before it is refused)."""
        if self.routes is not None:
            return self.routes[str(getattr(session, "auth_data", ""))]
        return Route(self.policy, self.spool, self.on_accepted)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        refusal: str | None
        policy = self.route(session).policy
        login = policy.login or None
        if address == "<>" and not policy.rewrite:
            refusal = NULL_SENDER_REPLY.format(mailbox=policy.mailbox)
        elif address != "<>" and (problem := address_problem(address)) is not None:
            refusal = f"553 5.1.7 The sender {address!r} is not an address: {problem}"
        else:
            refusal = policy.refuse_sender("" if address == "<>" else address)
        if refusal is not None:
            self.log(event_line("refused", peer=peer_of(session), login=login, sender=address, reply=refusal))
            return refusal
        envelope.mail_from = "" if address == "<>" else address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        limits = getattr(server, "limits", None)
        cap = limits.max_recipients if limits is not None else DEFAULT_RECIPIENTS
        if len(envelope.rcpt_tos) >= cap:
            return f"452 4.5.3 Too many recipients: at most {cap} a message; send the rest in another message"
        problem = address_problem(address)
        if problem is not None:
            return f"501 5.1.3 The recipient {address!r} is not an address: {problem}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    @staticmethod
    def _keep(route: Route, data: bytes, mail_from: str, rcpt_tos: tuple[str, ...], peer: str,
              max_header: int) -> tuple[Envelope, int, str]:
        """In a worker thread: the message read and mended, then kept durably, its pieces written to the
        spool file one after another (never joined into one more copy of the message)."""
        taken = take_message(data, mail_from, rcpt_tos, route.policy, max_header=max_header)
        spool_id = route.spool.put(taken.envelope, peer=peer, pieces=taken.pieces)
        return taken.envelope, taken.size, spool_id  # not the pieces: they hold the received buffer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        loop = asyncio.get_running_loop()
        limits = getattr(server, "limits", None)
        max_header = limits.max_header if limits is not None else 512 * 1024
        route = self.route(session)
        data, envelope.original_content, envelope.content = envelope.original_content, None, None
        too_large = route.refuse_size(len(data or b"")) if route.refuse_size is not None else None
        if too_large is not None:  # this login's mailbox takes less than the relay's SIZE (several mailboxes)
            self.log(event_line("refused", peer=peer_of(session), login=route.policy.login or None,
                                sender=envelope.mail_from, reply=too_large))
            return too_large
        self.busy += 1
        try:
            message, size, spool_id = await loop.run_in_executor(None, functools.partial(
                self._keep, route, data, envelope.mail_from, tuple(envelope.rcpt_tos), peer_of(session),
                max_header))
        except Refused as refused:
            self.log(event_line("refused", peer=peer_of(session), login=route.policy.login or None,
                                sender=envelope.mail_from, reply=refused.reply))
            return refused.reply
        except Exception as error:  # noqa: BLE001  # whatever stops the spool, the answer must be a 4xx, never a 250
            cause = error.message if isinstance(error, TemporaryError) else type(error).__name__
            self.log(event_line("not-kept", peer=peer_of(session), cause=cause))
            return "451 4.3.0 The relay cannot keep the message now; try again later"
        finally:
            self.busy -= 1
            del data
        self.log(event_line("accepted", id=spool_id, peer=peer_of(session), login=route.policy.login or None,
                            sender=message.sender, to=len(message.recipients), size=size,
                            message_id=message.message_id))
        route.on_accepted()
        return f"250 2.0.0 OK queued as {spool_id}"
