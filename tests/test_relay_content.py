"""What the relay takes in and passes on: line ends, long lines, sizes, the From policy, reused Message-IDs.

A real smtplib client submits (raw DATA where smtplib would mend the bytes itself); a local aiosmtpd is the
upstream, and what it received is read back.
"""

from __future__ import annotations

import email
import re
import smtplib
import threading
from email import policy
from typing import Any

import pytest

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, profile_for
from tests.support.relay_helpers import (
    RELAY_PASSWORD,
    RELAY_USER,
    RelayFactory,
    erp_message,
    raw_data,
    relay,
    submit,
    wait_for,
)
from xoromail_cli import credentials
from xoromail_cli.local.sink import CaptureHandler
from xoromail_cli.relay.upstream import learn_max_size

__all__ = ["relay"]  # the fixture, imported for pytest
HEAD = (f"From: Company Billing <{USER}>\r\nTo: customer@client.test\r\nSubject: Invoice\r\n"
        "Message-ID: <{number}@company.test>\r\n").replace("{USER}", USER)


def lenient_lines(data: bytes) -> list[bytes]:
    """The lines an upstream that ends a line at CR, LF or CRLF would read (after aiosmtpd, which ends lines
    at CRLF only, received exactly one message: what it read must be what a lenient one reads)."""
    return re.split(rb"\r\n|\r|\n", data)


