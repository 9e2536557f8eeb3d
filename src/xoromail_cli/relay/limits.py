"""Who may connect to the relay and how much each may take: the limits a public listener needs.

Each limit protects the ERP's own submissions from what another client (or an attacker) does:
`max_connections` and `per_address` keep file descriptors for the ERP, `login_within` ends connections
that never log in (a scanner holding sockets open), `idle` ends forgotten sessions, `in_data` bounds the
memory of messages being received at once, `max_recipients` and `max_size` refuse at the door what the
service would refuse after the 250, `max_line` bounds one line kept in memory. `allow` (`--allow-ip`) lets
only the ERP's addresses in at all.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from xoromail_cli.errors import UsageError
from xoromail_cli.relay.delivery import event_line

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_MAX_SIZE = 35 * 1024 * 1024
"""Bytes of one message until the service's own maximum is known (Gmail's API takes 35 MB)."""
DEFAULT_RECIPIENTS = 100
"""RCPT per message when the provider's cap is unknown (Gmail, Microsoft 365 and Exchange take more)."""
PROVIDER_RECIPIENTS = (("Exchange Online", 500), ("Microsoft 365", 500), ("Google", 100), ("Gmail", 100))
"""Recipients a message, by the provider's label (provider facts: Exchange Online and Graph 500, Google
Workspace 100 through the API or SMTP)."""
COMMAND_CALLS = {"AUTH": 3, "EHLO": 5, "HELO": 5, "STARTTLS": 2, "VRFY": 3, "EXPN": 3, "HELP": 5, "*": 100_000}
"""aiosmtpd's `command_call_limit` per connection: three logins, then `421 4.7.0` and the connection ends.
NOOP and RSET are counted per message instead (`PER_MESSAGE_CALLS`)."""
PER_MESSAGE_CALLS = {"NOOP": 100, "RSET": 100}
"""NOOP and RSET between two accepted messages (`RelaySMTP`): a connection pool (JavaMail's, Spring's) checks
its connection with one before each message, so a per-connection count would cut it after a hundred
messages; a connection that only sends these is still ended with `421 4.7.0`."""


@dataclass(frozen=True, kw_only=True)
class SessionLimits:
    max_connections: int = 100
    per_address: int = 10
    login_within: float = 30.0
    """Seconds a connection has to log in (STARTTLS, EHLO and AUTH take an ERP well under one)."""
    idle: float = 300.0
    """Seconds a logged-in connection may wait between commands."""
    in_data: int = 4
    """Messages being received at once; a further DATA waits for its turn (up to `data_wait` seconds)."""
    data_wait: float = 60.0
    max_recipients: int = DEFAULT_RECIPIENTS
    max_size: int = DEFAULT_MAX_SIZE
    max_line: int = 256 * 1024
    """Octets of one line (RFC 5321 says 1,000; Postfix and Exim take longer ones, and so does the relay)."""
    max_header: int = 512 * 1024
    """Octets of the header section (a To folded over many lines is parsed once, within this)."""
    allow: tuple[Network, ...] = ()
    """Networks that may connect (`--allow-ip`); empty: any."""


def recipient_cap(provider_label: str | None) -> int:
    """The provider's own cap on recipients a message, or `DEFAULT_RECIPIENTS` when it is not known."""
    for name, cap in PROVIDER_RECIPIENTS:
        if provider_label and name in provider_label:
            return cap
    return DEFAULT_RECIPIENTS


def parse_networks(values: list[str] | None) -> tuple[Network, ...]:
    """`--allow-ip` values: an address or a CIDR block, IPv4 or IPv6."""
    networks = []
    for value in values or ():
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise UsageError(f"--allow-ip {value!r} is not an IP address or CIDR block",
                             "e.g. --allow-ip 203.0.113.0/24 --allow-ip 2001:db8::/32") from None
    return tuple(networks)


def plain_ip(host: str) -> str:
    """The client's address as it is logged and counted (`::ffff:192.0.2.1` is 192.0.2.1)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def client_key(ip: str) -> str:
    """What the per-address limits count by: an IPv4 address, or an IPv6 address's /64 (one subscriber's
    network: counting each of its 2^64 addresses apart would give an attacker as many guesses and places)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return ip


class QuietLog:
    """One log line per key and interval; the repeats are counted into the next line."""

    def __init__(self, log: Callable[[str], None], interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.interval, self.clock = log, interval, clock
        self._last: dict[str, tuple[float, int]] = {}

    def __call__(self, key: str, kind: str, **fields: object) -> None:
        now = self.clock()
        last, repeats = self._last.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            self._last[key] = (last, repeats + 1)
            return
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[key] = (now, 0)
        self.log(event_line(kind, **fields, repeats=repeats or None))


@dataclass(kw_only=True)
class ConnectionGate:
    """Counts connections in all and per address; says who is turned away and why (one line per interval)."""

    limits: SessionLimits
    log: Callable[[str], None]
    clock: Callable[[], float] = time.monotonic
    open: dict[str, int] = field(default_factory=dict)
    total: int = 0

    def __post_init__(self) -> None:
        self.quiet = QuietLog(self.log, clock=self.clock)

    def admit(self, ip: str) -> str | None:
        """None (and the connection counted) or the reply that turns it away."""
        if self.limits.allow and not self._allowed(ip):
            self.quiet(f"allow:{ip}", "refused-ip", ip=ip)
            return "554 5.7.1 This relay does not accept connections from your address"
        if self.total >= self.limits.max_connections:
            self.quiet("total", "too-many-connections", ip=ip, open=self.total)
            return "421 4.7.0 Too many connections; try again later"
        key = client_key(ip)
        if self.open.get(key, 0) >= self.limits.per_address:
            self.quiet(f"address:{key}", "too-many-connections", ip=ip, open=self.open[key])
            return "421 4.7.0 Too many connections from your address; try again later"
        self.open[key] = self.open.get(key, 0) + 1
        self.total += 1
        return None

    def release(self, ip: str) -> None:
        key = client_key(ip)
        count = self.open.get(key, 0) - 1
        if count > 0:
            self.open[key] = count
        else:
            self.open.pop(key, None)
        self.total = max(0, self.total - 1)

    def out_of_descriptors(self, reason: str) -> None:
        self.quiet("descriptors", "out-of-descriptors", reason=reason,
                   hint="raise LimitNOFILE, or lower --max-connections")

    def _allowed(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address.version == network.version and address in network for network in self.limits.allow)
