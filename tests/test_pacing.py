from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from xoromail_cli.errors import UsageError
from xoromail_cli.pacing import Backoff, RateLimiter, now, parse_duration, parse_rate, parse_since


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_rates_are_parsed_per_second() -> None:
    assert parse_rate("30/min") == 0.5
    assert parse_rate("2/s") == 2
    assert parse_rate("3600/h") == 1
    assert parse_rate("60") == 1
    with pytest.raises(UsageError):
        parse_rate("fast")


def test_durations_are_parsed() -> None:
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("90m") == timedelta(minutes=90)
    with pytest.raises(UsageError):
        parse_duration("7 days")


def test_rate_limiter_spaces_messages_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=0.5, clock=clock, sleep=clock.sleep)
    waits = [limiter.wait() for _ in range(4)]
    assert waits == [0.0, 2.0, 2.0, 2.0]


def test_rate_limiter_does_not_wait_when_the_sender_is_slower_than_the_limit() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=1.0, clock=clock, sleep=clock.sleep)
    limiter.wait()
    clock.now += 5
    assert limiter.wait() == 0.0


def test_no_limit_never_waits() -> None:
    assert RateLimiter(per_second=None).wait() == 0.0


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    backoff = Backoff(base=1.0, cap=10.0, rng=random.Random(7))
    delays = [backoff.delay(attempt) for attempt in range(6)]
    for attempt, delay in enumerate(delays):
        ceiling = min(10.0, 2.0 ** attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert delays[-1] <= 10.0


@pytest.mark.parametrize("text", ["999999999999d", "100000w"])
def test_absurd_durations_are_usage_errors_not_overflows(text: str) -> None:
    with pytest.raises(UsageError, match="longer than ten years"):
        parse_duration(text)


def test_a_rate_slower_than_one_an_hour_is_refused() -> None:
    with pytest.raises(UsageError, match="slower than one message an hour"):
        parse_rate("0.0000001/h")


def test_dates_and_durations_are_accepted() -> None:
    assert parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert abs(parse_since("7d") - (now() - timedelta(days=7))) < timedelta(seconds=5)
    with pytest.raises(UsageError, match="neither a date nor a duration"):
        parse_since("last tuesday")


def test_an_hourly_cap_holds_the_next_message_until_the_oldest_is_an_hour_old() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=0.5, per_hour=3, clock=clock, sleep=clock.sleep)
    waits = [limiter.wait() for _ in range(5)]
    assert waits == [0.0, 2.0, 2.0, 3596.0, 2.0]  # the 4th at first + 1 h; the pace goes on from there


def test_an_hourly_cap_refuses_an_early_slot_to_try_take() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=None, per_hour=2, clock=clock, sleep=clock.sleep)
    assert limiter.try_take() and limiter.try_take()
    clock.now += 3599
    assert not limiter.try_take() and not limiter.try_take()  # a refusal forgets no slot
    clock.now += 1
    assert limiter.try_take() and limiter.try_take() and not limiter.try_take()
