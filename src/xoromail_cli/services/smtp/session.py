"""Opening an SMTP session stage by stage (dns, connect, tls, ehlo, auth), always verifying certificates.

smtplib verifies nothing unless given a context (CPython issue #91826), so every TLS step here uses
`ssl.create_default_context()` plus the profile's CA file. STARTTLS that the server does not offer is refused,
never skipped.
"""

from __future__ import annotations

import base64
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xoromail_cli.errors import ConfigError, ExitCode, StageFailedError
from xoromail_cli.services import deadline
from xoromail_cli.services.base import StageCallback, TraceCallback
from xoromail_cli.services.deadline import Deadline, DeadlineExceededError
from xoromail_cli.services.network import is_loopback, open_connection, resolve, tls_context
from xoromail_cli.services.smtp.replies import STARTTLS_FIRST_HINT, ProtocolViolationError, stage_failure

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile

TokenSource = Callable[[], str]
"""Returns a current OAuth access token (for XOAUTH2), refreshing it when needed."""

MAX_REPLY_LINES = 100
"""More continuation lines than any real server sends (Postfix and Exchange send about a dozen to EHLO)."""
WRITE_SIZE = 1 << 20
"""The most of a message's data joined into one write (the size of `pipelining.message_pieces`)."""
MAX_LINE = 8192
"""smtplib's own limit on one reply line (RFC 5321 asks for 512)."""
STAGE_TIMEOUTS = 2
"""A stage (greeting and EHLO, STARTTLS, sign-in) may take twice the profile's timeout, each reply once."""


@dataclass(frozen=True, kw_only=True)
class SmtpEndpoint:
    """Everything needed to open one SMTP session: the profile's SMTP table, its CA file and a timeout."""

    host: str
    port: int
    security: str
    username: str
    ca_file: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_profile(cls, profile: Profile, timeout: float | None = None) -> SmtpEndpoint:
        from xoromail_cli.services.smtp.settings import SmtpSettings

        settings = profile.settings
        assert isinstance(settings, SmtpSettings)
        return cls(host=settings.host, port=settings.port, security=settings.security,
                   username=settings.auth_username(profile.email) or "",
                   ca_file=profile.ca_file, timeout=timeout if timeout is not None else profile.timeout)


def check_plaintext_allowed(settings: SmtpEndpoint) -> None:
    """Credentials travel without TLS only to this machine."""
    if settings.security == "none" and settings.username and not is_loopback(settings.host):
        raise ConfigError(f"security 'none' would send the password for {settings.username} unencrypted "
                          f"to {settings.host}",
                          "use security starttls (port 587) or ssl (port 465); 'none' with a password is "
                          "allowed only for a server on this machine")


