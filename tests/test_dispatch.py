from __future__ import annotations

from pathlib import Path

from tests.samples import smtp_profile
from xoromail_cli.sending import plan as dispatch

BASE = smtp_profile(name="ops", email="a@b.test", host="smtp.office365.com", port=587)


def test_ledger_and_lock_live_in_the_state_dir_unless_the_profile_says(isolated_environment: Path,
                                                                      tmp_path: Path) -> None:
    assert dispatch.ledger_path(BASE) == isolated_environment / "state" / "xoromail" / "ledger.sqlite3"
    assert dispatch.lock_path(BASE).parent == isolated_environment / "state" / "xoromail" / "locks"
    assert dispatch.lock_path(BASE).name.startswith("smtp-a@b.test-")
    custom = smtp_profile(name="ops", email="a@b.test", host="h", port=25, ledger=str(tmp_path / "l.db"))
    assert dispatch.ledger_path(custom) == tmp_path / "l.db"


def test_rate_comes_from_option_then_profile_then_provider() -> None:
    assert dispatch.messages_per_second(BASE, "6/min") == 0.1
    assert dispatch.messages_per_second(smtp_profile(name="p", email="a@b.test", host="h", port=25, rate="120/min"),
                                        None) == 2.0
    assert dispatch.messages_per_second(BASE, None) == 0.5
    assert dispatch.messages_per_second(smtp_profile(name="p", email="a@b.test", host="mail.b.test", port=25),
                                        None) is None


def test_plan_checks_a_single_message_and_refuses_mixed_sources(tmp_path: Path) -> None:
    import pytest

    from xoromail_cli.compose.events import EVENTS
    from xoromail_cli.errors import UsageError

    profile = smtp_profile(name="p", email="a@b.test", host="h", port=25)
    event = EVENTS["order-release"]
    plan = dispatch.plan_send(profile, event, variables={"customer_name": "A", "order_number": "1"},
                              to=["c@x.test"])
    assert (plan.total, plan.recipients, plan.is_batch) == (1, 1, False)
    (tmp_path / "r.csv").write_text("to,customer_name,order_number\nc@x.test,A,1\n")
    with pytest.raises(UsageError, match="not beside --batch"):
        dispatch.plan_send(profile, event, variables={}, to=["c@x.test"], batch=tmp_path / "r.csv")
    with pytest.raises(UsageError, match="no recipient"):
        dispatch.plan_send(profile, event, variables={"customer_name": "A", "order_number": "1"})


def test_a_dry_run_touches_no_ledger_lock_or_network(isolated_environment: Path, tmp_path: Path) -> None:
    from xoromail_cli.compose.events import EVENTS

    profile = smtp_profile(name="p", email="a@b.test", host="mail.invalid", port=25)
    (tmp_path / "r.csv").write_text("to,customer_name,order_number\nc@x.test,A,1\nd@x.test,B,2\n")
    plan = dispatch.plan_send(profile, EVENTS["order-release"], variables={}, batch=tmp_path / "r.csv")
    statuses: list[str] = []
    summary = dispatch.execute(plan, dispatch.SendOptions(dry_run=True), lambda r: statuses.append(r.status),
                               lambda warning: None)
    assert statuses == ["dry-run", "dry-run"] and summary.exit_code == 0
    assert not (isolated_environment / "state" / "xoromail").exists()


def test_a_bad_rate_is_refused_even_on_a_dry_run(tmp_path: Path) -> None:
    import pytest

    from xoromail_cli.compose.events import EVENTS
    from xoromail_cli.errors import UsageError

    profile = smtp_profile(name="p", email="a@b.test", host="h", port=25)
    plan = dispatch.plan_send(profile, EVENTS["order-release"], variables={"customer_name": "A", "order_number": "1"},
                              to=["c@x.test"])
    with pytest.raises(UsageError, match="rate"):
        dispatch.execute(plan, dispatch.SendOptions(dry_run=True, rate="1/2h"), lambda r: None, lambda w: None)


def test_quota_warnings_count_what_this_run_sends_on_top_of_the_last_day() -> None:
    profile = smtp_profile(name="p", email="a@b.test", host="smtp.gmail.com", port=587, preset="gmail")
    assert dispatch.quota_warnings(profile, (1000, 1000), 100, 100) == []
    assert "2,000 messages a day" in dispatch.quota_warnings(profile, (1900, 1900), 101, 101)[0]
    office = smtp_profile(name="o", email="a@b.test", host="smtp.office365.com", port=587)
    assert "10,000 recipients a day" in dispatch.quota_warnings(office, (0, 0), 10, 10_001)[0]


def test_the_quota_watch_warns_once_at_the_message_that_passes_the_limit(tmp_path: Path) -> None:
    from xoromail_cli.ledger.sqlite import Ledger

    warnings: list[str] = []
    profile = smtp_profile(name="p", email="a@b.test", host="smtp.gmail.com", port=587, preset="gmail")
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        for number in range(1999):
            ledger.record("smtp:a@b.test", "e", f"k{number}", ("a@x.test",), f"<{number}@x>", None, "sent", "250")
        watch = dispatch.QuotaWatch(profile, ledger, warnings.append)
    watch(1)
    assert warnings == []
    watch(1)
    watch(1)
    assert len(warnings) == 1 and "2,000 messages a day" in warnings[0]
