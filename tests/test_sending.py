"""The Sender against real servers: one connection, refusals, retries, reconnects, ledger and idempotency."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from tests.support.common import USER, ServerFactory, TLSFiles, profile_for
from tests.support.engine import sender
from tests.support.samples import EVENT, jobs
from tests.support.servers import (
    AcceptThenDropNth,
    CloseAfterNth,
    DropNth,
    FailNth,
    Greylist,
    MailFromReply,
    RefuseRecipient,
    connections,
)
from xoromail_cli.compose.render import Renderer
from xoromail_cli.errors import ExitCode
from xoromail_cli.ledger.accounts import account_key
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.pacing import Backoff, now
from xoromail_cli.sending.batch import SendJob, make_job
from xoromail_cli.sending.deliverer import Deliverer
from xoromail_cli.sending.keys import idempotency_key
from xoromail_cli.sending.results import MessageResult
from xoromail_cli.sending.sender import Sender
from xoromail_cli.services.smtp.transport import SmtpEndpoint, SmtpTransport

ACCOUNT = account_key(USER)


def test_batch_goes_over_one_connection(smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server()
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(50))
    assert summary.count("sent") == 50 and summary.exit_code == 0
    assert connections(server.handler) == 1
    assert [r.attempts for r in results] == [1] * 50


def test_refused_recipient_is_reported_and_the_others_delivered(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=RefuseRecipient("nobody@client.test"))
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(5, refused="nobody@client.test"))
    assert summary.count("sent") == 4 and summary.count("failed") == 1
    failed = next(r for r in results if r.status == "failed")
    assert "550 5.1.1" in failed.reply and failed.row == 2
    assert summary.exit_code == ExitCode.DATAERR
    assert len(server.messages) == 4


def test_451_on_the_nth_message_is_retried_and_all_arrive_once(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=FailNth(3))
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(6))
    assert summary.count("sent") == 6 and summary.exit_code == 0
    delivered = Counter(r for m in server.messages for r in m.recipients)
    assert set(delivered.values()) == {1} and len(delivered) == 6
    assert results[2].attempts == 2


def test_a_connection_closed_between_messages_is_reopened_and_the_batch_completes(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=CloseAfterNth(4))
    run, _ = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(8))
    assert summary.count("sent") == 8 and summary.exit_code == 0
    assert sorted(r for m in server.messages for r in m.recipients) == sorted(
        f"customer{n}@client.test" for n in range(1, 9))
    assert connections(server.handler) == 2


def test_with_no_retry_in_doubt_a_connection_lost_after_the_data_waits_for_the_next_run(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=DropNth(4))
    run, results = sender(profile_for(server, tls), ledger, retry_in_doubt=False)
    summary = run.run(jobs(8))
    assert summary.count("sent") == 7 and summary.exit_code == ExitCode.TEMPFAIL
    lost = results[3]
    assert lost.status == "temporary" and lost.attempts == 1 and "may have accepted it" in lost.reply
    assert lost.in_doubt and lost.to_json()["in_doubt"] is True  # a field: nobody reads it from the hint
    assert not any(r.in_doubt for i, r in enumerate(results) if i != 3)
    assert [e.recipients for e in ledger.interrupted(ACCOUNT)] == [("customer4@client.test",)]
    rerun, rerun_results = sender(profile_for(server, tls), ledger)
    assert rerun.run(jobs(8)).exit_code == 0
    assert [r.in_doubt for r in rerun_results if r.status == "interrupted"] == [True]
    delivered = Counter(r for m in server.messages for r in m.recipients)
    assert len(delivered) == 8 and set(delivered.values()) == {1}


def test_temporary_failures_beyond_the_retries_exit_75(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    class AlwaysBusy(FailNth):
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
            return "451 4.7.1 Please try again later"

    run, results = sender(profile_for(smtp_server(handler=AlwaysBusy(0)), tls), retries=2)
    summary = run.run(jobs(2))
    assert summary.count("temporary") == 2 and summary.exit_code == ExitCode.TEMPFAIL
    assert [r.attempts for r in results] == [3, 3]
    assert not any(r.in_doubt for r in results)  # refused for now is not in doubt: the server said no


def test_permanent_failures_are_not_retried(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    run, results = sender(profile_for(smtp_server(handler=FailNth(1, "554 5.7.1 Message rejected as spam")), tls))
    summary = run.run(jobs(2))
    assert results[0].status == "failed" and results[0].attempts == 1
    assert "554 5.7.1 Message rejected as spam" in results[0].reply
    assert summary.count("sent") == 1 and summary.exit_code == ExitCode.UNAVAILABLE


def test_already_sent_messages_are_skipped_on_a_rerun(smtp_server: ServerFactory, tls: TLSFiles,
                                                     ledger: Ledger) -> None:
    server = smtp_server()
    profile = profile_for(server, tls)
    assert sender(profile, ledger)[0].run(jobs(3)).count("sent") == 3
    run, results = sender(profile, ledger)
    summary = run.run(jobs(4))
    assert summary.count("skipped") == 3 and summary.count("sent") == 1
    assert results[0].reply.startswith("already sent on ")
    assert len(server.messages) == 4


def test_resend_after_lets_a_weekly_reminder_go_again(smtp_server: ServerFactory, tls: TLSFiles,
                                                      ledger: Ledger) -> None:
    server = smtp_server()
    profile = profile_for(server, tls)
    sender(profile, ledger)[0].run(jobs(1))
    assert sender(profile, ledger, resend_after=timedelta(days=7))[0].run(jobs(1)).count("skipped") == 1
    assert sender(profile, ledger, resend_after=timedelta(0))[0].run(jobs(1)).count("sent") == 1
    assert sender(profile, ledger, resend=True)[0].run(jobs(1)).count("sent") == 1


def test_sign_in_failure_aborts_before_anything_is_sent(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    profile = profile_for(smtp_server(), tls)
    results: list[MessageResult] = []
    deliverer = Deliverer(profile=profile, event=EVENT.name,
                          transport=SmtpTransport(SmtpEndpoint.from_profile(profile), "wrong"))
    run = Sender(event=EVENT, renderer=Renderer(profile), deliverer=deliverer, on_result=results.append)
    summary = run.run(jobs(3))
    assert summary.aborted is not None and summary.exit_code == ExitCode.NOPERM
    assert results == []


def test_a_reached_daily_quota_stops_the_batch_instead_of_retrying_every_row(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=FailNth(2, "550 5.4.5 Daily user sending quota exceeded."))
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(5))
    assert [r.status for r in results] == ["sent", "temporary"]
    assert summary.aborted is not None and summary.exit_code == ExitCode.TEMPFAIL
    assert "remaining messages were not sent" in summary.aborted.message
    assert [e.status for e in ledger.entries()] == ["sent", "temporary"]


def test_a_sender_refused_at_mail_from_stops_the_batch(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    refusal = "550 5.7.60 SMTP; Client does not have permissions to send as this sender"
    server = smtp_server(handler=MailFromReply(refusal))
    run, results = sender(profile_for(server, tls))
    summary = run.run(jobs(4))
    assert len(results) == 1 and summary.exit_code == ExitCode.NOPERM


def test_temporary_refusal_before_data_is_recorded_for_the_log(smtp_server: ServerFactory, tls: TLSFiles,
                                                                ledger: Ledger) -> None:
    busy = Greylist("customer1@client.test", reply="451 4.3.2 Please try again later")
    run, _ = sender(profile_for(smtp_server(handler=busy), tls), ledger, retries=1)
    run.run(jobs(1))
    assert [(e.status, e.reply) for e in ledger.entries(failed=True)] == [
        ("temporary", "451 4.3.2 Please try again later")]


def test_partly_refused_recipients_make_a_partial_result(smtp_server: ServerFactory, tls: TLSFiles,
                                                          ledger: Ledger) -> None:
    server = smtp_server(handler=RefuseRecipient("gone@client.test"))
    run, results = sender(profile_for(server, tls), ledger)
    job = make_job(EVENT, 1, to=["ok@client.test", "gone@client.test"], variables={
        "customer_name": "C", "invoice_number": "INV-9", "amount_due": "1", "due_date": "d"})
    summary = run.run([job])
    assert results[0].status == "partial" and "gone@client.test: 550 5.1.1" in results[0].reply
    assert summary.exit_code == ExitCode.DATAERR
    assert ledger.last_sent(ACCOUNT, results[0].key or "") is not None


def test_resend_after_allows_for_cron_jitter(smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    import sqlite3

    server = smtp_server()
    profile = profile_for(server, tls)
    week = timedelta(days=7)

    def last_sent(ago: timedelta) -> None:
        with sqlite3.connect(ledger.path) as db:
            db.execute("UPDATE messages SET created_at = ?", ((now() - ago).isoformat(),))

    sender(profile, ledger)[0].run(jobs(1))
    last_sent(week - timedelta(hours=2))
    assert sender(profile, ledger, resend_after=week)[0].run(jobs(1)).count("skipped") == 1
    last_sent(week - timedelta(minutes=10))
    assert sender(profile, ledger, resend_after=week)[0].run(jobs(1)).count("sent") == 1


def test_an_idempotency_template_with_unknown_fields_is_refused_before_sending(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    from xoromail_cli.errors import UsageError

    server = smtp_server()
    with pytest.raises(UsageError, match="unknown: colour"):
        sender(profile_for(server, tls), key_template="{invoice_number}-{colour}")[0].run(jobs(1))
    assert server.messages == []
    job = jobs(1)[0]
    assert idempotency_key(EVENT, job, "{invoice_number}-{days_overdue}") == (
        "overdue-invoice:INV-1-:customer1@client.test")


def test_a_greylisted_recipient_is_retried_alone_and_nobody_gets_two_copies(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=Greylist("late@client.test", times=1))
    run, results = sender(profile_for(server, tls), ledger)
    job = make_job(EVENT, 1, to=["early@client.test", "late@client.test"], variables=jobs(1)[0].variables)
    summary = run.run([job])
    assert results[0].status == "sent" and results[0].attempts == 2 and summary.exit_code == 0
    assert [m.recipients for m in server.messages] == [["early@client.test"], ["late@client.test"]]
    assert server.messages[0].data == server.messages[1].data


def test_a_recipient_still_greylisted_after_the_retries_is_a_temporary_partial(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=Greylist("late@client.test"))
    run, results = sender(profile_for(server, tls), ledger, retries=2)
    job = make_job(EVENT, 1, to=["early@client.test", "late@client.test"], variables=jobs(1)[0].variables)
    summary = run.run([job])
    assert results[0].status == "partial" and "late@client.test: 450" in results[0].reply
    assert summary.exit_code == ExitCode.TEMPFAIL
    assert [m.recipients for m in server.messages] == [["early@client.test"]]
    assert [(e.status, e.pending) for e in ledger.entries(failed=True)] == [("partial", ("late@client.test",))]


def test_a_message_whose_answer_was_lost_is_sent_again_in_the_same_run_as_a_possible_duplicate(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=AcceptThenDropNth(4))
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(6))
    assert summary.count("sent") == 6 and summary.exit_code == 0
    again = results[3]
    assert again.possible_duplicate and again.attempts == 2 and "possible duplicate" in again.reply
    assert again.to_json()["possible_duplicate"] is True
    assert not any(r.possible_duplicate for i, r in enumerate(results) if i != 3)
    delivered = Counter(r for m in server.messages for r in m.recipients)
    assert delivered["customer4@client.test"] == 2 and len(delivered) == 6
    assert ledger.interrupted(ACCOUNT) == []
    rows = [e for e in ledger.entries() if e.recipients == ("customer4@client.test",)]
    assert any("possible duplicate" in (e.reply or "") for e in rows) and any(e.status == "sent" for e in rows)


def test_a_message_left_in_flight_is_reported_then_sent_again(smtp_server: ServerFactory, tls: TLSFiles,
                                                              ledger: Ledger) -> None:
    server = smtp_server()
    profile = profile_for(server, tls)
    job = jobs(1)[0]
    ledger.begin(ACCOUNT, EVENT.name, idempotency_key(EVENT, job), job.recipients.envelope, "<lost@x>", 1)
    run, results = sender(profile, ledger)
    summary = run.run([job])
    assert [r.status for r in results] == ["interrupted", "sent"]
    assert results[0].message_id == "<lost@x>" and "may have been delivered" in results[0].reply
    assert summary.count("interrupted") == 1 and summary.exit_code == 0
    assert ledger.interrupted(ACCOUNT) == []
    assert len(server.messages) == 1


def test_a_rerun_completes_a_partial_delivery_for_the_owed_recipients_only(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    handler = Greylist("late@client.test")
    server = smtp_server(handler=handler)
    profile = profile_for(server, tls)
    job = make_job(EVENT, 1, to=["early@client.test", "late@client.test"], variables=jobs(1)[0].variables)
    first = sender(profile, ledger, retries=0)[0]
    assert first.run([job]).exit_code == ExitCode.TEMPFAIL
    [owed] = [e for e in ledger.entries() if e.status == "partial"]
    assert owed.pending == ("late@client.test",) and "late@client.test: 450" in (owed.reply or "")
    handler.refused = ""
    second = sender(profile, ledger)[0]
    assert second.run([job]).exit_code == 0
    assert [m.recipients for m in server.messages] == [["early@client.test"], ["late@client.test"]]
    third = sender(profile, ledger)[0]
    assert third.run([job]).count("skipped") == 1
    assert list(ledger.entries(failed=True)) == []


def test_a_clean_delivery_costs_two_ledger_commits(smtp_server: ServerFactory, tls: TLSFiles,
                                                   ledger: Ledger) -> None:
    statements: list[str] = []
    ledger._db.set_trace_callback(statements.append)  # observe, not alter: sqlite3's public tracing hook
    run, _ = sender(profile_for(smtp_server(), tls), ledger)
    run.run(jobs(1))
    writes = [s for s in statements if s.startswith(("INSERT", "UPDATE"))]
    assert len(writes) == 2


def two_recipients() -> SendJob:
    return make_job(EVENT, 1, to=["early@client.test", "late@client.test"], variables=jobs(1)[0].variables)


def test_a_run_stopped_during_the_back_off_leaves_the_owed_recipient_in_the_ledger(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    run, _ = sender(profile_for(smtp_server(handler=Greylist("late@client.test")), tls), ledger,
                    backoff=Backoff(base=1.0, sleep=interrupted))
    summary = run.run([two_recipients()])
    assert summary.exit_code == ExitCode.INTERRUPTED
    [row] = [e for e in ledger.entries() if e.status == "partial"]
    assert row.pending == ("late@client.test",) and "late@client.test: 450" in (row.reply or "")


def test_a_quota_refusal_for_one_recipient_keeps_it_owed_and_stops_the_batch(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    quota = Greylist("late@client.test", reply="550 5.4.5 Daily user sending quota exceeded.")
    run, results = sender(profile_for(smtp_server(handler=quota), tls), ledger)
    summary = run.run([two_recipients(), *jobs(2)])
    assert [r.status for r in results] == ["partial"] and results[0].attempts == 1
    assert summary.exit_code == ExitCode.TEMPFAIL and summary.aborted is not None
    assert next(e for e in ledger.entries() if e.status == "partial").pending == ("late@client.test",)


def test_mixed_refusals_of_every_recipient_are_a_permanent_failure_naming_both(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    class GoneAndLate(Greylist):
        async def handle_RCPT(self, server: object, session: object, envelope: object, address: str,
                              options: object) -> str:
            if address == "early@client.test":
                return "550 5.1.1 User unknown"
            return await super().handle_RCPT(server, session, envelope, address, options)

    run, results = sender(profile_for(smtp_server(handler=GoneAndLate("late@client.test")), tls), ledger,
                          retries=1)
    summary = run.run([two_recipients()])
    assert results[0].status == "failed" and summary.exit_code == ExitCode.DATAERR
    assert "early@client.test: 550 5.1.1" in results[0].reply and "late@client.test: 450" in results[0].reply
    assert results[0].attempts == 2


def test_the_failure_list_keeps_a_partial_with_a_permanent_refusal(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    class GoneAndLateOnce(Greylist):
        async def handle_RCPT(self, server: object, session: object, envelope: object, address: str,
                              options: object) -> str:
            if address == "gone@client.test":
                return "550 5.1.1 User unknown"
            return await super().handle_RCPT(server, session, envelope, address, options)

    run, results = sender(profile_for(smtp_server(handler=GoneAndLateOnce("late@client.test", times=1)), tls),
                          ledger)
    job = make_job(EVENT, 1, to=["early@client.test", "late@client.test", "gone@client.test"],
                   variables=jobs(1)[0].variables)
    summary = run.run([job])
    assert results[0].status == "partial" and summary.exit_code == ExitCode.DATAERR
    [needs_attention] = list(ledger.entries(failed=True))
    assert needs_attention.refused == ("gone@client.test",) and needs_attention.pending == ()


def test_owed_recipients_match_whatever_the_case(smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    handler = Greylist("Late@Client.test")
    server = smtp_server(handler=handler)
    profile = profile_for(server, tls)
    mixed = make_job(EVENT, 1, to=["early@client.test", "Late@Client.test"], variables=jobs(1)[0].variables)
    sender(profile, ledger, retries=0)[0].run([mixed])
    handler.refused = ""
    lower = make_job(EVENT, 1, to=["early@client.test", "late@client.test"], variables=jobs(1)[0].variables)
    assert sender(profile, ledger)[0].run([lower]).count("sent") == 1
    assert [m.recipients for m in server.messages] == [["early@client.test"], ["late@client.test"]]


def test_a_server_that_goes_away_mid_batch_is_temporary_and_the_rows_left_are_counted(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    """`postfix stop` after some messages: not a configuration problem, and the summary says what is left."""
    server = smtp_server()
    seen: list[int] = []

    def stop_after_three(recipients: int) -> None:
        seen.append(recipients)
        if len(seen) == 4:
            server.stop()

    run, _results = sender(profile_for(server, tls), ledger, before_delivery=stop_after_three, retries=1)
    summary = run.run(jobs(10), total=10)
    sent = summary.count("sent")  # 3, or 2 when the 4th is announced behind the 3rd (pipelining)
    assert sent in (2, 3) and summary.exit_code == ExitCode.TEMPFAIL
    assert summary.aborted is not None and "stopped answering" in summary.aborted.message
    assert "settings are right" in (summary.aborted.hint or "") and "re-run" in (summary.aborted.hint or "")
    assert summary.not_attempted == 10 - sent and f"{10 - sent} not attempted" in summary.line()
    assert len(server.messages) == sent and ledger.interrupted(ACCOUNT) == []
