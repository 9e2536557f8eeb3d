"""One suite of cases run against every transport (services/base.Transport), each over its real local service.

A case a service cannot produce is not skipped: its harness declares the capability absent and the test
asserts that declaration (and what the transport says about it), so a new service adds one harness and
inherits every case.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import pytest

from tests.support.common import USER, TLSFiles
from tests.support.contract_harnesses import (
    HARNESSES,
    REFUSED,
    SIZE_LIMIT,
    TRANSPORTS,
    Case,
    Harness,
    harness_for,
    missing_harnesses,
)
from xoromail_cli import services
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services.base import ConnectionLostError, Delivery, Transport

MESSAGE_ID = "<inv-1001.contract@company.test>"
Outcome = Delivery | ConnectionLostError | StageFailedError


@pytest.fixture(params=TRANSPORTS)
def harness(request: pytest.FixtureRequest, tls: TLSFiles, tmp_path: Path) -> Iterator[Harness]:
    made = harness_for(request.param, request, tls, tmp_path)
    yield made
    stop = getattr(made, "stop", None)
    if stop is not None:
        stop()


def test_every_registered_service_has_a_contract_harness() -> None:
    assert missing_harnesses() == []
    assert set(HARNESSES) >= set(services.REGISTRY) and set(TRANSPORTS) <= set(HARNESSES)


def envelope(*to: str, cc: tuple[str, ...] = ("carol@example.com",), bcc: tuple[str, ...] = (),
             body: bytes = b"Please find invoice 1001.\r\n") -> Envelope:
    recipients = to or ("alice@example.com",)
    copies = b"Cc: " + ", ".join(cc).encode() + b"\r\n" if cc else b""
    data = (b"From: Company Billing <billing@company.test>\r\nTo: " + ", ".join(recipients).encode() +
            b"\r\n" + copies + b"Subject: Invoice 1001\r\nMessage-ID: " + MESSAGE_ID.encode() +
            b"\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body)
    return Envelope(sender=USER, to=recipients, data=data, message_id=MESSAGE_ID, cc=cc, bcc=bcc)


def attempt(harness: Harness, case: Case, message: Envelope, marks: list[str]) -> tuple[Transport, Outcome]:
    """Open and send as the sender does. Only the contract's outcomes are caught: any other exception (a
    library's own) fails the test, which is the "no library exception escapes" case for every case."""
    harness.arrange(case)
    transport = harness.transport()
    try:
        transport.open()
        harness.after_open()
        return transport, transport.send(message, before_data=lambda: marks.append("data"))
    except (ConnectionLostError, StageFailedError) as raised:
        return transport, raised
    finally:
        transport.close()


def test_accepted_message_arrives_byte_for_byte_with_its_message_id(harness: Harness) -> None:
    marks: list[str] = []
    message = envelope()
    _, outcome = attempt(harness, "accept", message, marks)
    assert isinstance(outcome, Delivery) and outcome.ok and not outcome.refused, outcome
    assert marks == ["data"]
    [arrived] = harness.arrived()
    assert arrived.data == message.data
    assert message_from_bytes(arrived.data)["Message-ID"] == MESSAGE_ID
    if arrived.recipients is not None:
        assert arrived.recipients == ("alice@example.com", "carol@example.com")


def test_one_refused_recipient_is_named_alone_where_the_service_refuses_per_recipient(harness: Harness) -> None:
    marks: list[str] = []
    transport, outcome = attempt(harness, "refuse_one", envelope("alice@example.com", REFUSED), marks)
    assert isinstance(outcome, Delivery) and outcome.ok, outcome
    assert transport.subset_retries is harness.caps.subset_retries
    if harness.caps.per_recipient_refusal:
        assert list(outcome.refused) == [REFUSED] and not outcome.refused[REFUSED].temporary
        assert "5.1.1" in outcome.refused[REFUSED].reply
        assert [a.recipients for a in harness.arrived()] == [("alice@example.com", "carol@example.com")]
        assert harness.caps.subset_retries  # a refused subset is only useful if it can be retried alone
    else:  # the service takes the whole message or none of it: never a refused subset
        assert outcome.refused == {}
        [arrived] = harness.arrived()
        assert arrived.recipients in (None, ("alice@example.com", REFUSED, "carol@example.com"))


