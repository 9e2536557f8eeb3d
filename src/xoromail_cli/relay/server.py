"""The relay's listener: its own accept loop in front of aiosmtpd sessions, on an event loop in a thread.

Accepting here rather than in asyncio's server lets the relay turn a client away before a session exists
(`--allow-ip`, too many connections in all or from one address: one reply, one log line per interval) and
survive the file-descriptor limit (a spare descriptor is given up to answer `421` and close, and the log gets
one line per interval instead of a traceback per attempt). Sessions are `session.RelaySMTP`; the hooks are
`handler.RelayHandler`. Listening off loopback needs STARTTLS with the user's certificate (AUTH is refused
before it); `reload_tls` gives new sessions a certificate read again (SIGHUP).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hmac
import os
import socket
import ssl
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from xoromail_cli.errors import ConfigError, UnavailableError, UsageError
from xoromail_cli.relay.auth_limits import AuthGuard
from xoromail_cli.relay.delivery import event_line
from xoromail_cli.relay.handler import EventLog, RelayHandler, peer_of
from xoromail_cli.relay.limits import COMMAND_CALLS, DEFAULT_MAX_SIZE, ConnectionGate, SessionLimits, plain_ip
from xoromail_cli.relay.tls import TLSFiles, tls_context
from xoromail_cli.services.network import is_loopback

__all__ = ["DEFAULT_LISTEN", "MAX_MESSAGE", "RelayCredential", "RelayHandler", "RelayServer", "is_loopback",
           "parse_listen", "tls_context"]
DEFAULT_LISTEN = "127.0.0.1:2525"
MAX_MESSAGE = DEFAULT_MAX_SIZE
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


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

    def login(self, user: bytes, password: bytes) -> str | None:
        """The login's name when the pair matches (as `users.LoginTable.login` answers for several)."""
        return self.user if self.matches(user, password) else None


