"""SMTP PIPELINING against aiosmtpd servers that advertise it: fewer round trips, the same promises.

Each test checks what the server received and what the ledger says, never how long anything took.
"""

from __future__ import annotations

from collections import Counter

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, profile_for
from tests.support.engine import sender
from tests.support.pipelined import Pipelining, Scripted, wire_counter
from tests.support.samples import EVENT, jobs
from tests.support.servers import delivered
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.ledger.accounts import account_key
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.pacing import RateLimiter
from xoromail_cli.sending.batch import make_job
from xoromail_cli.services.smtp.transport import SmtpEndpoint, SmtpTransport


def statuses(ledger: Ledger) -> Counter[str]:
    return Counter(entry.status for entry in ledger.entries())


def test_a_pipelining_server_gets_about_one_flight_per_message_and_every_message_once(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=Pipelining())
    with wire_counter(server.port) as counter:
        run, _results = sender(profile_for(server, tls, port=counter.port), ledger)
        summary = run.run(jobs(30))
    assert summary.count("sent") == 30 and summary.exit_code == 0
    assert set(delivered(server.handler).values()) == {1} and len(delivered(server.handler)) == 30
    assert statuses(ledger) == {"sent": 30}
    assert counter.flights < 30 + 12  # lock-step needs 4 per message (120) plus the sign-in


