"""Time in one place: rate limits, retry back-off, durations and dates people type; injectable clocks."""

from __future__ import annotations

import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from xoromail_cli.errors import UsageError

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$", re.I)
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.I)
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def now() -> datetime:
    """The current time in UTC: the ledger and its readers compare only aware times."""
    return datetime.now(UTC)


MIN_RATE_PER_SECOND = 1 / 3600
MAX_DURATION = timedelta(days=3660)


PACING_NOTICE_AFTER = 10 * 60.0
"""A batch the pace stretches past this many seconds gets a notice before it starts."""


def pacing_notice(messages: int, per_second: float | None, source: str, per_hour: int | None = None) -> str | None:
    """Say up front how long the pace makes a batch (10,000 rows at 30 a minute ≈ 5.5 h), so nobody thinks
    a run that takes hours is hung; `source` says whose pace it is ("Office 365's published limit"). With an
    hourly cap each full hour's worth waits out its hour, the rest goes at the pace."""
    if not per_second or messages < 2:
        return None
    gaps = messages - 1
    full_hours, gaps = divmod(gaps, per_hour) if per_hour else (0, gaps)
    seconds = full_hours * 3600.0 + gaps / per_second
    if seconds < PACING_NOTICE_AFTER:
        return None
    hours = seconds / 3600
    length = f"about {hours:.1f} h" if hours >= 1 else f"about {seconds / 60:.0f} min"
    pace = f"{per_second * 60:.3g} a minute" if per_second * 60 >= 1 else f"{per_second * 3600:.3g} an hour"
    if per_hour:
        pace += f" and {per_hour:,} an hour"
    return (f"pacing: {messages:,} messages at {pace} ({source}) take {length}; "
            "the run keeps to that pace")


def parse_rate(text: str) -> float:
    """`30/min`, `2/s`, `1000/h` or a bare number (per minute) → messages per second."""
    match = _RATE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"rate {text!r} is not like 30/min", "write N/s, N/min or N/h")
    unit = (match.group(2) or "min").lower()
    per_second = float(match.group(1)) / _UNIT_SECONDS[unit]
    if per_second < MIN_RATE_PER_SECOND:
        raise UsageError(f"rate {text!r} is slower than one message an hour", "e.g. 30/min or 1/h")
    return per_second


def parse_duration(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `2w` → a timedelta (at most about ten years)."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"duration {text!r} is not like 7d", "write a number and s, m, h, d or w, e.g. 7d")
    seconds = float(match.group(1)) * _DURATION_SECONDS[match.group(2).lower()]
    if seconds > MAX_DURATION.total_seconds():
        raise UsageError(f"duration {text!r} is longer than ten years", "e.g. 7d or 30d")
    return timedelta(seconds=seconds)


@dataclass(kw_only=True)
class RateLimiter:
    """Spaces messages evenly so a provider's per-minute limit is never hit: a total over every connection that
    shares it (slots are taken under a lock, the sleeping happens outside it). `per_hour` caps any hour on top:
    a message past the cap waits until the oldest of the last `per_hour` is an hour old."""

    per_second: float | None
    per_hour: int | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next: float | None = None
    _held_until: float | None = None
    _recent: deque[float] = field(default_factory=deque, repr=False, compare=False)
    """When the slots of the last hour were taken, oldest first (kept only with `per_hour`)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def wait(self) -> float:
        """Sleep until the next message may go; returns the seconds waited."""
        with self._lock:
            now = self.clock()
            start = max(now, self._held_until or now)
            if self.per_second:
                start = max(start, self._next or start)
            start = self._hour_slot(start)
            if self.per_second:
                self._next = start + 1.0 / self.per_second
        delay = start - now
        if delay > 0:
            self.sleep(delay)
        return max(delay, 0.0)

    def try_take(self) -> bool:
        """Take the next slot only if it is due now (a message pipelined ahead never goes early)."""
        with self._lock:
            now = self.clock()
            if self._held_until is not None and self._held_until > now:
                return False
            if self.per_second and self._next is not None and self._next > now:
                return False
            if not self._hour_free(now):
                return False
            self._hour_slot(now)
            if self.per_second:
                self._next = now + 1.0 / self.per_second
            return True

    def _hour_free(self, now: float) -> bool:
        """Whether the hourly cap lets a message go now (call under the lock)."""
        if not self.per_hour:
            return True
        while self._recent and self._recent[0] <= now - 3600.0:
            self._recent.popleft()
        return len(self._recent) < self.per_hour and (not self._recent or self._recent[-1] <= now)

    def _hour_slot(self, start: float) -> float:
        """The earliest time from `start` the hourly cap allows, taken (call under the lock)."""
        if not self.per_hour:
            return start
        if self._recent:
            start = max(start, self._recent[-1])  # slots stay in order
        while self._recent and self._recent[0] <= start - 3600.0:
            self._recent.popleft()
        while len(self._recent) >= self.per_hour:
            start = max(start, self._recent.popleft() + 3600.0)
        self._recent.append(start)
        return start

    def hold(self, seconds: float) -> None:
        """No message before `seconds` from now, on any connection (a server's Retry-After, a 429)."""
        with self._lock:
            until = self.clock() + seconds
            self._held_until = max(until, self._held_until or until)


@dataclass
class Backoff:
    """Exponential back-off with full jitter, capped (AWS architecture blog's 'full jitter')."""

    base: float = 2.0
    cap: float = 120.0
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        ceiling = min(self.cap, self.base * 2.0 ** attempt)
        return ceiling / 2 + self.rng.uniform(0.0, ceiling / 2)

    def pause(self, attempt: int, at_least: float | None = None) -> float:
        """Wait before retry `attempt`; never less than a server's own Retry-After (capped)."""
        seconds = self.delay(attempt)
        if at_least is not None:
            seconds = max(seconds, min(at_least, self.cap))
        if seconds > 0:
            self.sleep(seconds)
        return seconds


def parse_since(text: str) -> datetime:
    """`2026-11-01`, `2026-11-01T08:00`, or a duration back from now such as `7d` or `12h`."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            return now() - parse_duration(text)
        except UsageError:
            raise UsageError(f"--since {text!r} is neither a date nor a duration",
                             "e.g. --since 2026-11-01 or --since 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
