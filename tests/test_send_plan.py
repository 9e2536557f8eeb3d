"""The send planner: a run checked before anything is sent, and what `execute` opens for each kind of run."""

from __future__ import annotations

from pathlib import Path

from tests.support.samples import smtp_profile
from xoromail_cli.sending import plan as dispatch


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
