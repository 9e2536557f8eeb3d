"""SMTP (the ERP's "Web Mail"): one session per batch, pipelined when the server allows it.

The session itself (stages, certificate verification, sign-in) is opened by `session.connect`.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import ExitCode
from xoromail_cli.services.base import (
    ConnectionLostError,
    Delivery,
    DeliveryStatus,
    Refusal,
    StageCallback,
    TraceCallback,
    mark_stopped_before_end,
)
from xoromail_cli.services.network import is_loopback
from xoromail_cli.services.smtp import pipelining
from xoromail_cli.services.smtp.pipelining import GroupReplies, body_options
from xoromail_cli.services.smtp.replies import QUOTA_HINT, SEND_AS_HINT, reply_failure, reply_text
from xoromail_cli.services.smtp.session import (
    SmtpEndpoint,
    TokenSource,
    _Client,
    check_plaintext_allowed,
    connect,
)

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile

__all__ = ["SmtpEndpoint", "SmtpTransport", "TokenSource", "check_plaintext_allowed", "connect", "is_loopback"]


class SmtpTransport:
    """One SMTP session for a whole batch; every refusal comes back classified.

    When the server advertises PIPELINING, a message's MAIL/RCPT/DATA go in one write, and `send_then` puts the
    next message's commands right behind this one's final dot: about one round trip per message instead of four.
    """

    name = "smtp"
    accepted_as: Literal["sent", "written"] = "sent"
    subset_retries = True

    def __init__(self, settings: SmtpEndpoint, password: str | None, *, token: TokenSource | None = None,
                 trace: TraceCallback | None = None, allow_pipelining: bool = True) -> None:
        self.settings = settings
        self._password = password
        self._token = token
        self._trace = trace
        self._client: _Client | None = None
        self.max_message_size: int | None = None
        self.peer_certificate: dict[str, Any] | None = None
        """The server's certificate as `getpeercert()` gives it, once a TLS session is open (expiry notes)."""
        self._allow_pipelining = allow_pipelining
        self.pipelining = False
        """The open session pipelines (the server advertised PIPELINING)."""
        self._ahead: GroupReplies | None = None
        self._awaiting_data = False
        self._reopen = False

    @classmethod
    def for_profile(cls, profile: Profile, password: str | None, *, timeout: float | None = None,
                    token: TokenSource | None = None, trace: TraceCallback | None = None) -> SmtpTransport:
        return cls(SmtpEndpoint.from_profile(profile, timeout), password, token=token, trace=trace)

    def open(self, on_stage: StageCallback | None = None) -> None:
        self.close()
        self._client = connect(self.settings, self._password, on_stage, token=self._token, trace=self._trace)
        sock = self._client.sock
        self.peer_certificate = sock.getpeercert() if isinstance(sock, ssl.SSLSocket) else None
        size = self._client.esmtp_features.get("size", "").strip()
        self.max_message_size = int(size) if size.isdigit() and int(size) > 0 else None
        self.pipelining = self._allow_pipelining and pipelining.advertised(self._client)
        self._reopen = False

    def send(self, envelope: Envelope, before_data: Callable[[], None] | None = None) -> Delivery:
        """One MAIL/RCPT/DATA exchange. Refusals are returned; a dropped connection raises ConnectionLostError."""
        return self.send_then(envelope, before_data, None)

    def send_then(self, envelope: Envelope, before_data: Callable[[], None] | None,
                  following: Envelope | None, meanwhile: Callable[[], None] | None = None) -> Delivery:
        """Like `send`; with PIPELINING, `following`'s commands go out behind this message's data. Their replies
        are kept for the next call, which should be for `following`: any other call discards them first (an
        RSET, or after a 354 a new connection, since a server reading data can only be left by hanging up).
        `meanwhile` runs once this message's data is written, before its reply is read (at most once)."""
        if self._ahead is not None and self._ahead.envelope is not envelope:
            self._discard_ahead()
        if self._client is None and self._reopen:
            self.open()
        client = self._client
        if client is None:
            raise ConnectionLostError("not connected", committed=False)
        progress = _Progress(before_data)
        try:
            if self.pipelining:
                return self._exchange_pipelined(client, envelope, progress, following, meanwhile)
            return self._exchange(client, envelope, progress, meanwhile)
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise progress.lost(f"{self.settings.host}:{self.settings.port}", str(exc) or type(exc).__name__) from None
        except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM (interrupts.Terminated): the run ends
            if progress.cut_short(stop):  # in the middle of the data: a QUIT would be read as part of it
                self._drop()
            raise

    def _exchange_pipelined(self, client: _Client, envelope: Envelope, progress: _Progress,
                            following: Envelope | None, meanwhile: Callable[[], None] | None) -> Delivery:
        replies, self._ahead = self._ahead, None
        if replies is None:
            client.write(pipelining.commands(envelope, body_options(client, envelope.data)))
            replies = pipelining.read_group(client, envelope)
            self._awaiting_data = replies.awaits_data
        verdict = self._judge(replies)
        if isinstance(verdict, Delivery):
            self._leave(client, replies)
            return verdict
        if pipelining.hung_up(client):
            raise smtplib.SMTPServerDisconnected("the server closed the connection instead of reading the message")
        progress.mark()
        announce = following is not None and following is not envelope and not verdict
        after = pipelining.commands(following, body_options(client, following.data)) if (
            following is not None and announce) else []
        client.write_message(envelope.data, after, written=progress.written, nearing=progress.nearing)
        self._awaiting_data = False
        if meanwhile is not None:
            meanwhile()
        code, reply = client.getreply()
        delivery = self._refusal("data", code, reply) if code != 250 else Delivery(
            status="sent", reply=f"{code} {reply_text(reply)}", refused=verdict,
            stops_batch=any(r.stops_batch for r in verdict.values()))
        if following is not None and announce:
            self._read_ahead(client, following, code)
        elif code == pipelining.CLOSING:
            self._hang_up()
        return delivery

    def _judge(self, replies: GroupReplies) -> Delivery | dict[str, Refusal]:
        """The message's refusal, or the recipients refused one by one when the server now awaits its data."""
        code, reply = replies.mail
        if code != 250:
            return self._refusal("mail from", code, reply)
        recipients = replies.envelope.recipients
        refused: dict[str, Refusal] = {}
        last: tuple[int, bytes] = (0, b"")
        for recipient, (rcode, rreply) in zip(recipients, replies.rcpt, strict=False):
            if rcode not in (250, 251):
                refused[recipient] = self._recipient_refusal(rcode, rreply)
                last = (rcode, rreply)
        if len(replies.rcpt) < len(recipients):  # a 421 in the middle: the server hung up on the message
            return self._refusal("rcpt to", *last)
        if len(refused) == len(recipients):
            delivery = self._refusal("rcpt to", *last)
            delivery.refused = refused
            return delivery
        assert replies.data is not None
        if replies.data[0] != 354:
            return self._refusal("data", *replies.data)
        return refused

    def _leave(self, client: _Client, replies: GroupReplies) -> None:
        """After a refused group: RSET, or hang up when the server closes or (oddly) awaits data anyway."""
        if replies.awaits_data or replies.closing:
            self._hang_up()
        else:
            self._reset(client)

    def _read_ahead(self, client: _Client, following: Envelope, final_code: int) -> None:
        """The replies to the commands sent behind the data; losing them only costs a reconnect."""
        if final_code == pipelining.CLOSING:
            self._hang_up()
            return
        try:
            self._ahead = pipelining.read_group(client, following)
        except (OSError, smtplib.SMTPException):
            self._hang_up()
            return
        self._awaiting_data = self._ahead.awaits_data

    def _discard_ahead(self) -> None:
        ahead, self._ahead = self._ahead, None
        client = self._client
        if ahead is None or client is None:
            return
        if ahead.awaits_data or ahead.closing:
            self._hang_up()
            return
        try:
            self._reset(client)
        except (OSError, smtplib.SMTPException):
            self._hang_up()

    def _hang_up(self) -> None:
        """Close without QUIT (which a server reading data would take as data) and reconnect on the next send."""
        self._drop()
        self._reopen = True

    def _exchange(self, client: _Client, envelope: Envelope, progress: _Progress,
                  meanwhile: Callable[[], None] | None) -> Delivery:
        code, reply = client.mail(envelope.sender, body_options(client, envelope.data))
        if code != 250:
            self._reset(client)
            return self._refusal("mail from", code, reply)
        refused: dict[str, Refusal] = {}
        last_refusal: tuple[int, bytes] = (0, b"")
        for recipient in envelope.recipients:
            rcode, rreply = client.rcpt(recipient)
            if rcode not in (250, 251):
                refused[recipient] = self._recipient_refusal(rcode, rreply)
                last_refusal = (rcode, rreply)
        if len(refused) == len(envelope.recipients):
            self._reset(client)
            delivery = self._refusal("rcpt to", *last_refusal)
            delivery.refused = refused
            return delivery
        progress.mark()
        try:
            dcode, dreply = client.data(envelope.data, meanwhile, written=progress.written,
                                         nearing=progress.nearing)
        except smtplib.SMTPDataError as exc:
            return self._refusal("data", exc.smtp_code, exc.smtp_error)
        if dcode != 250:
            return self._refusal("data", dcode, dreply)
        return Delivery(status="sent", reply=f"{dcode} {reply_text(dreply)}", refused=refused,
                        stops_batch=any(r.stops_batch for r in refused.values()))

    def close(self) -> None:
        client, self._client = self._client, None
        self._ahead = None
        if client is None:
            return
        if self._awaiting_data:  # the server reads data: a QUIT would become part of a message
            self._awaiting_data = False
            client.close()
            return
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()

    def _drop(self) -> None:
        client, self._client = self._client, None
        self._ahead, self._awaiting_data = None, False
        if client is not None:
            client.close()

    def _recipient_refusal(self, code: int, reply: bytes | str) -> Refusal:
        failure = reply_failure("rcpt to", code, reply_text(reply), self.settings.host)
        return Refusal(f"{code} {reply_text(reply)}", temporary=failure.exit_code == ExitCode.TEMPFAIL,
                       stops_batch=failure.hint in (QUOTA_HINT, SEND_AS_HINT))

    def _refusal(self, stage: str, code: int, reply: bytes | str) -> Delivery:
        failure = reply_failure(stage, code, reply_text(reply), self.settings.host)
        status: DeliveryStatus = "temporary" if failure.exit_code == ExitCode.TEMPFAIL else "failed"
        account_wide = failure.hint in (QUOTA_HINT, SEND_AS_HINT) or (
            stage == "mail from" and failure.exit_code in (ExitCode.NOPERM, ExitCode.PROTOCOL))
        return Delivery(status=status, reply=failure.message.removeprefix("server replied: "),
                        exit_code=int(failure.exit_code), hint=failure.hint, stops_batch=account_wide,
                        refuses_sender=failure.hint == SEND_AS_HINT, reconnect=code == 421)

    @staticmethod
    def _reset(client: smtplib.SMTP) -> None:
        try:
            client.rset()
        except smtplib.SMTPServerDisconnected:
            raise
        except (OSError, smtplib.SMTPException):
            pass


