"""The embedded capture server (aiosmtpd): `xoromail sink`, `xoromail demo`, and the test fixtures.

It accepts mail on a loopback port and keeps it (in memory and optionally in a Maildir) so an ERP or
xoromail itself can be tried without a real account.
"""

from __future__ import annotations

import logging
import mailbox
import socket
import ssl
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from xoromail_cli.errors import UnavailableError


@dataclass(kw_only=True)
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    peer: str
    login: str | None = None

    def parsed(self) -> EmailMessage:
        message = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(message, EmailMessage)
        return message


@dataclass
class CaptureHandler:
    """Keeps every message; subclasses override aiosmtpd hooks to answer with any reply."""

    maildir: Path | None = None
    on_message: Callable[[Received], None] | None = None
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._mailbox = open_maildir(self.maildir) if self.maildir else None

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw_login = getattr(session.auth_data, "login", None)
        login = raw_login.decode("utf-8", "replace") if isinstance(raw_login, bytes) else raw_login
        received = Received(sender=envelope.mail_from, recipients=list(envelope.rcpt_tos),
                            data=bytes(envelope.original_content),
                            peer=f"{session.peer[0]}:{session.peer[1]}", login=login)
        with self._lock:
            self.messages.append(received)
            number = len(self.messages)
            if self._mailbox is not None:
                self._mailbox.add(maildir_bytes(received))
        if self.on_message:
            self.on_message(received)
        return f"250 2.0.0 OK: queued as XM{number:06d}"


def open_maildir(path: Path) -> mailbox.Maildir:
    """A Maildir at `path`, made (with its parents and cur/new/tmp) if missing; refused at once with a hint
    when it is a file or cannot be written, rather than failing on the first message."""
    import tempfile

    from xoromail_cli.errors import CannotWriteError

    hint = "give a folder you can write to (it is created if missing), e.g. --maildir ./captured-mail"
    if path.exists() and not path.is_dir():
        raise CannotWriteError(f"--maildir {path} is a file, not a folder", hint)
    try:
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path / "tmp"):
            pass
    except OSError as exc:
        raise CannotWriteError(f"cannot write to --maildir {path}: {exc.strerror or exc}", hint) from None
    return mailbox.Maildir(path, create=False)


def maildir_bytes(received: Received) -> bytes:
    """The message as a local delivery stores it: LF line ends (as mail readers expect in a Maildir), and
    the envelope on top (Return-Path, X-Original-To with every recipient, Bcc ones included)."""
    envelope = (f"Return-Path: <{received.sender}>\n"
                f"X-Original-To: {', '.join(received.recipients)}\n").encode("utf-8", "replace")
    return envelope + received.data.replace(b"\r\n", b"\n")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class ThrowawayTLS:
    """A private CA and a server certificate for 127.0.0.1/localhost, made on the spot."""

    server_context: ssl.SSLContext
    ca_file: Path


def throwaway_tls(folder: Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> ThrowawayTLS:
    import trustme

    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(*names).configure_cert(server_context)
    ca_file = folder / "xoromail-demo-ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return ThrowawayTLS(server_context, ca_file)


def password_authenticator(credentials: dict[str, str]) -> Callable[..., Any]:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            if credentials.get(login) == auth_data.password.decode("utf-8", "replace"):
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 Username and Password not accepted")

    return authenticate


class SinkServer:
    """A running aiosmtpd on a loopback port, in a background thread; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, *, handler: CaptureHandler | None = None,
                 security: str = "none", tls_context: ssl.SSLContext | None = None,
                 authenticator: Callable[..., Any] | None = None, auth_required: bool = False) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.handler = handler or CaptureHandler()
        self.security = security
        self._tls_context = tls_context
        self._authenticator = authenticator
        self._auth_required = auth_required
        self._controller: Any = None

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    def start(self) -> SinkServer:
        from aiosmtpd.controller import Controller

        try:
            with socket.create_server((self.host, self.port)):
                pass
        except OSError as exc:
            raise UnavailableError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                                   "check --host (an address of this machine) and choose another --port "
                                   "if something else uses it") from None

        options: dict[str, Any] = {"hostname": self.host, "port": self.port, "ready_timeout": 10.0,
                                   "server_hostname": "localhost"}
        if self.security == "ssl":
            options["ssl_context"] = self._tls_context
        elif self.security == "starttls":
            options.update(tls_context=self._tls_context, require_starttls=True)
        if self._authenticator is not None:
            options.update(authenticator=self._authenticator, auth_required=self._auth_required,
                           auth_require_tls=self.security == "starttls")
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        # With implicit TLS aiosmtpd believes AUTH could travel in clear; on that socket it cannot.
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
        self._controller = Controller(self.handler, **options)
        try:
            self._controller.start()
        except (OSError, RuntimeError, TimeoutError) as exc:
            raise UnavailableError(f"cannot listen on {self.host}:{self.port}: {exc}",
                                   "check --host (an address of this machine) and choose another --port "
                                   "if something else uses it") from None
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SinkServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
