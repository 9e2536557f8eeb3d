"""Exchange Web Services through exchangelib: one signed-in session for a whole batch.

The endpoint, auth type and version are fixed (no autodiscover, no version-guessing round trips) and the
retry policy is FailFast, so a wrong password fails at once and exchangelib never resends a message behind
the ledger's back. Messages go as their MIME content (CreateItem, SendAndSaveCopy), so Message-ID,
Auto-Submitted and attachments arrive as built; To, Cc and Bcc go as EWS recipient lists, Bcc never as a header.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import ConfigError, ExitCode
from xoromail_cli.services import http
from xoromail_cli.services.base import ConnectionLostError, Delivery, SecretStore, StageCallback
from xoromail_cli.services.exchange import hints
from xoromail_cli.services.exchange.settings import ExchangeSettings, is_exchange_online, login_name
from xoromail_cli.services.network import open_connection, resolve, tls_context

if TYPE_CHECKING:
    import ssl

    from xoromail_cli.services.base import TraceCallback

EXCHANGE_BUILD = (15, 1, 2507, 6)
"""Exchange 2016 CU23: the oldest build still supported; its schema is understood by 2016 and 2019 alike."""
ON_PREMISES_MAX_SIZE = 10 * 1024 * 1024
"""Exchange Server's default organisation MaxSendSize (10 MB); admins often raise it."""
EXCHANGE_ONLINE_MAX_SIZE = 35 * 1024 * 1024
"""Exchange Online's default MaxSendSize for a mailbox (35 MB)."""


class ExchangeTransport:
    """Implements `services.base.Transport` for EWS."""

    name = "exchange"
    accepted_as: Literal["sent", "written"] = "sent"
    max_message_size: int | None
    subset_retries = True

    def __init__(self, settings: ExchangeSettings, sender: str, secrets: SecretStore, *,
                 ca_file: str | None = None, timeout: float = 30.0, trace: TraceCallback | None = None) -> None:
        self.settings = settings
        self.sender = sender
        self._secrets = secrets
        self.ca_file = ca_file
        self.timeout = timeout
        self._trace = trace
        self._account: Any = None
        self.max_message_size = (EXCHANGE_ONLINE_MAX_SIZE if is_exchange_online(settings.url)
                                 else ON_PREMISES_MAX_SIZE)

    def open(self, on_stage: StageCallback | None = None) -> None:
        """Probe DNS, TCP and TLS ourselves (so each has its own stage), then sign in through EWS."""
        self.close()
        report = on_stage or (lambda stage, detail: None)
        context = tls_context(self.ca_file)
        self._probe(context, report)
        password = self._secrets.get("password")
        if not password:
            raise ConfigError("no password available",
                              "run `xoromail setup --service exchange`, or set $XOROMAIL_PASSWORD")
        _use_trusting_adapter()
        http.register(self.settings.url, http.Endpoint(context, trace=self._trace, bodies=True))
        try:
            self._account = self._sign_in(password)
        except BaseException:
            http.unregister(self.settings.url)
            raise
        report("auth", f"signed in to EWS as {login_name(self.settings)} ({self.settings.auth.upper()})")

    def _probe(self, context: ssl.SSLContext, report: StageCallback) -> None:
        host, port, timeout = self.settings.host, self.settings.port, self.timeout
        stage = "dns"
        try:
            infos = resolve(host, port, timeout)
            report("dns", f"{host} → {', '.join(sorted({str(info[4][0]) for info in infos})[:3])}")
            stage = "connect"
            with open_connection(infos, timeout) as sock:
                report("connect", f"TCP connection to {sock.getpeername()[0]} port {port}")
                stage = "tls"
                with context.wrap_socket(sock, server_hostname=host) as tls:
                    cipher = tls.cipher()
                    report("tls", f"{tls.version()}, {cipher[0] if cipher else '?'}; certificate verified for "
                                  f"{host}")
        except OSError as exc:
            raise hints.network_failure(stage, exc, host, port, timeout) from None

    def _note(self, text: str) -> None:
        if self._trace is not None:
            self._trace("·", text)

    def _sign_in(self, password: str) -> Any:
        from exchangelib import DELEGATE, NTLM, Account, Build, Configuration, Credentials, FailFast, Version
        from exchangelib.transport import BASIC

        _quiet_library_logging()
        settings = self.settings
        self._note(f"POST {settings.url} GetFolder(sentitems) as {login_name(settings)}, "
                   f"{settings.auth.upper()}, password redacted")
        try:
            config = Configuration(service_endpoint=settings.url,
                                   credentials=Credentials(login_name(settings), password),
                                   auth_type=NTLM if settings.auth == "ntlm" else BASIC,
                                   version=Version(build=Build(*EXCHANGE_BUILD)), retry_policy=FailFast())
            account = Account(self.sender, config=config, autodiscover=False, access_type=DELEGATE)
            account.protocol.TIMEOUT = self.timeout
            account.sent  # noqa: B018  # GetFolder(sentitems): the first authenticated request, cached for sends
        except Exception as exc:  # noqa: BLE001  # exchangelib and the auth libraries raise many kinds; all are mapped
            raise hints.sign_in_failure(exc, settings.url) from None
        return account

    def send(self, envelope: Envelope, before_data: Callable[[], None] | None = None) -> Delivery:
        """One CreateItem (SendAndSaveCopy). Refusals are returned; a dropped connection raises."""
        from exchangelib import Mailbox, Message
        from exchangelib.errors import EWSError

        account = self._account
        if account is None:
            raise ConnectionLostError("not signed in to Exchange", committed=False)
        try:
            message = Message(account=account, folder=account.sent, mime_content=envelope.data,
                              to_recipients=[Mailbox(email_address=a) for a in envelope.to] or None,
                              cc_recipients=[Mailbox(email_address=a) for a in envelope.cc] or None,
                              bcc_recipients=[Mailbox(email_address=a) for a in envelope.bcc] or None)
        except (ValueError, TypeError) as exc:  # exchangelib checks fields as it builds the item; nothing went out
            return Delivery(status="failed", reply=f"not sent: {type(exc).__name__}: {exc}",
                            exit_code=int(ExitCode.DATAERR),
                            hint="check the message's addresses")
        if before_data is not None:
            before_data()
        self._note(f"POST {self.settings.url} CreateItem(SendAndSaveCopy) {envelope.message_id}, "
                   f"{len(envelope.data)} bytes, {len(envelope.recipients)} recipient(s)")
        try:
            message.send_and_save()
        except EWSError as exc:
            lost = _lost_connection(exc)
            if lost is not None:
                raise lost from None
            return hints.send_refusal(exc, self.settings.url)
        except Exception as exc:  # noqa: BLE001  # after the request went out, any other failure leaves it in doubt
            raise ConnectionLostError(f"sending through Exchange failed after the request went out "
                                      f"({type(exc).__name__})", committed=True,
                                      hint="check the sent-ledger and the mailbox's Sent Items before sending "
                                           "again") from None
        return Delivery(status="sent", reply=f"CreateItem NoError ({envelope.message_id})")

    def close(self) -> None:
        account, self._account = self._account, None
        if account is None:
            return
        http.unregister(self.settings.url)
        with contextlib.suppress(Exception):  # closing is best effort and must never raise
            account.protocol.close()