class Logins(Protocol):
    """Who may log in: one `RelayCredential`, or the office's `users.LoginTable`."""

    def login(self, user: bytes, password: bytes) -> str | None: ...


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:2525` for IPv6) → (host, port)."""
    host, separator, port = value.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not separator or not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen {value!r} is not HOST:PORT", f"e.g. --listen {DEFAULT_LISTEN}")
    return host, int(port)


def _authenticator(credential: Logins, guard: AuthGuard) -> Callable[..., Any]:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        ip = getattr(server, "ip", "?")
        throttled = guard.throttled(ip)  # AUTH LOGIN begun before the address was throttled: not looked at
        if throttled is not None:
            return AuthResult(success=False, handled=False, message=throttled)
        name = credential.login(auth_data.login, auth_data.password) if isinstance(auth_data, LoginPassword) else None
        if name is not None:
            guard.succeeded(ip)
            return AuthResult(success=True, auth_data=name)
        throttled = guard.failed(ip, peer_of(session), mechanism)
        return AuthResult(success=False, handled=False,
                          message=throttled or "535 5.7.8 Authentication credentials invalid")

    return authenticate


class RelayServer:
    """The listening socket, its accept loop and aiosmtpd's sessions, on an event loop in a thread."""

    def __init__(self, handler: RelayHandler, credential: Logins, host: str, port: int, *,
                 tls: ssl.SSLContext | None, limits: SessionLimits | None = None, tls_files: TLSFiles | None = None,
                 guard: AuthGuard | None = None, service: str = "the mail service") -> None:
        self.handler, self.credential, self.host, self.port, self.tls = handler, credential, host, port, tls
        self.limits, self.tls_files, self.service = limits or SessionLimits(), tls_files, service
        self.guard = guard or AuthGuard(handler.log)
        self.gate = ConnectionGate(limits=self.limits, log=handler.log)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._sessions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._spare: int | None = None
        self.advice: str | None = None

    @property
    def log(self) -> EventLog:
        return self.handler.log

    def set_max_size(self, size: int, service: str | None = None, advice: str | None = None) -> None:
        """The largest message the service takes, as learned: what new sessions advertise in SIZE; `advice`
        is what lifts it, said in the 552 (Graph: the permission Mail.ReadWrite)."""
        self.limits = replace(self.limits, max_size=size)
        self.gate.limits = self.limits
        self.service = service or self.service
        self.advice = advice

    @property
    def alive(self) -> bool:
        """The event loop still runs (the systemd watchdog is fed only while it does)."""
        return self._thread is not None and self._thread.is_alive()

    def reload_tls(self) -> bool:
        """Read the certificate and key again (SIGHUP); new sessions get them, the old context stays on error."""
        if self.tls_files is None:
            return False
        try:
            self.tls = self.tls_files.load()
        except ConfigError as error:
            self.log(event_line("tls-reload-failed", reason=error.message, hint=error.hint))
            return False
        self.log(event_line("tls-reloaded", cert=self.tls_files.cert))
        return True

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # `[::]` is every address, IPv4 ones too (seen as ::ffff:a.b.c.d, counted and logged as a.b.c.d):
        # a name with A and AAAA records then reaches the relay either way
        both = self.host == "::" and socket.has_dualstack_ipv6()
        try:
            sock = socket.create_server((self.host, self.port), family=family, backlog=128, dualstack_ipv6=both)
            # Replies go out line by line (EHLO's are six lines, each its own write): without TCP_NODELAY the
            # second waits for the ERP's delayed ACK, 40 ms per EHLO. asyncio sets it only on sockets it makes
            # itself; connections accepted here inherit it from the listening socket.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            raise UnavailableError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                                   "choose another --listen port, or stop what already uses it") from None
        sock.setblocking(False)
        return sock

    def start(self) -> RelayServer:
        import logging
        import warnings

        logging.getLogger("mail.log").setLevel(logging.CRITICAL)  # aiosmtpd's own lines would repeat ours
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")  # loopback only
        self._sock = self._bind()
        self.port = int(self._sock.getsockname()[1])
        self._spare = os.open(os.devnull, os.O_RDONLY)
        loop = self._loop = asyncio.new_event_loop()
        self._slots = asyncio.Semaphore(self.limits.in_data)
        self._authenticate = _authenticator(self.credential, self.guard)
        self._acceptor = loop.create_task(self._accept_loop(self._sock))
        self._thread = threading.Thread(target=loop.run_forever, name="relay-smtp", daemon=True)
        self._thread.start()
        return self

    def _session(self, ip: str) -> Any:
        from xoromail_cli.relay.session import RelaySMTP

        session = RelaySMTP(self.handler, limits=self.limits, guard=self.guard, gate=self.gate, slots=self._slots,
                            ip=ip, service=self.service, advice=self.advice, hostname="xoromail-relay",
                            ident="xoromail relay",
                            tls_context=self.tls, require_starttls=self.tls is not None, auth_required=True,
                            auth_require_tls=self.tls is not None, authenticator=self._authenticate,
                            command_call_limit=COMMAND_CALLS, loop=self._loop)
        self._sessions.add(session)
        return session

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, address = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno not in _OUT_OF_DESCRIPTORS:
                    self.log(event_line("accept-failed", reason=exc.strerror or type(exc).__name__))
                    await asyncio.sleep(0.1)
                    continue
                self.gate.out_of_descriptors(exc.strerror or "EMFILE")
                self._turn_away_one(sock)
                await asyncio.sleep(0.05)
                continue
            ip = plain_ip(str(address[0]))
            refusal = self.gate.admit(ip)
            if refusal is not None:
                _refuse(conn, refusal)
                continue
            try:
                await loop.connect_accepted_socket(functools.partial(self._session, ip), conn)
            except OSError:
                self.gate.release(ip)
                conn.close()

    def _turn_away_one(self, sock: socket.socket) -> None:
        """At the descriptor limit: free the spare, accept one waiting client, tell it 421, close, re-arm."""
        if self._spare is None:
            return
        os.close(self._spare)
        self._spare = None
        try:
            conn, _ = sock.accept()
            _refuse(conn, "421 4.3.2 The relay is out of resources; try again later")
        except OSError:
            pass
        with contextlib.suppress(OSError):
            self._spare = os.open(os.devnull, os.O_RDONLY)

    async def _close(self, sock: socket.socket, grace: float) -> None:
        """Stop accepting, let busy sessions finish for `grace` seconds, then say goodbye to the rest."""
        loop = asyncio.get_running_loop()
        if self._acceptor is not None:
            self._acceptor.cancel()
        sock.close()
        deadline = loop.time() + grace
        while self.handler.busy and loop.time() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)  # the last answers leave the socket
        for session in list(self._sessions):
            if session.transport is not None:
                with contextlib.suppress(Exception):  # a client that already went away
                    session.transport.write(b"421 4.3.2 xoromail relay shutting down; try again later\r\n")
                session.transport.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def stop(self, grace: float = 10.0) -> None:
        """Stop accepting; sessions in progress get `grace` seconds to finish their message."""
        loop, thread, sock = self._loop, self._thread, self._sock
        if loop is None or thread is None or sock is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(sock, grace), loop).result(grace + 5)
        except (TimeoutError, RuntimeError):
            self.log(event_line("stop-timeout", seconds=grace + 5))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()
        if self._spare is not None:
            os.close(self._spare)
        self._loop = self._thread = self._sock = self._spare = None


def _refuse(conn: socket.socket, reply: str) -> None:
    """One reply to a client turned away, without waiting on it, then close."""
    with contextlib.suppress(OSError):
        conn.setblocking(False)
        conn.send(reply.encode("ascii") + b"\r\n")
    conn.close()