class _Client(smtplib.SMTP):
    """smtplib over a socket we connected (and maybe wrapped) ourselves, so each stage is visible."""

    def __init__(self, sock: socket.socket, host: str, port: int, timeout: float,
                 trace: TraceCallback | None = None, stage_deadline: Deadline | None = None) -> None:
        self._ready_socket = sock
        self._server_name = host
        self._trace = trace
        self._in_auth = False
        self._received = b""
        self.stage_deadline = stage_deadline
        """The deadline of the stage under way (set by `connect`); every reply also has its own."""
        super().__init__(host, port, local_hostname=_address_literal(sock), timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self._ready_socket

    def send(self, s: str | bytes) -> None:  # type: ignore[override]  # smtplib's own signature, narrowed for tracing
        self._trace_out(s)
        self._send_bounded(s.encode(self.command_encoding) if isinstance(s, str) else s)

    def write(self, parts: list[bytes]) -> None:
        """Several commands (and maybe a message) in one write, as PIPELINING allows; traced one by one."""
        for part in parts:
            self._trace_out(part)
        self._send_bounded(b"".join(parts))

    def data(self, msg: bytes | str,  # type: ignore[override]  # smtplib's, narrowed as send is, plus callbacks
             meanwhile: Callable[[], None] | None = None,
             written: Callable[[], None] | None = None,
             nearing: Callable[[], None] | None = None) -> tuple[int, bytes]:
        """smtplib's DATA, the message sent in dot-stuffed pieces (`message_pieces`), not in whole copies.
        `written` and `nearing` as in `write_message` (its final dot handed to the socket); `meanwhile` then, before
        its reply is read: the caller's own work overlaps the server's."""
        if not isinstance(msg, bytes):
            if written is not None:  # no piecewise write to watch: counted as handed over from the start
                written()
            return super().data(msg)
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        self.write_message(msg, written=written, nearing=nearing)
        if meanwhile is not None:
            meanwhile()
        return self.getreply()

    def write_message(self, data: bytes, after: list[bytes] | None = None,
                      written: Callable[[], None] | None = None,
                      nearing: Callable[[], None] | None = None) -> None:
        """The message's data after 354 (then `after`, commands PIPELINING lets follow it), in pieces, within
        one deadline for the whole (timeout plus size at the slowest allowed rate). `written` runs as soon as the
        socket has taken the final CRLF . CRLF, even if the write of `after` then fails: only from there on may
        the server accept the message; when this raises before, it cannot have. `nearing` runs before the first
        write that may take that end (`deadline.Reached`): a Ctrl-C or SIGTERM raised before it came before the end
        went out, even when it was raised between a write and the count of what it took."""
        from xoromail_cli.services.smtp.pipelining import message_pieces

        self._trace_out(data)
        for part in after or ():
            self._trace_out(part)
        total = len(data) + sum(len(part) for part in after or ()) + 5
        limit = Deadline(deadline.transfer_seconds(total, self.timeout), f"sending {total} bytes")
        held: list[bytes] = []  # pieces up to WRITE_SIZE go in one write, the last (the final dot) with `after`:
        size = 0  # a small message and its terminator are one write (one TLS record), a large one never one copy
        for piece in message_pieces(data):
            if held and size + len(piece) > WRITE_SIZE:
                self._send_bounded(b"".join(held), limit)
                held, size = [], 0
            held.append(piece)
            size += len(piece)
        self._send_bounded(b"".join([*held, *(after or ())]), limit, deadline.Reached(size, written, nearing))

    def _send_bounded(self, data: bytes, limit: Deadline | None = None,
                      on_sent: Callable[[int], None] | None = None) -> None:
        """sendall with a deadline for the whole write (timeout plus size at the slowest allowed rate)."""
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        if limit is None:
            limit = Deadline(deadline.transfer_seconds(len(data), self.timeout), f"sending {len(data)} bytes")
        try:
            deadline.send_all(self.sock, data, limit, self.timeout, on_sent)
        except DeadlineExceededError:
            self.close()
            raise
        except OSError as exc:
            self.close()
            raise smtplib.SMTPServerDisconnected(f"Server not connected ({exc})") from None

    def buffered(self) -> bool:
        """Whether the server has sent more than the replies read so far."""
        return bool(self._received)

    def getreply(self) -> tuple[int, bytes]:
        """smtplib's getreply with bounds: the whole reply within the timeout (and the stage's deadline),
        at most MAX_REPLY_LINES lines of at most MAX_LINE bytes."""
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        limit = Deadline(self.timeout, "the server's reply").sooner(self.stage_deadline)
        lines: list[bytes] = []
        started = bool(self._received)
        try:
            while True:
                line = self._read_line(limit, started or bool(lines))
                lines.append(line[4:].strip(b" \t\r\n"))
                if len(lines) > MAX_REPLY_LINES:
                    raise ProtocolViolationError(f"the server's reply went on for more than {MAX_REPLY_LINES} lines")
                if not line[:3].isdigit() or line[3:4] != b"-":
                    break
        except (ProtocolViolationError, DeadlineExceededError, smtplib.SMTPServerDisconnected):
            self.close()
            raise
        code = int(line[:3]) if line[:3].isdigit() else -1
        text = b"\n".join(lines)
        if code != 334:
            self._in_auth = False
        if self._trace is not None:
            self._trace("←", f"{code} {text.decode('utf-8', 'replace')}".replace("\n", f"\n{code} "))
        return code, text

    def _read_line(self, limit: Deadline, started: bool) -> bytes:
        assert self.sock is not None
        while b"\n" not in self._received:
            if len(self._received) > MAX_LINE:
                raise ProtocolViolationError(f"the server sent a reply line longer than {MAX_LINE} bytes")
            try:
                chunk = deadline.recv(self.sock, limit, started=started or bool(self._received))
            except DeadlineExceededError:
                raise
            except OSError as exc:
                raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from None
            if not chunk:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            self._received += chunk
        line, _, self._received = self._received.partition(b"\n")
        if len(line) > MAX_LINE:
            raise ProtocolViolationError(f"the server sent a reply line longer than {MAX_LINE} bytes")
        return line + b"\n"

    def close(self) -> None:
        self._received = b""
        super().close()

    def ehlo_or_helo_if_needed(self) -> None:
        """smtplib's, except that a temporary refusal of EHLO (421: closing) is not followed by HELO."""
        if self.helo_resp is None and self.ehlo_resp is None:
            code, reply = self.ehlo()
            if 400 <= code < 500:
                raise smtplib.SMTPHeloError(code, reply)
            if not 200 <= code <= 299:
                code, reply = self.helo()
                if not 200 <= code <= 299:
                    raise smtplib.SMTPHeloError(code, reply)

    def starttls(self, keyfile: None = None, certfile: None = None,  # type: ignore[override]  # context only
                 context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
        """smtplib's STARTTLS with a deadline on the handshake; anything the server sent behind its 220
        (before TLS) is a protocol violation (response injection, CVE-2011-0411), never read as a reply."""
        assert context is not None and self.sock is not None
        code, reply = self.docmd("STARTTLS")
        if code != 220:
            raise smtplib.SMTPResponseException(code, reply)
        if self._received:
            self.close()
            raise ProtocolViolationError("the server sent data after its 220 to STARTTLS, before TLS began")
        left = self.stage_deadline.remaining() if self.stage_deadline is not None else self.timeout
        self.sock = deadline.handshake(context, self.sock, self._server_name, max(0.001, min(self.timeout, left)))
        self.helo_resp = self.ehlo_resp = None
        self.esmtp_features = {}
        self.does_esmtp = False
        return code, reply

    def _trace_out(self, s: str | bytes) -> None:
        if self._trace is None:
            return
        text = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
        if text.upper().startswith("AUTH "):
            self._in_auth = True
            self._trace("→", f"AUTH {[*text.split(), ''][1]} ********")
        elif self._in_auth:
            self._trace("→", "******** (sign-in data)")
        else:
            self._trace("→", _redact(text))

    def mail(self, sender: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        if options:
            return super().mail(sender, options)
        from xoromail_cli.services.smtp.pipelining import quote_address

        self.putcmd("mail", f"from:{quote_address(sender)}")  # as smtplib's mail(), its parser skipped
        return self.getreply()

    def rcpt(self, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        if options:
            return super().rcpt(recip, options)
        from xoromail_cli.services.smtp.pipelining import quote_address

        self.putcmd("rcpt", f"to:{quote_address(recip)}")
        return self.getreply()

    def sign_in(self, user: str, password: str) -> None:
        """One AUTH exchange with one mechanism: smtplib's login() tries PLAIN, then LOGIN, so one wrong
        password counts twice against lockout and fail2ban limits. Credentials go as UTF-8 (RFC 4616)."""
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

    def sign_in_oauth(self, user: str, token: str) -> None:
        """AUTH XOAUTH2 (Microsoft 365, Gmail): the access token in place of a password."""
        if "XOAUTH2" not in self.esmtp_features.get("auth", "").upper().split():
            raise smtplib.SMTPNotSupportedError("SMTP AUTH XOAUTH2 not supported by server.")
        payload = base64.b64encode(f"user={user}\x01auth=Bearer {token}\x01\x01".encode()).decode("ascii")
        code, reply = self.docmd("AUTH", f"XOAUTH2 {payload}")
        if code == 334:  # the server's error details, base64 JSON: acknowledge to get the final reply
            code, reply = self.docmd("")
        if code not in (235, 503):
            raise smtplib.SMTPAuthenticationError(code, reply)


def _redact(text: str) -> str:
    """A command line as the trace shows it; the message itself only by its size."""
    if len(text) > 200 or "\r\n" in text.rstrip("\r\n"):
        return f"<message data, {len(text)} bytes>"
    return text.rstrip("\r\n")


def _tls_detail(sock: socket.socket | None, host: str) -> str:
    if isinstance(sock, ssl.SSLSocket):
        cipher = sock.cipher()
        return f"{sock.version()}, {cipher[0] if cipher else '?'}; certificate verified for {host}"
    return "not encrypted"


def connect(settings: SmtpEndpoint, password: str | None, on_stage: StageCallback | None = None, *,
            token: TokenSource | None = None, trace: TraceCallback | None = None) -> _Client:
    """Open an SMTP session and sign in, reporting each stage; raises StageFailedError."""
    report = on_stage or (lambda stage, detail: None)
    check_plaintext_allowed(settings)
    context = tls_context(settings.ca_file) if settings.security != "none" else None
    host, port, timeout = settings.host, settings.port, settings.timeout
    stage = "dns"
    sock: socket.socket | None = None
    client: _Client | None = None
    try:
        infos = resolve(host, port, timeout)
        addresses = sorted({str(info[4][0]) for info in infos})
        report("dns", f"{host} → {', '.join(addresses[:3])}")
        stage = "connect"
        sock = open_connection(infos, timeout)
        report("connect", f"TCP connection to {sock.getpeername()[0]} port {port}")
        if settings.security == "ssl" and context is not None:
            stage = "tls"
            sock = deadline.handshake(context, sock, host, timeout)
            report("tls", f"implicit TLS: {_tls_detail(sock, host)}")
        stage = "ehlo"
        client = _Client(sock, host, port, timeout, trace, _stage_deadline(stage, timeout))
        client.ehlo_or_helo_if_needed()
        report("ehlo", f"{_short(client.ehlo_resp)}; extensions: {', '.join(sorted(client.esmtp_features))}")
        if settings.security == "starttls" and context is not None:
            stage = "tls"
            client.stage_deadline = _stage_deadline(stage, timeout)
            if not client.has_extn("starttls"):
                raise smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server.")
            client.starttls(context=context)
            client.ehlo()
            report("tls", f"STARTTLS: {_tls_detail(client.sock, host)}")
        if settings.username:
            stage = "auth"
            client.stage_deadline = _stage_deadline(stage, timeout)
            if settings.security == "none" and client.has_extn("starttls") and not client.has_extn("auth"):
                raise StageFailedError(stage, "the server offers sign-in (AUTH) only after STARTTLS",
                                       STARTTLS_FIRST_HINT, ExitCode.PROTOCOL)
            if token is not None:
                client.sign_in_oauth(settings.username, token())
                report("auth", f"signed in as {settings.username} (XOAUTH2)")
            else:
                if password is None:
                    raise ConfigError("no password available", "run `xoromail setup` or set $XOROMAIL_PASSWORD")
                client.sign_in(settings.username, password)
                report("auth", f"signed in as {settings.username}")
        client.stage_deadline = None
        return client
    except (ConfigError, StageFailedError):
        _discard(client, sock)
        raise
    except (OSError, smtplib.SMTPException) as exc:
        _discard(client, sock)
        raise stage_failure(stage, exc, host, port, timeout) from None


def _stage_deadline(stage: str, timeout: float) -> Deadline:
    return Deadline(STAGE_TIMEOUTS * timeout, f"the {stage} stage")


def _address_literal(sock: socket.socket) -> str:
    """EHLO with our address literal: socket.getfqdn() can stall for seconds on a badly set-up host."""
    address = str(sock.getsockname()[0])
    return f"[IPv6:{address}]" if ":" in address else f"[{address}]"


def _discard(client: smtplib.SMTP | None, sock: socket.socket | None) -> None:
    """After a failed stage: say QUIT when the session still stands (servers log a clean goodbye), then close."""
    try:
        if client is not None:
            try:
                if client.sock is not None:
                    client.quit()
            except (OSError, smtplib.SMTPException):
                pass
            client.close()
        elif sock is not None:
            sock.close()
    except OSError:
        pass


def _short(reply: bytes | None) -> str:
    return reply.decode("utf-8", "replace").splitlines()[0][:80] if reply else ""
