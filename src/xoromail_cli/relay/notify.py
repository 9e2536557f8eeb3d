"""systemd's notify protocol (`Type=notify`), spoken directly: one datagram a state, to `$NOTIFY_SOCKET`.

`READY=1` once the relay listens and its workers run, `STOPPING=1` when SIGTERM arrives, and `WATCHDOG=1`
every half `WatchdogSec` while the server and every worker are alive (systemd restarts a relay that stops
sending it). Without `$NOTIFY_SOCKET` (not under systemd) every call does nothing. The protocol is the one
sd_notify(3) describes: a Unix datagram socket, a path or (leading `@`) an abstract name.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    """Tells systemd how the relay is doing; silent when not started by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET") or None
        self.interval = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *states: str) -> bool:
        """Send `KEY=value` lines as one datagram; False (never an error) when systemd cannot be told."""
        if self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(1.0)
                sock.connect(target)
                sock.sendall("\n".join(states).encode("utf-8"))
        except OSError:
            return False  # systemd went away or the socket is not ours: the relay goes on regardless
        return True

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={_one_line(status)}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1", "STATUS=stopping: finishing the delivery in progress")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half of `$WATCHDOG_USEC` in seconds (sd_watchdog_enabled's advice), when it is meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