def test_a_bare_cr_is_refused_and_a_bare_lf_smuggling_attempt_arrives_as_one_message(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    head = HEAD.replace("{number}", "cr").encode()
    code, text = raw_data(running.port, head + b"\r\nHello\r.\rMAIL FROM:<x@evil.test>\rDATA\rsmuggled\r")
    assert code == 550 and text.startswith(b"5.6.0") and b"bare CR" in text
    assert not running.spool.ids()
    smuggle = b"Hello\n.\nMAIL FROM:<x@evil.test>\nRCPT TO:<victim@client.test>\nDATA\nSubject: smuggled\n\nhi\n"
    head = HEAD.replace("{number}", "lf").encode()
    assert raw_data(running.port, head + b"\n" + smuggle)[0] == 250
    wait_for(lambda: bool(running.logged("delivered")), what="the delivery")
    [got] = upstream.messages
    assert lenient_lines(got.data) == got.data.split(b"\r\n"), "every upstream reads the same lines"
    assert got.parsed().get_content().splitlines()[1] == ".", "the dot line arrived dot-stuffed, as content"


def test_a_long_7bit_html_line_is_taken_and_delivered_quoted_printable_in_lines_of_998_at_most(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    html = b"<html><body><p>" + b"Rechnung f\xc3\xbcr Ihr Projekt. " * 110 + b"</p></body></html>"
    assert len(html) > 3000
    head = HEAD.replace("{number}", "long").encode() + (b"MIME-Version: 1.0\r\nContent-Type: text/html; "
                                                        b"charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n")
    assert raw_data(running.port, head + b"\r\n" + html + b"\r\n")[0] == 250
    wait_for(lambda: len(upstream.messages) == 1, what="the delivery")
    data = upstream.messages[0].data
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert parsed["Content-Transfer-Encoding"] == "quoted-printable"
    assert parsed.get_payload(decode=True) == html + b"\r\n"
    assert b"=0D" not in data, "the text's line end a hard line break"


class SmallServer(CaptureHandler):
    """An upstream that takes 20,000 bytes at most (its EHLO says SIZE 20000)."""

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        return [("250-SIZE 20000" if line.startswith("250-SIZE") else line) for line in responses]


def test_size_is_what_the_service_takes_and_a_larger_message_is_refused_at_mail_or_after_data(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server(handler=SmallServer())
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    assert learn_max_size(running.profile, running.server, running.log) == 20000
    with smtplib.SMTP("127.0.0.1", running.port, timeout=20) as client:
        client.login(RELAY_USER, RELAY_PASSWORD)
        assert client.esmtp_features["size"] == "20000"
        code, text = client.mail(USER, ["SIZE=30000"])
        assert code == 552 and text.startswith(b"5.3.4")
    code, text = raw_data(running.port, HEAD.replace("{number}", "big").encode() + b"\r\n" + b"x" * 76 * 400)
    assert code == 552 and text.startswith(b"5.3.4") and b"20,000" in text
    assert not running.spool.ids() and not upstream.messages
    submit(running.port, erp_message(3))
    wait_for(lambda: len(upstream.messages) == 1, what="a message of a size the service takes")


def test_a_reused_message_id_with_another_body_is_delivered_and_the_same_message_twice_once(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    first = erp_message(4)
    corrected = erp_message(4)
    corrected.replace_header("Message-ID", first["Message-ID"])
    corrected.set_content("Dear customer,\n\nthe corrected invoice INV-4: 90.00 instead of 100.00.\n")
    submit(running.port, first)
    wait_for(lambda: len(upstream.messages) == 1, what="the first invoice")
    submit(running.port, corrected)
    wait_for(lambda: len(upstream.messages) == 2, what="the corrected invoice under the same Message-ID")
    submit(running.port, corrected)  # the ERP retries after a lost 250
    wait_for(lambda: bool(running.logged("already-delivered")), what="the retry to be recognised")
    assert len(upstream.messages) == 2 and first["Message-ID"] in running.logged("already-delivered")[0]
    assert b"corrected" in upstream.messages[1].data


def test_the_from_policy_covers_sender_and_resent_from_and_a_nul_is_a_clear_550(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    running = relay(profile_for(smtp_server(), tls))
    for header in ("Sender", "Resent-From"):
        head = HEAD.replace("{number}", header).encode() + f"{header}: Someone <someone@else.test>\r\n".encode()
        code, text = raw_data(running.port, head + b"\r\nbody\r\n")
        assert code == 550 and b"someone@else.test" in text and header.encode() in text
    rewriting = relay(profile_for(smtp_server(), tls), rewrite=True)
    head = f"From: Billing\0 <{USER}>\r\nTo: customer@client.test\r\nSubject: x\r\n".encode()
    code, text = raw_data(rewriting.port, head + b"\r\nbody\r\n")
    assert code == 550 and text.startswith(b"5.6.0") and b"NUL" in text
    assert not running.spool.ids() and not rewriting.spool.ids()


def test_a_to_folded_over_many_lines_is_taken_while_another_client_submits_and_a_huge_one_refused(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    folded = b"\r\n".join(f" user{n}@client.test,".encode() for n in range(20_000))
    head = f"From: {USER}\r\nTo: first@client.test,\r\n".encode() + folded + b"\r\n last@client.test\r\n"
    errors: list[BaseException] = []

    def other() -> None:
        try:
            submit(running.port, erp_message(5))
        except BaseException as exc:  # noqa: BLE001  # handed to the test below
            errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    assert raw_data(running.port, head + b"Subject: folded\r\n\r\nbody\r\n", to="first@client.test")[0] == 250
    thread.join(60)
    assert not errors
    huge = b"\r\n".join(f" user{n}@client.test,".encode() for n in range(40_000))
    code, text = raw_data(running.port, f"From: {USER}\r\nTo: a@client.test,\r\n".encode() + huge
                          + b"\r\n b@client.test\r\n\r\nbody\r\n", to="a@client.test")
    assert code == 552 and text.startswith(b"5.3.4") and b"header section" in text
    wait_for(lambda: len(upstream.messages) == 2, what="both messages")


class OptionsSeen(CaptureHandler):
    """Keeps each message's MAIL FROM parameters beside it."""

    def __init__(self) -> None:
        super().__init__()
        self.options: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.options.append(list(envelope.mail_options))
        return await super().handle_DATA(server, session, envelope)


def test_an_8bit_message_goes_upstream_with_body_8bitmime_and_a_7bit_one_without(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    handler = OptionsSeen()
    upstream = smtp_server(handler=handler)
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    head = HEAD.replace("{number}", "8bit").encode() + (b"MIME-Version: 1.0\r\nContent-Type: text/plain; "
                                                        b"charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
    assert raw_data(running.port, head + "\r\nGrüße aus der Buchhaltung\r\n".encode())[0] == 250
    wait_for(lambda: len(upstream.messages) == 1, what="the 8-bit message")
    submit(running.port, erp_message(6))
    wait_for(lambda: len(upstream.messages) == 2, what="the 7-bit message")
    assert handler.options == [["BODY=8BITMIME"], []]
    assert "Grüße".encode() in upstream.messages[0].data


def test_a_header_line_over_998_octets_is_folded_so_an_smtp_upstream_takes_it(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    """A To of many recipients or a long Subject on one line (a program that does not fold) must not get a 250
    and then be refused by the upstream's line limit."""
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    recipients = [f"customer{n}@client.test" for n in range(60)]
    subject = " ".join(f"word{n}" for n in range(300))
    head = (f"From: {USER}\r\nTo: " + ", ".join(recipients) + f"\r\nSubject: {subject}\r\n"
            "Message-ID: <long-header@company.test>\r\n").encode()
    assert len(head.split(b"\r\n")[1]) > 998
    assert raw_data(running.port, head + b"\r\nbody\r\n", to=recipients[0])[0] == 250
    wait_for(lambda: bool(running.logged("delivered") or running.logged("failed")), what="the delivery")
    assert running.logged("delivered"), running.logged("failed")
    data = upstream.messages[0].data
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert parsed["Subject"] == subject and len(parsed["To"].addresses) == 60
    unbroken = (HEAD.replace("{number}", "unbroken") + "X-Token: " + "x" * 1200 + "\r\n\r\nbody\r\n").encode()
    code, text = raw_data(running.port, unbroken)
    assert code == 550 and text.startswith(b"5.6.0") and b"X-Token header" in text


def test_line_ends_and_the_long_line_check_agree_with_a_line_by_line_reading() -> None:
    """The C-speed versions (a window jumped per step, `replace`) against the plain definition, on lines of
    every length around the limit, with and without a last line end, CRLF and bare LF."""
    import random

    from xoromail_cli.relay.mending import MendRefused, crlf_line_ends, has_long_line

    def reference(body: bytes, limit: int) -> bool:
        lines = body.split(b"\r\n")
        return any(len(line) > limit for line in lines)

    generator = random.Random(19)
    for _ in range(3000):
        limit = generator.choice([1, 2, 5, 998])
        lengths = [generator.choice([0, 1, limit - 1, limit, limit + 1, limit + 2, generator.randint(0, 2 * limit)])
                   for _ in range(generator.randint(0, 6))]
        body = b"\r\n".join(b"x" * max(0, length) for length in lengths)
        if generator.random() < 0.5:
            body += b"\r\n"
        assert has_long_line(body, 0, limit) == reference(body, limit), (limit, lengths)
        mixed = body.replace(b"\r\n", b"\n", generator.randint(0, 3))
        assert crlf_line_ends(mixed) == body
    for bare in (b"a\rb", b"a\r", b"\ra\r\n", b"a\r\r\n"):
        with pytest.raises(MendRefused):
            crlf_line_ends(bare)


def dotnet_message(subject: str, text: str, *, second: int) -> bytes:
    """What .NET's SmtpClient sends: no Message-ID, a Date written at each Send and a fresh MIME boundary
    (`--boundary_N_<guid>`) around a text part and a PDF."""
    import uuid

    boundary = f"--boundary_{second}_{uuid.uuid4()}"
    return (f"MIME-Version: 1.0\r\nFrom: {USER}\r\nTo: customer@client.test\r\n"
            f"Date: 7 Dec 2026 10:00:{second:02d} +0000\r\nSubject: {subject}\r\n"
            f"Content-Type: multipart/mixed;\r\n boundary={boundary}\r\n\r\n\r\n--{boundary}\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            f"{text}\r\n--{boundary}\r\nContent-Type: application/pdf; name=INV-7.pdf\r\n"
            "Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment\r\n\r\n"
            f"JVBERi0xLjQK\r\n--{boundary}--\r\n").encode()


def test_a_message_without_message_id_submitted_twice_is_delivered_once_and_another_one_too(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    """.NET's SmtpClient sends no Message-ID; retried after a lost 250 (its Send again: a new Date, a new
    boundary), the same invoice must not reach the customer twice; a different invoice must."""
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    assert raw_data(running.port, dotnet_message("Invoice INV-7", "Please pay INV-7.", second=1))[0] == 250
    wait_for(lambda: len(upstream.messages) == 1, what="the first invoice")
    assert raw_data(running.port, dotnet_message("Invoice INV-7", "Please pay INV-7.", second=41))[0] == 250
    wait_for(lambda: bool(running.logged("already-delivered")), what="the retry to be recognised")
    assert raw_data(running.port, dotnet_message("Invoice INV-8", "Please pay INV-8.", second=42))[0] == 250
    wait_for(lambda: len(upstream.messages) == 2, what="the other invoice")
    first, other = (message.parsed()["Message-ID"] for message in upstream.messages)
    assert first != other
    [already] = running.logged("already-delivered")
    assert first in already
    assert b"INV-8" in upstream.messages[1].data


def test_the_content_digest_ignores_new_boundaries_and_dates_but_not_the_content() -> None:
    from xoromail_cli.relay.outcomes import content_digest

    def flat(text: str, date: str) -> bytes:
        message = erp_message(9, attachment=b"%PDF-1.4 " + text.encode())
        message["Date"] = date
        return message.as_bytes(policy=policy.SMTP)

    one, again = flat("a", "Mon, 7 Dec 2026 10:00:01 +0000"), flat("a", "Mon, 7 Dec 2026 10:01:41 +0000")
    assert re.search(rb'boundary="([^"]+)"', one) and one.split(b"\r\n\r\n", 1)[1] != again.split(b"\r\n\r\n", 1)[1]
    assert content_digest(one) == content_digest(again)
    assert content_digest(one) != content_digest(flat("b", "Mon, 7 Dec 2026 10:00:01 +0000"))
