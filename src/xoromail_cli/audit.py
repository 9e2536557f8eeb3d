"""Reading the ledger back for `xoromail log`: date filters people can type."""

from __future__ import annotations

from datetime import UTC, datetime

from xoromail_cli.errors import UsageError
from xoromail_cli.pacing import now, parse_duration


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
