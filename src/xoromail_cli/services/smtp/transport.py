"""SMTP (the ERP's "Web Mail"): connect stage by stage, always verifying certificates.

smtplib verifies nothing unless given a context (CPython issue #91826), so every TLS step here uses
`ssl.create_default_context()` plus the profile's CA file.
"""

from __future__ import annotations

import base64
import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from xoromail_cli.services.smtp.replies import QUOTA_HINT, reply_failure, reply_text, stage_failure
from xoromail_cli.errors import ConfigError, ExitCode, NoInputError, StageFailedError
from xoromail_cli.transports.base import Delivery, DeliveryStatus, Envelope, StageCallback

if TYPE_CHECKING:
    from xoromail_cli.config import Profile


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    username: str
    ca_file: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_profile(cls, profile: Profile, timeout: float | None = None) -> SmtpSettings:
        return cls(profile.host, profile.port, profile.security, profile.auth_username or "", profile.ca_file,
                   timeout if timeout is not None else profile.timeout)


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_plaintext_allowed(settings: SmtpSettings) -> None:
    """Credentials travel without TLS only to this machine."""
    if settings.security == "none" and settings.username and not is_loopback(settings.host):
        raise ConfigError(f"security 'none' would send the password for {settings.username} unencrypted "
                          f"to {settings.host}",
                          "use security starttls (port 587) or ssl (port 465); 'none' with a password is "
                          "allowed only for a server on this machine")


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store (or SSL_CERT_FILE), plus the profile's own CA file if it has one."""
    context = ssl.create_default_context()
    try:
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:
        raise ConfigError(f"CA file {ca_file} holds no usable PEM certificate ({exc.reason or exc})",
                          "pass a PEM file with the CA certificate(s) to --ca-file") from None
    except OSError as exc:
        raise NoInputError(f"cannot read CA file {ca_file}: {exc.strerror}",
                           "check the path and permissions of the profile's ca_file") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _Client(smtplib.SMTP):
    """smtplib over a socket we connected (and maybe wrapped) ourselves, so each stage is visible."""

    def __init__(self, sock: socket.socket, host: str, port: int, timeout: float) -> None:
        self._ready_socket = sock
        super().__init__(host, port, local_hostname=_address_literal(sock), timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self._ready_socket

    def login_utf8(self, user: str, password: str) -> None:
        """smtplib encodes credentials as ASCII; RFC 4616 (PLAIN) carries UTF-8, so do that ourselves."""
        if user.isascii() and password.isascii():
            self.login(user, password)
            return
        mechanisms = self.esmtp_features.get("auth", "").upper().split()
        if "PLAIN" in mechanisms:
            token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode("ascii")
            code, reply = self.docmd("AUTH", f"PLAIN {token}")
        elif "LOGIN" in mechanisms:
            code, reply = self.docmd("AUTH", "LOGIN " + base64.b64encode(user.encode()).decode("ascii"))
            if code == 334:
                code, reply = self.docmd(base64.b64encode(password.encode()).decode("ascii"))
        else:
            raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
        if code not in (235, 503):
            raise smtplib.SMTPAuthenticationError(code, reply)


def _tls_detail(sock: socket.socket | None, host: str) -> str:
    if isinstance(sock, ssl.SSLSocket):
        cipher = sock.cipher()
        return f"{sock.version()}, {cipher[0] if cipher else '?'}; certificate verified for {host}"
    return "not encrypted"


def connect(settings: SmtpSettings, password: str | None,
            on_stage: StageCallback | None = None) -> smtplib.SMTP:
    """Open an SMTP session and sign in, reporting each stage; raises StageFailedError."""
    report = on_stage or (lambda stage, detail: None)
    check_plaintext_allowed(settings)
    context = tls_context(settings.ca_file) if settings.security != "none" else None
    host, port, timeout = settings.host, settings.port, settings.timeout
    stage = "dns"
    sock: socket.socket | None = None
    client: _Client | None = None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = sorted({str(info[4][0]) for info in infos})
        report("dns", f"{host} → {', '.join(addresses[:3])}")
        stage = "connect"
        sock = socket.create_connection((host, port), timeout=timeout)
        report("connect", f"TCP connection to {sock.getpeername()[0]} port {port}")
        if settings.security == "ssl" and context is not None:
            stage = "tls"
            sock = context.wrap_socket(sock, server_hostname=host)
            report("tls", f"implicit TLS: {_tls_detail(sock, host)}")
        stage = "ehlo"
        client = _Client(sock, host, port, timeout)
        client.ehlo_or_helo_if_needed()
        report("ehlo", f"{_short(client.ehlo_resp)}; extensions: {', '.join(sorted(client.esmtp_features))}")
        if settings.security == "starttls" and context is not None:
            stage = "tls"
            if not client.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server.")
            client.starttls(context=context)
            client.ehlo()
            report("tls", f"STARTTLS: {_tls_detail(client.sock, host)}")
        if settings.username:
            stage = "auth"
            if password is None:
                raise ConfigError("no password available", "run `xoromail setup` or set $XOROMAIL_PASSWORD")
            client.login_utf8(settings.username, password)
            report("auth", f"signed in as {settings.username}")
        return client
    except (ConfigError, StageFailedError):
        _discard(client, sock)
        raise
    except (OSError, smtplib.SMTPException) as exc:
        _discard(client, sock)
        raise stage_failure(stage, exc, host, port, timeout) from None


def _address_literal(sock: socket.socket) -> str:
    """EHLO with our address literal: socket.getfqdn() can stall for seconds on a badly set-up host."""
    address = str(sock.getsockname()[0])
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


def _discard(client: smtplib.SMTP | None, sock: socket.socket | None) -> None:
    try:
        if client is not None:
            client.close()
        elif sock is not None:
            sock.close()
    except OSError:
        pass


def _short(reply: bytes | None) -> str:
    return reply.decode("utf-8", "replace").splitlines()[0][:80] if reply else ""


class SmtpTransport:
    name = "smtp"
    accepted_as: Literal["sent", "written"] = "sent"

    def __init__(self, settings: SmtpSettings, password: str | None) -> None:
        self.settings = settings
        self._password = password
        self._client: smtplib.SMTP | None = None

    def open(self, on_stage: StageCallback | None = None) -> None:
        self.close()
        self._client = connect(self.settings, self._password, on_stage)

    def send(self, envelope: Envelope, before_data: Callable[[], None] | None = None) -> Delivery:
        """One MAIL/RCPT/DATA exchange. Refusals are returned; a dropped connection raises."""
        client = self._client
        if client is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        code, reply = client.mail(envelope.sender)
        if code != 250:
            self._reset(client)
            return self._refusal("mail from", code, reply)
        refused: dict[str, str] = {}
        for recipient in envelope.recipients:
            rcode, rreply = client.rcpt(recipient)
            if rcode not in (250, 251):
                refused[recipient] = f"{rcode} {reply_text(rreply)}"
                last_refusal = (rcode, rreply)
        if len(refused) == len(envelope.recipients):
            self._reset(client)
            delivery = self._refusal("rcpt to", *last_refusal)
            delivery.refused = refused
            return delivery
        if before_data is not None:
            before_data()
        try:
            dcode, dreply = client.data(envelope.data)
        except smtplib.SMTPDataError as exc:
            return self._refusal("data", exc.smtp_code, exc.smtp_error)
        if dcode != 250:
            return self._refusal("data", dcode, dreply)
        return Delivery("sent", f"{dcode} {reply_text(dreply)}", refused)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()

    def _refusal(self, stage: str, code: int, reply: bytes | str) -> Delivery:
        failure = reply_failure(stage, code, reply_text(reply), self.settings.host)
        status: DeliveryStatus = "temporary" if failure.exit_code == ExitCode.TEMPFAIL else "failed"
        account_wide = failure.hint == QUOTA_HINT or (
            stage == "mail from" and failure.exit_code in (ExitCode.NOPERM, ExitCode.PROTOCOL))
        return Delivery(status, failure.message.removeprefix("server replied: "),
                        exit_code=int(failure.exit_code), hint=failure.hint, stops_batch=account_wide)

    @staticmethod
    def _reset(client: smtplib.SMTP) -> None:
        try:
            client.rset()
        except smtplib.SMTPServerDisconnected:
            raise
        except (OSError, smtplib.SMTPException):
            pass
