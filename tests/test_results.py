from __future__ import annotations

from xoromail_cli.errors import ExitCode
from xoromail_cli.sending.results import MessageResult


def test_a_failure_a_person_must_fix_outranks_temporary_ones_in_the_exit_code() -> None:
    from xoromail_cli.errors import TemporaryError
    from xoromail_cli.sending.results import Summary

    summary = Summary()
    summary.add(MessageResult(event="e", row=1, recipients=(), status="partial", exit_code=int(ExitCode.TEMPFAIL)))
    assert summary.exit_code == ExitCode.TEMPFAIL
    summary.add(MessageResult(event="e", row=2, recipients=(), status="failed", exit_code=int(ExitCode.DATAERR)))
    summary.aborted = TemporaryError("quota reached")
    assert summary.exit_code == ExitCode.DATAERR


def test_a_summary_counts_the_rows_a_stopped_run_never_reached() -> None:
    from xoromail_cli.sending.results import Summary

    summary = Summary(total=20)
    for row in range(6):
        summary.add(MessageResult(event="e", row=row + 1, recipients=(), status="sent"))
    # an earlier run's message, not a row of this one:
    summary.add(MessageResult(event="e", row=0, recipients=(), status="interrupted"))
    assert summary.not_attempted == 14
    assert summary.line() == "6 sent, 0 failed, 0 skipped, 14 not attempted, 1 left in doubt by an earlier run"


def test_a_summary_without_a_known_total_counts_nothing_as_not_attempted() -> None:
    from xoromail_cli.sending.results import Summary

    summary = Summary()
    summary.add(MessageResult(event="e", row=1, recipients=(), status="sent"))
    assert summary.not_attempted == 0 and "not attempted" not in summary.line()