@lru_cache(maxsize=1)
def _use_trusting_adapter() -> None:
    """exchangelib builds its own sessions from `BaseProtocol.HTTP_ADAPTER_CLS` (where it documents overriding
    it): make that the one trusting adapter, which looks up the endpoint `open` registers for the EWS URL."""
    from exchangelib.protocol import BaseProtocol

    BaseProtocol.HTTP_ADAPTER_CLS = http.adapter_class()


def _quiet_library_logging() -> None:
    """exchangelib logs every failed request at ERROR with a multi-line dump; without a handler Python's
    last-resort handler would print it to stderr next to our own one-line cause and hint."""
    import logging

    library = logging.getLogger("exchangelib")
    if not any(isinstance(handler, logging.NullHandler) for handler in library.handlers):
        library.addHandler(logging.NullHandler())
    library.propagate = False


def _lost_connection(exc: BaseException) -> ConnectionLostError | None:
    """exchangelib reports a dropped connection as ErrorTimeoutExpired("Reraised from …") or TransportError,
    raised while handling the requests error (its `__context__`). A failure to connect means nothing went
    out; anything else came after the request was sent, so the message is in doubt."""
    import requests

    cause = exc.__context__
    if not isinstance(cause, requests.RequestException | OSError):
        return None
    before = http.before_request(cause)
    return ConnectionLostError(f"the connection to Exchange was lost ({type(cause).__name__})",
                               committed=not before,
                               hint=None if before else "the message may have gone: check the sent-ledger "
                                                        "and the mailbox's Sent Items before sending again")
