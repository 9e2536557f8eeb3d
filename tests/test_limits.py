"""A run's limits (`sending.limits`): the pace, the connections and the daily quota, asked of the provider once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, configure, profile_for
from tests.support.relay_helpers import RelayFactory, erp_message, relay, submit, wait_for
from tests.support.samples import csv_batch, smtp_profile
from xoromail_cli import credentials
from xoromail_cli.cli import app
from xoromail_cli.ledger.accounts import account_key
from xoromail_cli.profile import Profile
from xoromail_cli.sending.limits import QuotaWatch, RunLimits, provider_limits, quota_overruns
from xoromail_cli.services.base import Limits
from xoromail_cli.services.smtp.service import SmtpService

__all__ = ["relay"]  # the fixture, imported for pytest

BASE = smtp_profile(name="ops", email="a@b.test", host="smtp.office365.com", port=587)
GMAIL = smtp_profile(name="p", email="a@b.test", host="smtp.gmail.com", port=587, preset="gmail")


@pytest.fixture
def limits_asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every time the SMTP service is asked for its provider's limits (the real method still answers)."""
    asked: list[str] = []
    real: Callable[[SmtpService, Profile], Limits | None] = SmtpService.limits

    def counting(self: SmtpService, profile: Profile) -> Limits | None:
        asked.append(profile.name)
        return real(self, profile)

    monkeypatch.setattr(SmtpService, "limits", counting)
    return asked


def test_the_pace_comes_from_the_option_then_the_profile_then_the_provider() -> None:
    assert RunLimits.of(BASE, "6/min").per_second == 0.1
    assert RunLimits.of(BASE, "6/min").pace_source == "--rate"
    own = RunLimits.of(smtp_profile(name="p", email="a@b.test", host="h", port=25, rate="120/min"))
    assert (own.per_second, own.pace_source) == (2.0, "the profile's rate")
    office = RunLimits.of(BASE)
    assert office.per_second == 0.5 and office.pace_source.endswith("'s published limit")
    unknown = RunLimits.of(smtp_profile(name="p", email="a@b.test", host="mail.b.test", port=25))
    assert (unknown.provider, unknown.per_second) == (None, None)


def test_connections_are_capped_at_what_the_provider_allows_and_the_cap_is_said() -> None:
    warnings: list[str] = []
    assert RunLimits.of(GMAIL).connections(8, warnings.append) == 3
    assert warnings == ["Gmail / Google Workspace allows 3 connections at a time; sending over 3 instead of 8"]
    assert RunLimits.of(GMAIL).connections(2, warnings.append) == 2 and len(warnings) == 1
    assert RunLimits.of(smtp_profile(name="p", email="a@b.test", host="h", port=25)).connections(8, print) == 8


def test_quota_warnings_count_what_this_run_sends_on_top_of_the_last_day() -> None:
    gmail = provider_limits(GMAIL)
    assert quota_overruns(gmail, (1000, 1000), 100, 100) == {}
    assert "2,000 messages a day" in quota_overruns(gmail, (1900, 1900), 101, 101)["messages"]
    assert "10,000 recipients a day" in quota_overruns(provider_limits(BASE), (0, 0), 10, 10_001)["recipients"]
    assert quota_overruns(None, (10**9, 10**9), 1, 1) == {}


def test_the_quota_watch_warns_once_at_the_message_that_passes_the_limit(tmp_path: Path) -> None:
    from xoromail_cli.ledger.sqlite import Ledger

    warnings: list[str] = []
    account = account_key("a@b.test")
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        for number in range(1999):
            ledger.record(account, "e", f"k{number}", ("a@x.test",), f"<{number}@x>", None, "sent", "250")
        watch = QuotaWatch(provider_limits(GMAIL), account, ledger, warnings.append)
    watch(1)
    assert warnings == []
    watch(1)
    watch(1)
    assert len(warnings) == 1 and "2,000 messages a day" in warnings[0]


@pytest.mark.parametrize("connections", ["1", "2"])
def test_a_send_run_asks_the_provider_for_its_limits_once_not_per_message(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        limits_asked: list[str], connections: str) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls, preset="gmail")  # limits known: a connection cap and a daily quota
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch",
                                 str(csv_batch(tmp_path / "rows.csv", 6)), "--json", "--connections", connections])
    assert result.exit_code == 0, result.output
    assert len(server.messages) == 6
    assert limits_asked == ["default"]


def test_the_relay_asks_the_provider_for_its_limits_once_for_every_message_it_delivers(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles, limits_asked: list[str]) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls, preset="gmail"), linger=0.0)
    for number in range(3):
        submit(running.port, erp_message(number))
        wait_for(lambda: len(running.logged("delivered")) == number + 1,  # noqa: B023  # waited on at once
                 what="the message's delivery")  # one burst (a lock, a session) each
    assert len(upstream.messages) == 3
    assert limits_asked == ["default"]


def test_azure_communication_services_keeps_its_hourly_cap_unless_the_pace_is_chosen() -> None:
    acs = smtp_profile(name="acs", email="a@b.test", host="smtp.azurecomm.net", port=587)
    limits = RunLimits.of(acs)
    assert limits.per_second == 0.5 and limits.per_hour == 100
    assert RunLimits.of(acs, "10/min").per_hour is None  # --rate says the pace (e.g. a raised quota)
    assert RunLimits.of(BASE).per_hour is None
