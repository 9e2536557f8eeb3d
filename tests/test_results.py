from __future__ import annotations

from xoromail_cli.errors import ExitCode
from xoromail_cli.results import MessageResult


def test_a_failure_a_person_must_fix_outranks_temporary_ones_in_the_exit_code() -> None:
    from xoromail_cli.errors import TemporaryError
    from xoromail_cli.results import Summary

    summary = Summary()
    summary.add(MessageResult("e", 1, (), "partial", exit_code=int(ExitCode.TEMPFAIL)))
    assert summary.exit_code == ExitCode.TEMPFAIL
    summary.add(MessageResult("e", 2, (), "failed", exit_code=int(ExitCode.DATAERR)))
    summary.aborted = TemporaryError("quota reached")
    assert summary.exit_code == ExitCode.DATAERR
