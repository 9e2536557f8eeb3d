"""A message over the server's SIZE is refused before it goes; a 552 5.3.4 is a permanent data error."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from tests.support.common import ServerFactory, TLSFiles, profile_for
from tests.support.engine import sender, sqlite_ledger
from tests.support.samples import EVENT, jobs
from tests.support.servers import FailNth
from xoromail_cli.errors import ExitCode
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.local.sink import CaptureHandler
from xoromail_cli.sending.batch import make_job
from xoromail_cli.sending.results import MessageResult

LIMIT = 20_000


class SmallSize(CaptureHandler):
    """Announces `SIZE 20000` (as Postfix's message_size_limit would) and counts MAIL FROM commands."""

    def __init__(self) -> None:
        super().__init__()
        self.mail_from = 0

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        responses = await super().handle_EHLO(server, session, envelope, hostname, responses)
        return [f"250-SIZE {LIMIT}" if line[4:].startswith("SIZE") else line for line in responses]

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.mail_from += 1
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"


def _run(server_handler: CaptureHandler, smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path,
         attachment_size: int) -> tuple[list[MessageResult], int, Ledger]:
    profile = profile_for(smtp_server(handler=server_handler), tls)
    big = tmp_path / "scan.pdf"
    big.write_bytes(random.Random(3).randbytes(attachment_size))
    batch = [make_job(EVENT, 1, to=["customer1@client.test"], attach=[str(big)], variables={
        "customer_name": "C", "invoice_number": "INV-1", "amount_due": "10", "due_date": "2026-11-01"}),
        jobs(2)[1]]
    ledger = sqlite_ledger(tmp_path, "ledger.sqlite3")
    run, results = sender(profile, ledger)
    return results, run.run(batch).exit_code, ledger


def test_a_message_over_the_advertised_size_is_refused_before_mail_from(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> None:
    handler = SmallSize()
    results, exit_code, ledger = _run(handler, smtp_server, tls, tmp_path, attachment_size=30_000)
    too_big, small = results
    assert too_big.status == "failed" and too_big.attempts == 1 and too_big.exit_code == ExitCode.DATAERR
    assert "accepts at most" in too_big.reply and "20,000 bytes" in too_big.reply
    assert "smaller files" in (too_big.hint or "")
    assert small.status == "sent"
    assert handler.mail_from == 1 and len(handler.messages) == 1  # only the small one went on the wire
    assert exit_code == ExitCode.DATAERR
    assert sorted(entry.status for entry in ledger.entries()) == ["failed", "sent"]


def test_a_message_under_the_advertised_size_goes(smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> None:
    handler = SmallSize()
    results, exit_code, _ = _run(handler, smtp_server, tls, tmp_path, attachment_size=5_000)
    assert [r.status for r in results] == ["sent", "sent"] and exit_code == 0


def test_a_552_5_3_4_refusal_is_a_permanent_data_error_and_not_retried(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> None:
    handler = FailNth(1, "552 5.3.4 Message size exceeds fixed limit")
    results, exit_code, _ = _run(handler, smtp_server, tls, tmp_path, attachment_size=5_000)
    refused = results[0]
    assert refused.status == "failed" and refused.attempts == 1
    assert refused.exit_code == ExitCode.DATAERR and "552 5.3.4" in refused.reply
    assert "re-sending will not help" in (refused.hint or "")
    assert exit_code == ExitCode.DATAERR  # 65: a scheduler does not re-upload it every run


def test_once_the_limit_is_known_a_file_too_large_for_it_is_refused_by_its_size_before_it_is_read(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> None:
    handler = SmallSize()
    profile = profile_for(smtp_server(handler=handler), tls)
    big = tmp_path / "scan.pdf"
    with big.open("wb") as handle:  # sparse: 50 MB on paper, under the 112 MiB any service could take
        handle.truncate(50_000_000)
    variables = {"customer_name": "C", "invoice_number": "INV-1", "amount_due": "10", "due_date": "2026-11-01"}
    batch = [jobs(1)[0], make_job(EVENT, 2, to=["customer2@client.test"], attach=[str(big)], variables=variables)]
    run, results = sender(profile, sqlite_ledger(tmp_path, "ledger.sqlite3"))
    assert run.run(batch).exit_code == ExitCode.DATAERR
    sent, too_big = results
    assert sent.status == "sent"
    assert too_big.status == "failed" and too_big.exit_code == ExitCode.DATAERR
    assert "its attachments alone come to 68.4 MB" in too_big.reply and "20,000 bytes" in too_big.reply
    assert handler.mail_from == 1


def test_even_the_first_message_refuses_a_file_too_large_before_reading_it(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> None:
    """The connection opens before the first message with a large file, so SIZE is known before any read."""
    handler = SmallSize()
    profile = profile_for(smtp_server(handler=handler), tls)
    big = tmp_path / "scan.pdf"
    with big.open("wb") as handle:
        handle.truncate(50_000_000)
    variables = {"customer_name": "C", "invoice_number": "INV-1", "amount_due": "10", "due_date": "2026-11-01"}
    batch = [make_job(EVENT, 1, to=["customer1@client.test"], attach=[str(big)], variables=variables), jobs(2)[1]]
    run, results = sender(profile, sqlite_ledger(tmp_path, "ledger.sqlite3"))
    assert run.run(batch).exit_code == ExitCode.DATAERR
    too_big, sent = results
    assert too_big.status == "failed" and "its attachments alone come to 68.4 MB" in too_big.reply
    assert sent.status == "sent" and handler.mail_from == 1


def test_a_server_down_when_a_large_file_would_be_measured_is_met_by_the_attempt_as_ever(
        tls: TLSFiles, tmp_path: Path) -> None:
    from xoromail_cli.local.sink import SinkServer, free_port

    profile = profile_for(SinkServer(port=free_port()), tls)  # nothing listens there
    big = tmp_path / "scan.pdf"
    with big.open("wb") as handle:
        handle.truncate(2_000_000)
    variables = {"customer_name": "C", "invoice_number": "INV-1", "amount_due": "10", "due_date": "2026-11-01"}
    run, _ = sender(profile, sqlite_ledger(tmp_path, "ledger.sqlite3"))
    summary = run.run([make_job(EVENT, 1, to=["customer1@client.test"], attach=[str(big)], variables=variables)])
    assert summary.exit_code == ExitCode.UNAVAILABLE
    assert summary.aborted is not None and "refused" in summary.aborted.message
