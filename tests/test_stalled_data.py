"""A server that stops reading in the middle of a message's data cannot have accepted it: a server acts on a
message only once it has read its final CRLF . CRLF (RFC 5321 4.1.1.4). So such a message is a plain temporary
failure (retried, never in doubt, never held, never "a possible duplicate") and its ledger row says so.

The other side stays true elsewhere: a message written whole whose answer never comes is in doubt
(tests/test_sending.py DropNth and AcceptThenDropNth, tests/test_pipelining.py `data={3: "drop"}`,
tests/test_transport_contract.py `lost_after`, tests/test_relay_queue.py's hold under --no-retry-in-doubt).
The scripted servers here answer like a real one up to the 354, then read one line of the message and nothing
more: a message larger than the sockets' buffers stalls in the middle of its data, and the profile's 0.5 s
timeout ends the write. No wall time is asserted.
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, configure
from tests.support.engine import sender
from tests.support.misbehaving import BIG, FEATURES, PIPELINING, big_file, scripted, stops_reading
from tests.support.relay_helpers import RelayFactory, erp_message, relay, submit, wait_for
from tests.support.samples import EVENT, OVERDUE, smtp_profile
from xoromail_cli import config, credentials
from xoromail_cli.cli import app
from xoromail_cli.errors import ExitCode
from xoromail_cli.ledger.accounts import account_key
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.pacing import Backoff
from xoromail_cli.profile import Profile
from xoromail_cli.sending.batch import make_job

__all__ = ["relay"]  # the fixture, imported for pytest
ACCOUNT = account_key(USER)
def stalling_profile(port: int, tls: TLSFiles, security: str) -> Profile:
    return smtp_profile(name="default", email=USER, host="127.0.0.1", port=port, security=security,
                        display_name="Company Billing", ca_file=str(tls.ca_file), timeout=0.5)


@pytest.mark.parametrize(("ehlo", "security"), [(FEATURES, "none"), (PIPELINING, "none"),
                                                 (PIPELINING, "starttls")],
                         ids=["lock-step", "pipelining", "pipelining-over-tls"])
def test_a_message_stalled_in_the_middle_of_its_data_is_temporary_not_in_doubt(
        ehlo: bytes, security: str, tls: TLSFiles, tmp_path: Path, ledger: Ledger) -> None:
    attachment = str(big_file(tmp_path))
    jobs = [make_job(EVENT, 1, to=["ann@client.test"], attach=[attachment], variables={
        "customer_name": "Ann", "invoice_number": "INV-1", "amount_due": "10", "due_date": "2026-11-01"})]
    with scripted(stops_reading(ehlo, tls.server_context if security == "starttls" else None)) as server:
        run, results = sender(stalling_profile(server.port, tls, security), ledger, retries=1, retry_in_doubt=False)
        summary = run.run(jobs)
        tried = server.connections
    assert summary.exit_code == ExitCode.TEMPFAIL
    [result] = results
    assert result.status == "temporary" and result.attempts == 2 and tried == 2  # retried: not held for a person
    assert not result.in_doubt and not result.possible_duplicate
    assert "before its end" in result.reply and "took no data" in result.reply
    assert "may have accepted" not in result.reply and result.hint and "no duplicate" in result.hint
    assert ledger.interrupted(ACCOUNT) == []
    assert [entry.status for entry in ledger.entries()] == ["temporary", "temporary"]


def test_the_cli_reports_a_stalled_message_as_75_and_the_next_run_sends_it_once_without_a_duplicate_note(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    send = ["--config", str(config_path), "send", "--event", "overdue-invoice", "--to", "ann@client.test", *OVERDUE,
            "--attach", str(big_file(tmp_path)), "--retries", "1", "--retry-delay", "0", "--no-retry-in-doubt"]
    with scripted(stops_reading(FEATURES)) as stalling:
        config.save_profile(config_path, stalling_profile(stalling.port, tls, "none"))
        credentials.store_password("default", PASSWORD)
        first = runner.invoke(app, send)
        tried = stalling.connections
    assert first.exit_code == ExitCode.TEMPFAIL, first.output
    assert tried == 2 and "before its end" in first.output  # retried in the run, as any temporary failure
    assert "may have accepted" not in first.output and "in doubt" not in first.output
    good = smtp_server()
    configure(config_path, good, tls)
    second = runner.invoke(app, send)
    assert second.exit_code == 0, second.output
    assert "interrupted" not in second.output and "possible duplicate" not in second.output
    assert Counter(r for m in good.messages for r in m.recipients) == {"ann@client.test": 1}
    with Ledger(tmp_path / "home" / "state" / "xoromail" / "ledger.sqlite3") as ledger:
        assert ledger.interrupted(ACCOUNT) == []
        assert sorted(entry.status for entry in ledger.entries()) == ["sent", "temporary", "temporary"]


def test_with_in_doubt_retries_allowed_a_stalled_message_is_never_a_possible_duplicate(
        tls: TLSFiles, tmp_path: Path, ledger: Ledger) -> None:
    """With retries left and in-doubt retries allowed, a stalled message is still never "sent again (a possible
    duplicate)": every try is a plain one."""
    attachment = str(big_file(tmp_path))
    jobs = [make_job(EVENT, 1, to=["ann@client.test"], attach=[attachment], variables={
        "customer_name": "Ann", "invoice_number": "INV-1", "amount_due": "10", "due_date": "2026-11-01"})]
    with scripted(stops_reading(FEATURES)) as server:
        run, results = sender(stalling_profile(server.port, tls, "none"), ledger, retries=2,
                              backoff=Backoff(base=0.0, rng=random.Random(1)))
        run.run(jobs)
    assert results[0].attempts == 3 and not results[0].possible_duplicate
    assert not any("possible duplicate" in (entry.reply or "") for entry in ledger.entries())


def test_the_relay_retries_a_message_whose_upstream_stalls_mid_data_instead_of_holding_it(
        relay: RelayFactory, tls: TLSFiles) -> None:
    credentials.store_password("default", PASSWORD)
    with scripted(stops_reading()) as upstream:
        running = relay(stalling_profile(upstream.port, tls, "none"), retries=0, retry_in_doubt=False, timeout=0.5)
        submit(running.port, erp_message(1, attachment=random.Random(7).randbytes(BIG)))
        wait_for(lambda: len(running.logged("deferred")) >= 2, what="a second try")
        [spool_id] = running.spool.ids()
        state = running.spool.state(spool_id)
    assert not running.logged("held") and not running.logged("in-doubt")
    assert not state.in_doubt and not state.held and "before its end" in running.logged("deferred")[0]
