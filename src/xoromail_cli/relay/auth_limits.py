"""Password guessing made slow and loud once: failed logins counted per client address, across connections.

An address (for IPv6 its /64: `limits.client_key`) may fail `failures` times within `window` seconds; the
next failure throttles it: every AUTH from it is answered `454 4.7.0` (without looking at the password, so a
right guess teaches nothing) for `backoff` seconds, twice as long at each further throttling, up to
`max_backoff`. A success clears the address. The log gets one `auth-refused` line per failure (with `ip=`,
which a fail2ban filter reads) until the address is throttled, then one `auth-throttled` line per throttling
window. The clock is injected, so the tests step it instead of waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from xoromail_cli.errors import ConfigError
from xoromail_cli.relay.delivery import event_line
from xoromail_cli.relay.limits import client_key

MIN_PASSWORD = 16
"""Characters a relay password must have at least (the generated one has 24)."""
THROTTLED_REPLY = "454 4.7.0 Too many failed logins from {ip}; try again in {seconds} s"


def check_password_strength(password: str) -> None:
    """Refuse a relay password a guesser could find: on a public address every character counts."""
    if len(password) < MIN_PASSWORD or len(set(password)) < 6:
        raise ConfigError(f"the relay password has {len(password)} characters ({len(set(password))} different); "
                          f"the relay needs at least {MIN_PASSWORD}, not all alike",
                          "let the relay generate one (start it once at a terminal without --password-stdin after "
                          "`xoromail disconnect`), or pipe in a long random one: "
                          "python3 -c 'import secrets; print(secrets.token_urlsafe(18))'")


@dataclass
class _Address:
    failures: list[float] = field(default_factory=list)
    strikes: int = 0
    """Throttlings so far: each doubles the next back-off."""
    until: float = 0.0
    refused_while_throttled: int = 0


@dataclass(frozen=True, kw_only=True)
class AuthPolicy:
    failures: int = 5
    window: float = 60.0
    backoff: float = 60.0
    max_backoff: float = 3600.0
    forget_after: float = 86400.0
    """An address quiet this long starts again from nothing (its strikes are forgotten)."""


class AuthGuard:
    """Counts failed logins per client address; asked before and told after each AUTH."""

    MAX_ADDRESSES = 100_000
    """Addresses remembered at most (a scan from many addresses cannot grow memory without end)."""

    def __init__(self, log: Callable[[str], None], policy: AuthPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.policy, self.clock = log, policy or AuthPolicy(), clock
        self._addresses: dict[str, _Address] = {}

    def throttled(self, ip: str) -> str | None:
        """The 454 reply while `ip` is throttled (counted, not logged), else None."""
        entry = self._addresses.get(client_key(ip))
        now = self.clock()
        if entry is None or now >= entry.until:
            return None
        entry.refused_while_throttled += 1
        return THROTTLED_REPLY.format(ip=ip, seconds=max(1, round(entry.until - now)))

    def succeeded(self, ip: str) -> None:
        self._addresses.pop(client_key(ip), None)

    def failed(self, ip: str, peer: str, mechanism: str) -> str | None:
        """Count a failure; log it. Returns the 454 reply when this failure throttles the address."""
        now = self.clock()
        entry = self._entry(client_key(ip), now)
        entry.failures = [moment for moment in entry.failures if now - moment < self.policy.window]
        entry.failures.append(now)
        if len(entry.failures) <= self.policy.failures:
            self.log(event_line("auth-refused", ip=ip, peer=peer, mechanism=mechanism,
                                failures=len(entry.failures)))
            return None
        entry.strikes += 1
        seconds = min(self.policy.max_backoff, self.policy.backoff * 2 ** (entry.strikes - 1))
        entry.until, entry.failures = now + seconds, []
        self.log(event_line("auth-throttled", ip=ip, peer=peer, seconds=int(seconds), strikes=entry.strikes,
                            refused_meanwhile=entry.refused_while_throttled or None))
        entry.refused_while_throttled = 0
        return THROTTLED_REPLY.format(ip=ip, seconds=int(seconds))

    def _entry(self, key: str, now: float) -> _Address:
        entry = self._addresses.get(key)
        if entry is not None and now - max(entry.until, *entry.failures, 0.0) > self.policy.forget_after:
            entry = None
        if entry is None:
            if len(self._addresses) >= self.MAX_ADDRESSES:
                self._forget_oldest(now)
            entry = self._addresses[key] = _Address()
        return entry

    def _forget_oldest(self, now: float) -> None:
        """Drop addresses not throttled now, oldest first (dicts keep insertion order)."""
        for ip in list(self._addresses)[: self.MAX_ADDRESSES // 10]:
            if self._addresses[ip].until <= now:
                del self._addresses[ip]
