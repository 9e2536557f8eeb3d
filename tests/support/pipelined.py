"""aiosmtpd servers that advertise PIPELINING (as Postfix, Exchange Online and Gmail do), and a wire counter.

aiosmtpd already reads pipelined commands in order (it processes its input line by line); it only does not
announce the extension, so these handlers add `250-PIPELINING` to the EHLO reply, as real servers send it.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from xoromail_cli.local.sink import CaptureHandler


async def advertise(responses: list[str]) -> list[str]:
    return [*responses[:-1], "250-PIPELINING", responses[-1]]


class Pipelining(CaptureHandler):
    """Keeps every message and announces PIPELINING. With `gather`, the first MAIL FROM of a session waits (up
    to 10 s) until that many sessions have said EHLO, so a parallel run provably uses them all at once."""

    def __init__(self, gather: int = 0) -> None:
        super().__init__()
        self.gather = gather
        self.sessions: set[object] = set()
        self._gathered: asyncio.Event | None = None

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        self.sessions.add(tuple(session.peer))
        if self.gather and len(self.sessions) >= self.gather:
            self._event().set()
        return await advertise(responses)

    def _event(self) -> asyncio.Event:
        self._gathered = self._gathered or asyncio.Event()
        return self._gathered

    async def _gather(self) -> None:
        if self.gather:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._event().wait(), 10.0)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        await self._gather()
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Sender OK"


class Scripted(Pipelining):
    """Answers the n-th MAIL FROM or end of data (counted over the whole server), or the first RCPT TO of an
    address, as told.

    A reply of "drop" hangs up without answering; a 421 is sent and then the connection is closed, as a
    server that is shutting down does. Everything else is answered normally.
    """

    def __init__(self, mail: dict[int, str] | None = None, rcpt: dict[str, str] | None = None,
                 data: dict[int, str] | None = None, delay: float = 0.0, gather: int = 0) -> None:
        super().__init__(gather)
        self.mail_script, self.rcpt_script, self.data_script = mail or {}, rcpt or {}, data or {}
        self.delay = delay
        self.mails = self.datas = 0

    async def _answer(self, server: Any, reply: str | None) -> str | None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if reply == "drop":
            server.transport.abort()
            return "451 4.3.0 dropped"  # never reaches the client
        if reply is not None and reply.startswith("421"):
            await server.push(reply)
            server.transport.close()
        return reply

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        await self._gather()
        self.mails += 1
        reply = await self._answer(server, self.mail_script.get(self.mails))
        if reply is not None:
            return reply
        envelope.mail_from = address
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        reply = await self._answer(server, self.rcpt_script.pop(address, None))
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.datas += 1
        reply = await self._answer(server, self.data_script.get(self.datas))
        if reply is not None:
            return reply
        return await super().handle_DATA(server, session, envelope)


class WireCounter:
    """A TCP relay on 127.0.0.1 that counts the client's *flights*: writes it makes after hearing the server.

    A lock-step client makes four per message (MAIL, RCPT, DATA, the message); a pipelining one about one.
    It counts bytes, not time, so it works through TLS too.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.flights = 0
        self._last = "server"
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._closed = False

    def start(self) -> WireCounter:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            for source, sink, side in ((client, server, "client"), (server, client, "server")):
                thread = threading.Thread(target=self._pump, args=(source, sink, side), daemon=True)
                thread.start()
                self._threads.append(thread)

    def _pump(self, source: socket.socket, sink: socket.socket, side: str) -> None:
        while True:
            try:
                chunk = source.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                for sock in (source, sink):
                    with suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return
            with self._lock:
                if side == "client" and self._last == "server":
                    self.flights += 1
                self._last = side
                try:
                    sink.sendall(chunk)
                except OSError:
                    return

    def stop(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in self._sockets:
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)


@contextmanager
def wire_counter(target_port: int) -> Iterator[WireCounter]:
    counter = WireCounter(target_port).start()
    try:
        yield counter
    finally:
        counter.stop()
