"""The failure report `--bounce-to` asks for: what was refused, by whom, and the message's headers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.compose.mime import build_message, make_message_id

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile
    from xoromail_cli.relay.spool import Spooled


def failure_report(profile: Profile, spooled: Spooled, reply: str, bounce_to: str) -> Envelope:
    """A plain-text report from the mailbox to `bounce_to` (Auto-Submitted, so no one answers it)."""
    envelope = spooled.envelope
    head = envelope.data.partition(b"\r\n\r\n")[0].decode("utf-8", "replace")
    subject = next((line[8:].strip() for line in head.splitlines() if line.lower().startswith("subject:")), "")
    text = "\n".join([
        "xoromail relay could not deliver this message and has stopped trying.",
        "",
        f"Message-ID: {envelope.message_id}",
        f"Recipients: {', '.join(envelope.recipients)}",
        f"The service said: {reply}",
        f"Spool id: {spooled.id} (xoromail queue retry {spooled.id} sends it again once the cause is fixed)",
        "",
        "The message's headers:",
        "",
        head.replace("\r\n", "\n"),
    ])
    message_id = make_message_id(profile.email)
    data = build_message(display_name="xoromail relay", sender=profile.email, to=[bounce_to],
                         subject=f"Undeliverable: {subject}"[:200], text=text, message_id=message_id)
    return Envelope(sender=profile.email, to=(bounce_to,), data=data, message_id=message_id)
