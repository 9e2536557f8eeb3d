"""The relay's SMTP front (aiosmtpd): AUTH with the relay's own credential, the From policy, then the spool.

The answer to DATA is given only after the spool file is durable: 250 means kept, a 4xx means try again.
Listening off loopback needs STARTTLS with the user's certificate (AUTH is refused before it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import ipaddress
import socket
import ssl
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xoromail_cli.errors import ConfigError, TemporaryError, UnavailableError, UsageError
from xoromail_cli.relay.delivery import event_line
from xoromail_cli.relay.message import Refused, SenderPolicy, accept_message
from xoromail_cli.relay.spool import Spool

EventLog = Callable[[str], None]
"""Takes one log line (no line breaks, no secrets): the CLI writes it to stderr for journald."""
DEFAULT_LISTEN = "127.0.0.1:2525"
MAX_MESSAGE = 35 * 1024 * 1024
"""Bytes of one submitted message: Gmail's API takes 35 MB; smaller services refuse what is larger for good."""


@dataclass(frozen=True)
class RelayCredential:
    """The relay's own login (not the mailbox's): what the ERP is configured with."""

    user: str
    password: str

    def matches(self, user: bytes, password: bytes) -> bool:
        """Both compared in constant time, always both, so timing tells nothing about either."""
        user_ok = hmac.compare_digest(user, self.user.encode("utf-8"))
        password_ok = hmac.compare_digest(password, self.password.encode("utf-8"))
        return user_ok and password_ok


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:2525` for IPv6) → (host, port)."""
    host, separator, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not separator or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {value!r} is not HOST:PORT", f"e.g. --listen {DEFAULT_LISTEN}")
    return host, int(port)


def tls_context(host: str, cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The STARTTLS context from the user's certificate; ConfigError (78) when off loopback without one."""
    if (cert is None) != (key is None):
        raise ConfigError("--tls-cert and --tls-key go together", "give both files (PEM), or neither on loopback")
    if cert is None or key is None:
        if not is_loopback(host):
            raise ConfigError(f"listening on {host} without TLS would carry the relay's password in clear",
                              "listen on 127.0.0.1 (the default), or give --tls-cert and --tls-key (PEM) so that "
                              "clients must use STARTTLS before AUTH")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError(f"cannot use the certificate {cert} with the key {key}: {reason}",
                          "give a PEM certificate (chain) and its unencrypted PEM private key") from None
    return context


def _authenticator(credential: RelayCredential, log: EventLog) -> Callable[..., Any]:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        if isinstance(auth_data, LoginPassword) and credential.matches(auth_data.login, auth_data.password):
            return AuthResult(success=True, auth_data=auth_data.login.decode("utf-8", "replace"))
        log(event_line("auth-refused", peer=_peer(session), mechanism=mechanism))
        return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")

    return authenticate


def _peer(session: Any) -> str:
    peer = getattr(session, "peer", None)
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "?"


class RelayHandler:
    """aiosmtpd hooks: the From policy at MAIL FROM, the spool at DATA."""

    def __init__(self, spool: Spool, policy: SenderPolicy, log: EventLog, on_accepted: Callable[[], None]) -> None:
        self.spool, self.policy, self.log, self.on_accepted = spool, policy, log, on_accepted
        self.busy = 0
        """Messages between the end of DATA and their answer: a stop waits for them."""

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        refusal = self.policy.refuse_sender(address)
        if refusal is not None:
            self.log(event_line("refused", peer=_peer(session), sender=address, reply=refusal))
            return refusal
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        try:
            message = accept_message(bytes(envelope.original_content), envelope.mail_from,
                                     tuple(envelope.rcpt_tos), self.policy)
        except Refused as refused:
            self.log(event_line("refused", peer=_peer(session), sender=envelope.mail_from, reply=refused.reply))
            return refused.reply
        loop = asyncio.get_running_loop()
        self.busy += 1
        try:
            spool_id = await loop.run_in_executor(None, functools.partial(self.spool.put, message,
                                                                          peer=_peer(session)))
        except Exception as error:  # noqa: BLE001  # whatever stops the spool, the answer must be a 4xx, never a 250
            cause = error.message if isinstance(error, TemporaryError) else type(error).__name__
            self.log(event_line("not-kept", peer=_peer(session), message_id=message.message_id, cause=cause))
            return "451 4.3.0 The relay cannot keep the message now; try again later"
        finally:
            self.busy -= 1
        self.log(event_line("accepted", id=spool_id, peer=_peer(session), sender=message.sender,
                            to=len(message.recipients), size=len(message.data), message_id=message.message_id))
        self.on_accepted()
        return f"250 2.0.0 OK queued as {spool_id}"


class RelayServer:
    """The listening socket and aiosmtpd's event loop, in a thread of their own."""

    def __init__(self, handler: RelayHandler, credential: RelayCredential, host: str, port: int, *,
                 tls: ssl.SSLContext | None) -> None:
        self.handler, self.credential, self.host, self.port, self.tls = handler, credential, host, port, tls
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._sessions: weakref.WeakSet[Any] = weakref.WeakSet()

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            sock = socket.create_server((self.host, self.port), family=family)
            # Replies go out line by line (EHLO's are six lines, each its own write): without TCP_NODELAY the
            # second waits for the ERP's delayed ACK, 40 ms per EHLO. asyncio sets it only on sockets it makes
            # itself; connections accepted here inherit it from the listening socket.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            raise UnavailableError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                                   "choose another --listen port, or stop what already uses it") from None

    def start(self) -> RelayServer:
        import logging
        import warnings

        from aiosmtpd.smtp import SMTP

        sock = self._bind()
        self.port = int(sock.getsockname()[1])
        logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # aiosmtpd's own lines would repeat ours
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")  # loopback only
        loop = asyncio.new_event_loop()
        authenticate = _authenticator(self.credential, self.handler.log)

        def factory() -> SMTP:
            session = SMTP(self.handler, hostname="xoromail-relay", ident="xoromail relay",
                           tls_context=self.tls, require_starttls=self.tls is not None, auth_required=True,
                           auth_require_tls=self.tls is not None, authenticator=authenticate,
                           data_size_limit=MAX_MESSAGE, loop=loop)
            self._sessions.add(session)
            return session

        self._server = loop.run_until_complete(loop.create_server(factory, sock=sock))
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="relay-smtp", daemon=True)
        self._thread.start()
        return self

    def stop(self, grace: float = 10.0) -> None:
        """Stop accepting; sessions in progress get `grace` seconds to finish their message."""
        loop, server, thread = self._loop, self._server, self._thread
        if loop is None or server is None or thread is None:
            return

        async def close() -> None:
            server.close()
            deadline = loop.time() + grace
            while self.handler.busy and loop.time() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.1)  # the last answers leave the socket
            for session in list(self._sessions):
                with contextlib.suppress(Exception):  # a client that already went away
                    await session.push("421 4.3.2 xoromail relay shutting down; try again later")
                if session.transport is not None:
                    session.transport.close()
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), loop).result(grace + 5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        self._loop = self._server = self._thread = None
