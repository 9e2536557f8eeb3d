"""Transports deliver finished messages; they are chosen from the profile by `for_profile`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from xoromail_cli.config import Profile
    from xoromail_cli.transports.base import Transport


def for_profile(profile: Profile, password: str | None, *, outbox: Path | None = None,
                timeout: float | None = None) -> Transport:
    """The transport a profile asks for; `outbox` replaces the network with a folder of .eml files."""
    if outbox is not None:
        from xoromail_cli.services.outbox import OutboxTransport

        return OutboxTransport(outbox)
    from xoromail_cli.services.smtp.transport import SmtpSettings, SmtpTransport

    return SmtpTransport(SmtpSettings.from_profile(profile, timeout), password)
