from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from xoromail_cli.audit import parse_since
from xoromail_cli.errors import UsageError
from xoromail_cli.pacing import now


def test_dates_and_durations_are_accepted() -> None:
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert abs(parse_since("7d") - (now() - timedelta(days=7))) < timedelta(seconds=5)
    with pytest.raises(UsageError, match="neither a date nor a duration"):
        parse_since("last tuesday")
