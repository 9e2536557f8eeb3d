"""The next message prepared while the server works: lock-step SMTP prepares it while the server reads this
message's data; pipelined SMTP prepares the one after the announced next message while the replies are awaited.
Every promise of the ledger holds as before.

Each test checks what the server received, what the ledger says and in which order things happened; never how
long anything took.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, profile_for
from tests.support.engine import sender
from tests.support.pipelined import Pipelining
from tests.support.samples import jobs
from tests.support.servers import AcceptThenDropNth, DataReply, MailFromReply, delivered
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.sending.batch import SendJob
from xoromail_cli.services.smtp.transport import SmtpEndpoint, SmtpTransport

FIRST = Envelope(sender="billing@company.test", to=("a@client.test",), data=b"Subject: 1\r\n\r\none\r\n",
                 message_id="<1@x>")


def statuses(ledger: Ledger) -> Counter[str]:
    return Counter(entry.status for entry in ledger.entries())


def test_meanwhile_runs_once_after_the_in_flight_mark_and_the_data_and_before_the_reply_is_read(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    server = smtp_server()
    transport = SmtpTransport(SmtpEndpoint.from_profile(profile_for(server, tls)), PASSWORD)
    transport.open()
    assert not transport.pipelining
    order: list[str] = []
    delivery = transport.send_then(FIRST, lambda: order.append("mark"), None, lambda: order.append("meanwhile"))
    transport.close()
    assert delivery.ok and order == ["mark", "meanwhile"]
    assert [m.recipients for m in server.messages] == [["a@client.test"]]


def test_meanwhile_does_not_run_when_the_message_is_refused_before_its_data(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    server = smtp_server(handler=MailFromReply("550 5.7.1 sender refused"))
    transport = SmtpTransport(SmtpEndpoint.from_profile(profile_for(server, tls)), PASSWORD)
    transport.open()
    order: list[str] = []
    delivery = transport.send_then(FIRST, lambda: order.append("mark"), None, lambda: order.append("meanwhile"))
    transport.close()
    assert not delivery.ok and order == [] and not server.messages


def test_a_lock_step_batch_sends_each_message_once_and_records_each(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server()
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(12))
    assert summary.count("sent") == 12 and [r.row for r in results] == list(range(1, 13))
    assert set(delivered(server.handler).values()) == {1} and len(delivered(server.handler)) == 12
    assert statuses(ledger) == {"sent": 12}


def test_a_repeated_row_is_checked_against_the_ledger_after_the_first_is_recorded(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server()
    batch = jobs(3)
    batch.insert(2, batch[1])  # the same invoice twice in a row: not prepared early, skipped in its turn
    run, results = sender(profile_for(server, tls), ledger)
    run.run(batch)
    assert [r.status for r in results] == ["sent", "sent", "skipped", "sent"]
    assert set(delivered(server.handler).values()) == {1}


def test_a_refused_message_leaves_the_next_one_prepared_early_to_go_in_its_turn(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=DataReply("554 5.7.1 rejected as spam"))
    run, results = sender(profile_for(server, tls), ledger)
    run.run(jobs(3))
    assert [r.status for r in results] == ["failed", "failed", "failed"]
    assert statuses(ledger) == {"failed": 3}


def test_a_lost_answer_after_the_next_message_was_prepared_is_sent_again_once(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=AcceptThenDropNth(2))
    run, results = sender(profile_for(server, tls), ledger)
    run.run(jobs(4))
    assert [r.status for r in results] == ["sent"] * 4
    assert results[1].possible_duplicate and not results[2].possible_duplicate
    assert delivered(server.handler)["customer2@client.test"] == 2
    assert all(delivered(server.handler)[f"customer{n}@client.test"] == 1 for n in (1, 3, 4))


def test_a_reader_failing_while_the_next_row_is_taken_early_still_records_the_message_sent(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server()

    def breaks_after_two() -> Iterator[SendJob]:
        yield from jobs(2)
        raise RuntimeError("the batch reader broke")

    run, _ = sender(profile_for(server, tls), ledger)
    summary = run.run(breaks_after_two(), total=4)
    assert summary.aborted is not None and "RuntimeError" in summary.aborted.message
    assert summary.count("sent") == 2 and statuses(ledger) == {"sent": 2} and len(server.messages) == 2


def test_pipelined_a_row_repeating_the_one_two_places_before_is_skipped_not_sent_twice(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    """While message 1's replies are awaited, message 2 is announced and the row after it prepared: that row
    repeats message 1, not yet recorded as sent, so it is left to its turn, where the ledger says it went."""
    server = smtp_server(handler=Pipelining())
    batch = jobs(4)
    batch.insert(2, batch[0])
    run, results = sender(profile_for(server, tls), ledger)
    run.run(batch)
    assert [r.status for r in results] == ["sent", "sent", "skipped", "sent", "sent"]
    assert set(delivered(server.handler).values()) == {1} and len(delivered(server.handler)) == 4


def test_pipelined_a_long_batch_sends_each_message_once_in_row_order(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=Pipelining())
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(25))
    assert summary.count("sent") == 25 and [r.row for r in results] == list(range(1, 26))
    assert set(delivered(server.handler).values()) == {1} and statuses(ledger) == {"sent": 25}


def test_pipelined_a_reader_failing_while_a_row_is_taken_early_still_records_the_messages_sent(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=Pipelining())

    def breaks_after_three() -> Iterator[SendJob]:
        yield from jobs(3)
        raise RuntimeError("the batch reader broke")

    run, _ = sender(profile_for(server, tls), ledger)
    summary = run.run(breaks_after_three(), total=5)
    assert summary.aborted is not None and "RuntimeError" in summary.aborted.message
    sent = summary.count("sent")
    assert statuses(ledger) == {"sent": sent} and len(server.messages) == sent and sent >= 2
