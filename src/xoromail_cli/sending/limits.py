"""What one run keeps to: its pace, its connections and the provider's daily quota, asked of the service once.

`send` and the relay both start here (`RunLimits.of`), then hand the same numbers to every message: nothing in
the per-message path asks the provider again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from xoromail_cli.pacing import now, parse_rate

if TYPE_CHECKING:
    from xoromail_cli.ledger.sqlite import SentLedger
    from xoromail_cli.profile import Profile
    from xoromail_cli.services.base import Limits


@dataclass(frozen=True, kw_only=True)
class RunLimits:
    """A run's limits, fixed when it starts."""

    provider: Limits | None
    """What the provider publishes (rate, connections, daily quotas), or None when nothing is known."""
    per_second: float | None
    """The pace: --rate, else the profile's `rate`, else the provider's published limit, else unlimited."""
    pace_source: str
    """Whose pace it is, as the pacing notice names it."""
    per_hour: int | None = None
    """The provider's hourly cap, kept when the pace is the provider's (--rate or `rate` chooses the pace)."""

    @classmethod
    def of(cls, profile: Profile, rate: str | None = None) -> RunLimits:
        """The limits of a run of `profile`, `rate` being --rate (the one question put to the provider)."""
        provider = provider_limits(profile)
        if rate:
            return cls(provider=provider, per_second=parse_rate(rate), pace_source="--rate")
        if profile.rate:
            return cls(provider=provider, per_second=parse_rate(profile.rate), pace_source="the profile's rate")
        if provider is not None and provider.per_minute:
            return cls(provider=provider, per_second=provider.per_minute / 60.0, per_hour=provider.per_hour,
                       pace_source=f"{provider.label}'s published limit")
        return cls(provider=provider, per_second=None, pace_source="the pace")

    def connections(self, wanted: int, on_warning: Callable[[str], None]) -> int:
        """`wanted` connections, never more than the provider allows (saying so)."""
        cap = self.provider.max_connections if self.provider is not None else None
        if cap is None or wanted <= cap:
            return wanted
        label = self.provider.label if self.provider is not None else "the provider"
        on_warning(f"{label} allows {cap} connection{'s' if cap != 1 else ''} at a time; "
                   f"sending over {cap} instead of {wanted}")
        return cap


def provider_limits(profile: Profile) -> Limits | None:
    """What the profile's service says its provider allows (asked once per run, by `RunLimits.of`)."""
    from xoromail_cli import services

    return services.for_profile(profile).limits(profile)


def quota_overruns(limits: Limits | None, sent: tuple[int, int], messages: int,
                    recipients: int) -> dict[str, str]:
    """Each daily limit passed ("messages", "recipients") with the warning that says so: `sent` is (messages,
    recipients) of the last 24 hours; `messages` and `recipients` are what this run has gone on to send."""
    if limits is None:
        return {}
    sent_messages, sent_recipients = sent
    warnings: dict[str, str] = {}
    if limits.daily_messages and sent_messages + messages > limits.daily_messages:
        warnings["messages"] = (f"{limits.label} allows about {limits.daily_messages:,} messages a day; "
                                f"{sent_messages:,} were sent in the last 24 hours and this run is sending its "
                                f"{messages:,}th: the provider may start refusing")
    if limits.daily_recipients and sent_recipients + recipients > limits.daily_recipients:
        warnings["recipients"] = (f"{limits.label} allows {limits.daily_recipients:,} recipients a day; "
                                  f"{sent_recipients:,} in the last 24 hours plus {recipients:,} in this run")
    return warnings


class QuotaWatch:
    """Warns once, at the message that passes a daily limit: rows skipped as already sent never count.
    Called with each message's recipient count just before it goes out (`Deliverer.before_delivery`)."""

    def __init__(self, limits: Limits | None, account: str, ledger: SentLedger,
                 on_warning: Callable[[str], None]) -> None:
        self._limits, self._on_warning = limits, on_warning
        self._sent = ledger.count_since(account, now() - timedelta(days=1)) if limits is not None else (0, 0)
        self._messages = self._recipients = 0
        self._warned: set[str] = set()
        self._lock = threading.Lock()  # shared by the connections of a parallel run

    def __call__(self, recipients: int) -> None:
        with self._lock:
            self._messages += 1
            self._recipients += recipients
            overruns = quota_overruns(self._limits, self._sent, self._messages, self._recipients)
            fresh = [warning for kind, warning in overruns.items() if kind not in self._warned]
            self._warned.update(overruns)
        for warning in fresh:
            self._on_warning(warning)
