"""A server certificate that expires soon: validate names the date while there is time to renew it."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from typing import Any

WARN_WITHIN = timedelta(days=30)


def certificate_expiry_note(not_after: datetime, host: str, *, now: datetime) -> str | None:
    """A note when the certificate expires within 30 days of `now` (or has expired), else None."""
    left = not_after - now
    date = not_after.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if left <= timedelta(0):
        return f"the TLS certificate of {host} expired on {date}: clients that verify it refuse to connect"
    if left > WARN_WITHIN:
        return None
    days = left.days
    when = "in less than a day" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
    return (f"the TLS certificate of {host} expires on {date} ({when}): once it has, every connection fails "
            "the certificate check; ask the server's administrator to renew it")


def not_after_of(peer_certificate: dict[str, Any]) -> datetime:
    """The expiry of a certificate as `SSLSocket.getpeercert()` returns it (its notAfter text is GMT)."""
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(str(peer_certificate["notAfter"])), tz=UTC)
