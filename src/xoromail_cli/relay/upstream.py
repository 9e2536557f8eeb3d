"""What the relay may promise at the door: the largest message the profile's service takes.

The relay answers 250 before it delivers, so a message the service would refuse for its size must be refused
at `MAIL FROM … SIZE=` or at the end of DATA (`552 5.3.4`), never accepted and failed later. Each transport
states its maximum (`max_message_size`: SMTP from the server's EHLO SIZE, Graph 3 MB without upload
sessions, Gmail's API 35 MB); it is asked once at start, in a thread, while the relay already listens, with
the transport open, and followed after each burst of deliveries (`relay_cmd._follow_sizes`: a permission
granted meanwhile). When signing in fails at start, the maximum the transport states without it (Graph's
3 MB) is used rather than none: the relay must not promise more than the service may take.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import XoromailError
from xoromail_cli.relay.delivery import event_line

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile
    from xoromail_cli.relay.server import RelayServer

MAX_ACCEPTED = 64 * 1024 * 1024
"""Never more than this in one message, whatever the service takes (the relay holds it in memory once)."""


def learn_max_size(profile: Profile, server: RelayServer, log: Callable[[str], None]) -> int | None:
    """Open the service once, read its maximum, give it to the server; None (logged) when it cannot be asked."""
    from xoromail_cli import credentials, services

    transport = None
    try:
        transport = services.open_transport(profile, credentials.Secrets(profile), timeout=profile.timeout)
        size, name, advice = _stated(transport)  # before signing in: Graph, Gmail and Exchange know theirs
        try:
            transport.open()
            size, name, advice = _stated(transport)  # signed in: Graph's may be larger, SMTP's is in EHLO
        except XoromailError as error:
            if not size:
                raise
            log(event_line("size-stated", max=size, reason=error.message))
    except XoromailError as error:
        log(event_line("size-unknown", max=server.limits.max_size, reason=error.message))
        return None
    except Exception as exc:  # noqa: BLE001  # a thread of its own: the relay goes on with the default size
        log(event_line("size-unknown", max=server.limits.max_size, reason=type(exc).__name__))
        return None
    finally:
        if transport is not None:
            transport.close()
    if not size:
        log(event_line("size-unknown", max=server.limits.max_size, reason=f"{name} states no maximum"))
        return None
    server.set_max_size(min(size, MAX_ACCEPTED), name, advice)
    log(event_line("size", max=server.limits.max_size, service=name))
    return size


def _stated(transport: Any) -> tuple[int | None, str, str | None]:
    """(the maximum, the service's name, what would lift it) as the transport states them now."""
    return transport.max_message_size, transport.name, getattr(transport, "size_hint", None)
