"""aiosmtpd handlers that misbehave the way real servers do, for fault-injection tests."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

from xoromail_cli.local.sink import CaptureHandler


def delivered(handler: CaptureHandler) -> Counter[str]:
    """How many messages each recipient got from `handler`'s server."""
    return Counter(recipient for message in handler.messages for recipient in message.recipients)


class SlowHandler(CaptureHandler):
    """Takes a few milliseconds per message, so a batch is still running when the test acts."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


class MailFromReply(CaptureHandler):
    """Answers every MAIL FROM with one reply (a provider refusing the sender, or busy)."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        return self.reply


class DataReply(CaptureHandler):
    """Answers every message's DATA with one reply (spam refusals, quotas, temporary trouble)."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return self.reply


class RefuseRecipient(CaptureHandler):
    """Answers 550 5.1.1 for one address, like a server that knows its mailboxes."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address == self.refused:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


class DropAtRcpt(CaptureHandler):
    """Drops the TCP connection at the first RCPT TO, before any message data (a crash mid-envelope)."""

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        server.transport.abort()
        return "421 4.4.2 connection dropped"


class SizeLimit(CaptureHandler):
    """Refuses a message larger than `limit` bytes at the end of DATA with Postfix's reply; keeps the others."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if len(envelope.original_content or b"") > self.limit:
            return "552 5.3.4 Message size exceeds fixed limit"
        return await super().handle_DATA(server, session, envelope)


class Greylist(CaptureHandler):
    """Answers 450 for one address, `times` times (None: until `refused` is cleared), as greylisting does."""

    def __init__(self, refused: str, times: int | None = None,
                 reply: str = "450 4.2.0 Greylisted, try again later") -> None:
        super().__init__()
        self.refused = refused
        self.times = times
        self.reply = reply

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address == self.refused and self.times != 0:
            if self.times is not None:
                self.times -= 1
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"


class FailNth(CaptureHandler):
    """Answers the n-th DATA (counting from 1) with a reply, once."""

    def __init__(self, nth: int, reply: str = "451 4.3.0 Temporary System Problem. Try again later.") -> None:
        super().__init__()
        self.nth = nth
        self.reply = reply
        self.calls = 0
        self._count_lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._count_lock:
            self.calls += 1
            fail = self.calls == self.nth
        if fail:
            return self.reply
        return await super().handle_DATA(server, session, envelope)


class DropNth(FailNth):
    """Drops the TCP connection instead of answering the n-th DATA, as a crashing server would."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._count_lock:
            self.calls += 1
            drop = self.calls == self.nth
        if drop:
            server.transport.abort()
            return "421 4.4.2 connection dropped"
        return await CaptureHandler.handle_DATA(self, server, session, envelope)


class AcceptThenDropNth(FailNth):
    """Keeps the n-th message, then drops the connection before its 250: the client never hears it was accepted."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._count_lock:
            self.calls += 1
            drop = self.calls == self.nth
        reply = await CaptureHandler.handle_DATA(self, server, session, envelope)
        if drop:
            server.transport.abort()
        return reply


class CloseAfterNth(FailNth):
    """Accepts the n-th message, then closes the connection, as a server with an idle limit does."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._count_lock:
            self.calls += 1
            close = self.calls == self.nth
        reply = await CaptureHandler.handle_DATA(self, server, session, envelope)
        if close:
            asyncio.get_running_loop().call_soon(server.transport.close)
        return reply


def connections(handler: CaptureHandler) -> int:
    return len({message.peer for message in handler.messages})


class HeldThirdReply(CaptureHandler):
    """Holds the third message's reply until the test lets it go (`go`); `arrived` is set once its data is in."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived, self.go = threading.Event(), threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if len(self.messages) == 2:
            self.arrived.set()
            while not self.go.is_set():
                await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)