def test_every_recipient_refused_is_permanent_with_exit_code_and_hint(harness: Harness) -> None:
    marks: list[str] = []
    _, outcome = attempt(harness, "refuse_all", envelope(REFUSED, cc=()), marks)
    if not harness.caps.refuses:
        assert isinstance(outcome, Delivery) and outcome.ok  # the outbox refuses nobody
        return
    assert isinstance(outcome, Delivery) and outcome.status == "failed", outcome
    assert outcome.exit_code == ExitCode.DATAERR and not outcome.stops_batch and not outcome.unknown
    assert outcome.hint and "address" in outcome.hint
    assert harness.arrived() == []
    if harness.caps.per_recipient_refusal:
        assert set(outcome.refused) == {REFUSED}


def test_a_temporary_refusal_is_temporary_with_the_services_retry_after(harness: Harness) -> None:
    marks: list[str] = []
    _, outcome = attempt(harness, "temporary", envelope(), marks)
    assert isinstance(outcome, Delivery), outcome
    if not harness.caps.refuses:
        assert outcome.ok and harness.caps.retry_after is None
        return
    assert outcome.status == "temporary" and outcome.exit_code == ExitCode.TEMPFAIL, outcome
    assert outcome.retry_after == pytest.approx(harness.caps.retry_after) if harness.caps.retry_after else \
        outcome.retry_after is None
    assert outcome.hint


def test_a_connection_lost_before_the_data_is_not_committed(harness: Harness) -> None:
    marks: list[str] = []
    _, outcome = attempt(harness, "lost_before", envelope(), marks)
    if not harness.caps.refuses:
        assert isinstance(outcome, Delivery) and outcome.ok  # no connection to lose
        return
    assert isinstance(outcome, ConnectionLostError), outcome
    assert outcome.committed is False and outcome.exit_code == ExitCode.TEMPFAIL
    assert marks == (["data"] if harness.caps.before_data_when_unreachable else [])
    assert harness.arrived() == []


def test_a_connection_lost_after_the_data_is_committed_and_in_doubt(harness: Harness) -> None:
    marks: list[str] = []
    _, outcome = attempt(harness, "lost_after", envelope(), marks)
    if not harness.caps.refuses:
        assert isinstance(outcome, Delivery) and outcome.ok
        return
    assert isinstance(outcome, ConnectionLostError), outcome
    assert outcome.committed is True and outcome.exit_code == ExitCode.TEMPFAIL
    assert marks == ["data"]


def test_a_message_too_large_is_refused_permanently_with_exit_65(harness: Harness) -> None:
    marks: list[str] = []
    big = envelope(body=(b"x" * 78 + b"\r\n") * (SIZE_LIMIT // 40))
    transport, outcome = attempt(harness, "too_large", big, marks)
    if not harness.caps.size_limit:
        assert transport.max_message_size is None
        assert isinstance(outcome, Delivery) and outcome.ok
        return
    assert isinstance(transport.max_message_size, int) and transport.max_message_size > SIZE_LIMIT
    assert isinstance(outcome, Delivery) and outcome.status == "failed", outcome
    assert outcome.exit_code == ExitCode.DATAERR and not outcome.stops_batch
    assert outcome.hint
    assert harness.arrived() == []


def test_bcc_never_travels_as_a_header_to_recipients(harness: Harness) -> None:
    marks: list[str] = []
    message = envelope(bcc=("audit@company.test",))
    transport, outcome = attempt(harness, "accept", message, marks)
    assert isinstance(outcome, Delivery) and outcome.ok, outcome
    [arrived] = harness.arrived()
    if harness.caps.bcc == "review":  # a file for a person to review, never delivered: who else gets it shows
        assert arrived.recipients is None and message_from_bytes(arrived.data)["Bcc"] == "audit@company.test"
        return
    assert b"audit@company.test" not in arrived.data and message_from_bytes(arrived.data)["Bcc"] is None
    assert arrived.recipients == ("alice@example.com", "carol@example.com", "audit@company.test")
    if harness.caps.bcc == "header":  # sent with data_with_bcc(); the provider strips it, as the fake shows
        assert arrived.raw == message.data_with_bcc() and transport.subset_retries is False
    else:
        assert arrived.raw == message.data


def test_an_unreachable_service_fails_open_with_a_named_stage(harness: Harness) -> None:
    marks: list[str] = []
    _, outcome = attempt(harness, "open_fails", envelope(), marks)
    assert isinstance(outcome, StageFailedError), outcome
    assert outcome.stage == harness.caps.open_stage and outcome.hint and marks == []
    assert outcome.exit_code in (ExitCode.UNAVAILABLE, ExitCode.TEMPFAIL, ExitCode.CANTCREAT)
