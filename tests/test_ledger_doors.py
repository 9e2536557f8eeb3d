"""The ledger's doors: where a profile's ledger lives, opening it locked to send, and read-only to preview."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.samples import smtp_profile
from xoromail_cli import ledger
from xoromail_cli.errors import ExitCode, TemporaryError
from xoromail_cli.ledger.accounts import account_key

BASE = smtp_profile(name="ops", email="a@b.test", host="smtp.office365.com", port=587)
ACCOUNT = account_key("a@b.test")


def test_ledger_and_lock_live_in_the_state_dir_unless_the_profile_says(isolated_environment: Path,
                                                                      tmp_path: Path) -> None:
    assert ledger.ledger_path(BASE) == isolated_environment / "state" / "xoromail" / "ledger.sqlite3"
    assert ledger.lock_path(BASE).parent == isolated_environment / "state" / "xoromail" / "locks"
    assert ledger.lock_path(BASE).name.startswith("a@b.test-")
    custom = smtp_profile(name="ops", email="a@b.test", host="h", port=25, ledger=str(tmp_path / "l.db"))
    assert ledger.ledger_path(custom) == tmp_path / "l.db"
    assert not ledger.is_shared(custom)
    shared = smtp_profile(name="ops", email="a@b.test", host="h", port=25, ledger="postgresql://u@db.erp.test/erp")
    assert ledger.is_shared(shared) and ledger.location_for(shared).url == "postgresql://u@db.erp.test/erp"


def test_open_for_sending_holds_the_account_lock_until_the_with_ends(tmp_path: Path) -> None:
    profile = smtp_profile(name="ops", email="a@b.test", host="h", port=25, ledger=str(tmp_path / "l.db"))
    with ledger.open_for_sending(profile, wait=0) as sent:
        sent.record(ACCOUNT, "e", "k1", ("c@x.test",), "<1@x>", None, "sent", "250 ok")
        with pytest.raises(TemporaryError) as held, ledger.open_for_sending(profile, wait=0):
            pass
        assert held.value.exit_code == ExitCode.TEMPFAIL
    with ledger.open_for_sending(profile, wait=0) as again:  # released: the next run goes ahead
        entry = again.last_sent(ACCOUNT, "k1")
        assert entry is not None and entry.status == "sent"


def test_open_preview_creates_nothing_and_never_settles_an_interrupted_row(tmp_path: Path) -> None:
    profile = smtp_profile(name="ops", email="a@b.test", host="h", port=25, ledger=str(tmp_path / "l.db"))
    with ledger.open_preview(profile) as nothing:
        assert nothing is None  # nothing was ever sent: everything is pending
    assert not (tmp_path / "l.db").exists()
    with ledger.open_for_sending(profile, wait=0) as sent:
        sent.begin(ACCOUNT, "e", "k1", ("c@x.test",), "<1@x>", None, profile="ops")
    with ledger.open_preview(profile) as preview:
        assert preview is not None and preview.interrupted(ACCOUNT) == []
    with ledger.open_for_sending(profile, wait=0) as sent:
        assert [entry.status for entry in sent.interrupted(ACCOUNT)] == ["in_flight"]
