from __future__ import annotations

from pathlib import Path

from xoromail_cli import dispatch
from xoromail_cli.config import Profile

BASE = Profile(name="ops", email="a@b.test", host="smtp.office365.com", port=587)


def test_ledger_and_lock_live_in_the_state_dir_unless_the_profile_says(isolated_environment: Path,
                                                                      tmp_path: Path) -> None:
    assert dispatch.ledger_path(BASE) == isolated_environment / "state" / "xoromail" / "ledger.sqlite3"
    assert dispatch.lock_path(BASE).name == "ops.lock"
    custom = Profile(name="ops", email="a@b.test", host="h", port=25, ledger=str(tmp_path / "l.db"))
    assert dispatch.ledger_path(custom) == tmp_path / "l.db"


def test_rate_comes_from_option_then_profile_then_provider() -> None:
    assert dispatch.messages_per_second(BASE, "6/min") == 0.1
    assert dispatch.messages_per_second(Profile(name="p", email="a@b.test", host="h", port=25, rate="120/min"),
                                        None) == 2.0
    assert dispatch.messages_per_second(BASE, None) == 0.5
    assert dispatch.messages_per_second(Profile(name="p", email="a@b.test", host="mail.b.test", port=25),
                                        None) is None