NOT_ACCEPTED_HINT = ("a server accepts a message only once it has read its end (the final dot), which never went "
                     "out: it was not sent, and sending it again makes no duplicate")


class _Progress:
    """How far one message got: `mark` (the ledger's in-flight row, just before its data), `nearing` (the next
    write may take its final dot) and `written` (its final dot handed to the socket). Only a message written whole
    may have been accepted: a connection lost before that, even in the middle of its data, leaves it certainly not
    sent (RFC 5321 4.1.1.4: the server acts on the message after the end of the data)."""

    def __init__(self, before_data: Callable[[], None] | None) -> None:
        self._before_data = before_data
        self.marked = self.near_end = self.committed = False

    def mark(self) -> None:
        if self._before_data is not None:
            self._before_data()
        self.marked = True  # after the row is written: a stop while it is written leaves the run's usual stop

    def nearing(self) -> None:
        self.near_end = True

    def written(self) -> None:
        self.committed = True

    def cut_short(self, stop: KeyboardInterrupt) -> bool:
        """A Ctrl-C or SIGTERM came. True, and `stop` marked so (`services.base.stopped_before_end`), when it came
        after the message's in-flight row and before any write that may have taken its end: not sent. A stop
        that may have come after the end went out leaves the message in flight (in doubt), as a crash does."""
        if not self.marked or self.near_end or self.committed:
            return False
        mark_stopped_before_end(stop)
        return True

    def lost(self, host: str, cause: str) -> ConnectionLostError:
        if self.committed:
            return ConnectionLostError(f"the connection to {host} was lost after the message was sent ({cause}): "
                                       "the server may have accepted it", committed=True)
        if self.marked:
            return ConnectionLostError(f"the connection to {host} was lost while sending the message, before its "
                                       f"end ({cause}): the server cannot have accepted it", committed=False,
                                       hint=NOT_ACCEPTED_HINT)
        return ConnectionLostError(f"the connection to {host} was lost: {cause}", committed=False)