def test_a_server_without_pipelining_keeps_the_lock_step_dialogue(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server()
    with wire_counter(server.port) as counter:
        run, _ = sender(profile_for(server, tls, port=counter.port), ledger)
        summary = run.run(jobs(10))
    assert summary.count("sent") == 10
    assert counter.flights >= 4 * 10


def test_pacing_keeps_each_message_back_until_its_slot(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    """With a rate, the next MAIL FROM never rides behind the previous data before its time."""
    slept: list[float] = []
    clock = [0.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    server = smtp_server(handler=Pipelining())
    with wire_counter(server.port) as counter:
        run, _ = sender(profile_for(server, tls, port=counter.port), ledger,
                        rate=RateLimiter(per_second=2.0, clock=lambda: clock[0], sleep=sleep))
        summary = run.run(jobs(10))
    assert summary.count("sent") == 10
    assert slept == [0.5] * 9
    assert counter.flights >= 2 * 10  # each message waits: its group, then its data


def test_one_refused_recipient_among_several_is_a_partial_delivery(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    refused = "nobody@client.test"
    server = smtp_server(handler=Scripted(rcpt={refused: "550 5.1.1 <nobody@client.test>: User unknown"}))
    assert isinstance(server.handler, Scripted)
    batch = jobs(4)
    batch[1] = make_job(EVENT, 2, to=["a@client.test", refused, "c@client.test"], variables=batch[1].variables)
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(batch)
    assert [r.status for r in results] == ["sent", "partial", "sent", "sent"]
    assert "nobody@client.test: 550 5.1.1" in results[1].reply
    got = delivered(server.handler)
    assert got["a@client.test"] == 1 and got["c@client.test"] == 1 and refused not in got
    assert summary.count("partial") == 1
    partial = next(e for e in ledger.entries() if e.status == "partial")
    assert partial.refused == (refused,) and partial.pending == ()


def test_a_4xx_on_mail_from_inside_a_group_is_retried_and_sent_once(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    # MAIL number 3 is the one pipelined behind message 2's data.
    server = smtp_server(handler=Scripted(mail={3: "451 4.7.1 Try again later"}))
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(6))
    assert summary.count("sent") == 6 and summary.exit_code == 0
    assert results[2].attempts == 2
    assert set(delivered(server.handler).values()) == {1} and len(delivered(server.handler)) == 6
    assert statuses(ledger) == {"sent": 6}


def test_a_421_in_the_middle_of_a_group_reconnects_and_sends_each_message_once(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=Scripted(rcpt={"customer4@client.test": "421 4.3.2 Service shutting down"}))
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(6))
    assert summary.count("sent") == 6 and summary.exit_code == 0
    assert results[3].attempts == 2
    assert set(delivered(server.handler).values()) == {1} and len(delivered(server.handler)) == 6
    assert len({m.peer for m in server.messages}) == 2
    assert statuses(ledger) == {"sent": 6}


def test_a_connection_dropped_in_the_middle_of_a_group_loses_nothing_and_doubts_nothing(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=Scripted(mail={4: "drop"}))
    run, _results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(6))
    assert summary.count("sent") == 6 and summary.exit_code == 0
    assert set(delivered(server.handler).values()) == {1} and len(delivered(server.handler)) == 6
    assert statuses(ledger) == {"sent": 6}


def test_a_connection_dropped_before_the_end_of_data_reply_is_sent_again_once_as_a_possible_duplicate(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=Scripted(data={3: "drop"}))
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(6))
    assert [r.status for r in results] == ["sent"] * 6
    assert results[2].possible_duplicate and not any(r.possible_duplicate for r in results[3:])
    assert summary.exit_code == 0 and ledger.interrupted(account_key(USER)) == []


def test_with_no_retry_in_doubt_a_drop_before_the_end_of_data_reply_leaves_one_message_in_doubt(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=Scripted(data={3: "drop"}))
    run, results = sender(profile_for(server, tls), ledger, retry_in_doubt=False)
    summary = run.run(jobs(6))
    assert [r.status for r in results] == ["sent", "sent", "temporary", "sent", "sent", "sent"]
    assert "may have accepted it" in results[2].reply
    assert statuses(ledger) == {"sent": 5, "in_flight": 1}
    assert summary.exit_code == 75


def test_a_4xx_at_the_end_of_data_with_the_next_message_announced_sends_nothing_twice(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    """Message 3's 451 arrives after message 4's commands got their 354: the session is hung up (a QUIT or
    RSET would become message data), message 3 is retried on a new connection, message 4 goes once."""
    server = smtp_server(handler=Scripted(data={3: "451 4.3.0 Temporary System Problem. Try again later."}))
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(6))
    assert summary.count("sent") == 6 and summary.exit_code == 0
    assert results[2].attempts == 2
    assert set(delivered(server.handler).values()) == {1} and len(delivered(server.handler)) == 6
    assert all(b"QUIT" not in m.data and b"RSET" not in m.data for m in server.messages)


def test_a_quota_stop_with_the_next_message_announced_sends_no_further_message(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    handler = Scripted(data={3: "550 5.4.5 Daily user sending quota exceeded."})
    server = smtp_server(handler=handler)
    run, results = sender(profile_for(server, tls), ledger)
    summary = run.run(jobs(6))
    assert [r.status for r in results] == ["sent", "sent", "temporary"]
    assert summary.aborted is not None
    assert len(server.messages) == 2 and handler.datas == 3


def test_a_slow_server_gets_its_replies_matched_in_order(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    refused = "customer3@client.test"
    server = smtp_server(handler=Scripted(rcpt={refused: "550 5.1.1 User unknown"}, delay=0.02))
    run, results = sender(profile_for(server, tls), ledger)
    run.run(jobs(5))
    assert [r.status for r in results] == ["sent", "sent", "failed", "sent", "sent"]
    assert "550 5.1.1" in results[2].reply
    assert sorted(delivered(server.handler)) == [f"customer{n}@client.test" for n in (1, 2, 4, 5)]


def test_a_repeated_row_is_checked_against_the_ledger_after_the_first_is_recorded(
        smtp_server: ServerFactory, tls: TLSFiles, ledger: Ledger) -> None:
    server = smtp_server(handler=Pipelining())
    batch = jobs(3)
    batch.insert(2, batch[1])  # the same invoice twice in a row
    run, results = sender(profile_for(server, tls), ledger)
    run.run(batch)
    assert [r.status for r in results] == ["sent", "sent", "skipped", "sent"]
    assert set(delivered(server.handler).values()) == {1}


def test_the_in_flight_mark_comes_after_the_354_and_before_the_data(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    handler = Scripted()
    server = smtp_server(handler=handler)
    transport = SmtpTransport(SmtpEndpoint.from_profile(profile_for(server, tls)), PASSWORD)
    transport.open()
    assert transport.pipelining
    first = Envelope(sender="billing@company.test", to=("a@client.test",), data=b"Subject: 1\r\n\r\none\r\n",
                     message_id="<1@x>")
    second = Envelope(sender="billing@company.test", to=("b@client.test",), data=b"Subject: 2\r\n\r\ntwo\r\n",
                      message_id="<2@x>")
    seen: list[tuple[str, int, int]] = []
    assert transport.send_then(first, lambda: seen.append(("first", handler.mails, handler.datas)), second).ok
    assert transport.send_then(second, lambda: seen.append(("second", handler.mails, handler.datas)), None).ok
    transport.close()
    # first's mark: its DATA answered, no message yet; second's: its MAIL and DATA already answered
    assert seen == [("first", 1, 0), ("second", 2, 1)]
    assert [m.recipients for m in server.messages] == [["a@client.test"], ["b@client.test"]]


def test_the_trace_shows_each_pipelined_command_and_never_the_password(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    server = smtp_server(handler=Pipelining())
    trace: list[tuple[str, str]] = []
    transport = SmtpTransport(SmtpEndpoint.from_profile(profile_for(server, tls)), PASSWORD,
                              trace=lambda direction, text: trace.append((direction, text)))
    transport.open()
    envelope = Envelope(sender="billing@company.test", to=("a@client.test", "b@client.test"),
                        data=b"Subject: t\r\n\r\nx\r\n",
                        message_id="<t@x>")
    assert transport.send(envelope).ok
    transport.close()
    sent = [text for direction, text in trace if direction == "→"]
    start = sent.index("MAIL FROM:<billing@company.test>")
    assert sent[start:start + 5] == ["MAIL FROM:<billing@company.test>", "RCPT TO:<a@client.test>",
                                     "RCPT TO:<b@client.test>", "DATA", sent[start + 4]]
    assert sent[start + 4].startswith("<message data")
    assert all(PASSWORD not in text for _, text in trace)
