"""The largest message a mailbox's service takes, so the relay refuses a larger one at DATA (`552 5.3.4`).

The relay answers 250 before it delivers; a message the service would refuse for its size must be refused at
the door, never accepted and failed later. Each transport states its maximum once open (`max_message_size`)
and may say what would lift it (`size_hint`: Graph names `Mail.ReadWrite`). The worker asks once at start and
again after every burst (a permission granted meanwhile shows up there). Unknown until then: accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import XoromailError

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile


class SizeLimit:
    """One mailbox's maximum as its transport last stated it (None: not known, or none)."""

    def __init__(self) -> None:
        self.max_size: int | None = None
        self.hint: str | None = None
        self.service = ""

    def update(self, transport: Any) -> None:
        """Read the limit of a transport that was opened (a closed one states nothing new)."""
        size = getattr(transport, "max_message_size", None)
        if isinstance(size, int) and size > 0:
            self.max_size, self.hint = size, getattr(transport, "size_hint", None)
            self.service = str(getattr(transport, "name", ""))

    def learn(self, profile: Profile, timeout: float | None, log: Callable[[str], None]) -> None:
        """Open the profile's service once and read its limit; a service that cannot be opened now is
        left unknown (delivery will say why soon enough)."""
        from xoromail_cli import credentials, services

        transport = None
        try:
            transport = services.open_transport(profile, credentials.Secrets(profile), timeout=timeout)
            self.update(transport)  # what it states before signing in (Graph's 3 MB), if signing in fails
            transport.open()
            self.update(transport)
        except XoromailError as error:
            log(f"size-unknown reason=\"{' '.join(error.message.split())}\"")
            return
        except Exception as exc:  # noqa: BLE001  # a probe: the relay goes on without the limit, and says so
            log(f"size-unknown reason={type(exc).__name__}")
            return
        finally:
            if transport is not None:
                transport.close()

    def refusal(self, size: int) -> str | None:
        """The DATA answer for a message of `size` bytes when it is over the limit, else None."""
        if self.max_size is None or size <= self.max_size:
            return None
        from xoromail_cli.sending.sizelimit import TOO_LARGE_HINT, megabytes

        return (f"552 5.3.4 The message is {megabytes(size)} and {self.service or 'the service'} takes at most "
                f"{megabytes(self.max_size)} through this mailbox: {self.hint or TOO_LARGE_HINT}")
