"""One SMTP connection to the relay: aiosmtpd's `SMTP`, with the limits a public listener needs.

What the subclass adds to aiosmtpd (imported only when the relay starts):
- a connection must log in within `login_within` seconds; after that `idle` applies (aiosmtpd's timeout);
- AUTH from a throttled address is answered `454 4.7.0` before any credential is read (`AuthGuard`);
- DATA is read here, not by aiosmtpd: lines up to `max_line` (Postfix and Exim take lines over 1,000 octets,
  and bare-LF messages are one "line" to a CRLF reader), the size counted as it comes (a message over the
  service's maximum is drained and answered `552 5.3.4`, never kept), at most `in_data` messages at once;
  only `<CRLF>.<CRLF>` ends the data (no `\\n.\\n` smuggling);
- NOOP and RSET are counted per accepted message, not per connection (`PER_MESSAGE_CALLS`): a pooled client
  may check its connection before each message; AUTH keeps aiosmtpd's per-connection count;
- a failed STARTTLS handshake is logged with the peer and what the client offered, and no exception text
  reaches a client (`451`, the type in the log).
"""

from __future__ import annotations

import asyncio
import re
import ssl
from typing import Any

from aiosmtpd.smtp import SMTP, TLSSetupException

from xoromail_cli.relay.auth_limits import AuthGuard
from xoromail_cli.relay.delivery import event_line
from xoromail_cli.relay.limits import PER_MESSAGE_CALLS, ConnectionGate, SessionLimits, plain_ip
from xoromail_cli.relay.tls import describe_handshake_failure

_LINE_BREAK = re.compile(rb"[\r\n]")
TOO_LARGE = "552 5.3.4 The message is larger than the {limit:,} bytes {service} takes; {advice}"
SMALLER = "send it smaller"
_REWORDED = {
    "552 Error: message size exceeds fixed maximum message size": TOO_LARGE,
    "552 Error: Too much mail data": TOO_LARGE,
}


def longest_line(current: int, chunk: bytes) -> tuple[int, int]:
    """(the longest line seen in `chunk`, the length of the line still open after it), given the open one."""
    parts = _LINE_BREAK.split(chunk)
    if len(parts) == 1:
        return current + len(chunk), current + len(chunk)
    longest = max(current + len(parts[0]), *(len(part) for part in parts[1:]))
    return longest, len(parts[-1])


class RelaySMTP(SMTP):
    def __init__(self, handler: Any, *, limits: SessionLimits, guard: AuthGuard, gate: ConnectionGate,
                 slots: asyncio.Semaphore, ip: str, service: str, advice: str | None = None,
                 **options: Any) -> None:
        self.line_length_limit = limits.max_line  # read by aiosmtpd's __init__ (the StreamReader's limit)
        self.limits, self.guard, self.gate, self.slots, self.ip, self.service = (limits, guard, gate, slots, ip,
                                                                                 service)
        self.advice = advice or SMALLER
        """What lifts the limit, said in the 552 (the transport's `size_hint`), else "send it smaller"."""
        self._released = False
        self._data_seen = 0.0
        self._login_timer: asyncio.TimerHandle | None = None
        self._calls = dict(PER_MESSAGE_CALLS)
        """What is left of NOOP's and RSET's budget until the next accepted message."""
        super().__init__(handler, data_size_limit=limits.max_size, timeout=limits.idle, **options)

    # --- connection ---------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._login_timer is None
        super().connection_made(transport)
        if first:  # not the second call, after STARTTLS
            # never after aiosmtpd's idle timeout: that one cannot end a connection stalled in the TLS handshake
            self._login_timer = self.loop.call_later(min(self.limits.login_within, self.limits.idle),
                                                     self._login_late)

    def connection_lost(self, error: Exception | None) -> None:
        if self._login_timer is not None:
            self._login_timer.cancel()
        if not self._released:
            self._released = True
            self.gate.release(self.ip)
        super().connection_lost(error)

    def _login_late(self) -> None:
        transport: Any = self.transport
        if self.session is None or self.session.authenticated or transport is None:
            return
        self.gate.quiet(f"login:{self.ip}", "login-timeout", ip=self.ip,
                        seconds=int(min(self.limits.login_within, self.limits.idle)))
        original: Any = self._original_transport
        if original is not None and self.session.ssl is None:
            # in the STARTTLS handshake: asyncio's TLS layer would not pass the end of the connection on
            # (the session, its task and its place among the connections would stay for good)
            original.abort()
            self.connection_lost(None)
            return
        transport.write(b"421 4.4.2 No login within the time allowed; closing\r\n")
        transport.close()

    def handler_log(self, line: str) -> None:
        self.gate.log(line)

    async def push(self, status: Any) -> None:
        if isinstance(status, str) and status in _REWORDED:
            status = _REWORDED[status].format(limit=self.limits.max_size, service=self.service, advice=self.advice)
        await super().push(status)

    async def handle_exception(self, error: Exception) -> str:
        """Never a library's text to the client: a failed handshake, or an unexpected error, by its type."""
        if isinstance(error, TLSSetupException):
            cause = error.__cause__
            reason, offered = describe_handshake_failure(cause if isinstance(cause, ssl.SSLError) else None)
            # one line per address, reason and minute: a scanner failing handshakes in a loop fills no disk
            self.gate.quiet(f"tls:{self.ip}:{reason}", "tls-failed", ip=self.ip, peer=self.peer_text, reason=reason,
                            offered=offered)
            return "454 4.7.0 TLS not available"
        self.handler_log(event_line("session-error", ip=self.ip, peer=self.peer_text, cause=type(error).__name__))
        return "451 4.3.0 The relay could not handle that command; try again"

    @property
    def peer_text(self) -> str:
        peer: Any = self.session.peer if self.session is not None else None
        return f"{plain_ip(str(peer[0]))}:{peer[1]}" if isinstance(peer, tuple) else "?"

    # --- AUTH ----------------------------------------------------------------------------------------------

    async def smtp_AUTH(self, arg: str) -> None:
        refusal = self.guard.throttled(self.ip)
        if refusal is not None:
            await self.push(refusal)
            return
        await super().smtp_AUTH(arg)
        if self.session is not None and self.session.authenticated and self._login_timer is not None:
            self._login_timer.cancel()

    # --- NOOP and RSET, counted per message -------------------------------------------------------------------

    async def _spend(self, command: str) -> bool:
        """One of `command`'s calls until the next accepted message; over the budget, 421 and the end."""
        left = self._calls[command]
        if left < 1:
            self.gate.quiet(f"calls:{self.ip}:{command}", "too-many-commands", ip=self.ip, peer=self.peer_text,
                            command=command, limit=PER_MESSAGE_CALLS[command])
            await self.push(f"421 4.7.0 {command} sent too many times without a message; closing")
            transport: Any = self.transport
            if transport is not None:
                transport.close()
            return False
        self._calls[command] = left - 1
        return True

    async def smtp_NOOP(self, arg: str) -> None:
        if await self._spend("NOOP"):
            await super().smtp_NOOP(arg)

    async def smtp_RSET(self, arg: str) -> None:
        if await self._spend("RSET"):
            await super().smtp_RSET(arg)

    # --- DATA ----------------------------------------------------------------------------------------------

    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 5.5.1 Error: need RCPT command")
            return
        if arg:
            await self.push("501 5.5.4 Syntax: DATA")
            return
        try:
            await asyncio.wait_for(self.slots.acquire(), self.limits.data_wait)
        except TimeoutError:
            await self.push("452 4.3.1 The relay is taking in too many messages at once; try again shortly")
            return
        try:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            content, refusal = await self._read_data()
            if refusal is not None:
                self.envelope = self._create_envelope()
                await self.push(refusal)
                return
            # a bytearray, not copied into bytes: the handler makes the one copy it keeps
            self.envelope.content = self.envelope.original_content = content  # type: ignore[assignment]  # aiosmtpd types it bytes; a bytearray avoids a copy
            del content
            status = await self.event_handler.handle_DATA(self, self.session, self.envelope)
        finally:
            self.slots.release()
        self.envelope = self._create_envelope()
        if isinstance(status, str) and status.startswith("250"):
            self._calls = dict(PER_MESSAGE_CALLS)  # accepted: a pool's next NOOP or RSET is that message's
        await self.push(status)

    async def _read_data(self) -> tuple[bytearray, str | None]:
        """The message up to `<CRLF>.<CRLF>`, dots unstuffed; or a refusal once all of it was read."""
        data = bytearray()
        size = longest = line = 0
        at_start = True
        lines = 0
        self._data_seen = self.loop.time()
        while True:
            lines += 1
            chunk = await self._next_chunk(lines)
            if at_start and chunk == b".\r\n":
                break
            if at_start and chunk[:1] == b".":
                chunk = chunk[1:]
            at_start = chunk.endswith(b"\r\n")
            size += len(chunk)
            seen, line = longest_line(line, chunk)
            longest = max(longest, seen)
            if size <= self.limits.max_size and longest <= self.limits.max_line:
                data += chunk
            elif data:
                data = bytearray()  # refused: nothing more is kept
        if size > self.limits.max_size:
            return bytearray(), TOO_LARGE.format(limit=self.limits.max_size, service=self.service, advice=self.advice)
        if longest > self.limits.max_line:
            return bytearray(), (f"550 5.6.0 A line of the message has {longest:,} octets; the relay takes lines "
                                 f"of up to {self.limits.max_line:,}")
        return data, None  # not copied: the handler makes the one copy it keeps

    async def _next_chunk(self, lines: int) -> bytes:
        """The next line of the data, or a piece of a line longer than the reader's buffer. Now and then it
        lets the other sessions in (readuntil does not yield while lines are buffered), and while data keeps
        coming it restarts aiosmtpd's idle timer, which only commands restart: a message still arriving after
        --idle-timeout seconds (35 MB over a slow line) was cut off without a word."""
        if lines % 512 == 0:
            await asyncio.sleep(0)
        now = self.loop.time()
        if now - self._data_seen > min(1.0, self.limits.idle / 4):
            self._data_seen = now
            self._reset_timeout()
        try:
            return await self._reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as overrun:
            return await self._reader.read(overrun.consumed)
