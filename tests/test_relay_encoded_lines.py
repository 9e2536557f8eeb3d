"""Long lines the relay must not pass on: inside base64 and quoted-printable parts and in a multipart's preamble
and epilogue. Each message goes through a real relay to a strict upstream (aiosmtpd with its default line limit,
which answers `500 Line too long` to a line over 1,000 octets): the relay's `250` must mean delivered.
"""

from __future__ import annotations

import base64
import email
import quopri
from email import policy
from email.message import EmailMessage

import pytest

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, profile_for
from tests.support.relay_helpers import InProcessRelay, RelayFactory, raw_data, relay, wait_for
from xoromail_cli import credentials
from xoromail_cli.local.sink import SinkServer

__all__ = ["relay"]  # the fixture, imported for pytest
BOUNDARY = "=_erp_7f3a"
PDF = bytes(range(256)) * 40  # 10,240 bytes: 13,656 base64 characters


def multipart(number: str, *parts: bytes, preamble: bytes = b"", epilogue: bytes = b"") -> bytes:
    head = (f"From: Company Billing <{USER}>\r\nTo: customer@client.test\r\nSubject: Invoice {number}\r\n"
            f"Message-ID: <{number}@company.test>\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"\r\n\r\n').encode()
    body = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return head + preamble + body + b"--" + BOUNDARY.encode() + b"--\r\n" + epilogue


TEXT = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nPlease find invoice INV-19 attached.\r\n"


def delivered(running: InProcessRelay, upstream: SinkServer) -> EmailMessage:
    """The one message the strict upstream received, its lines checked against the limit."""
    wait_for(lambda: bool(running.logged("delivered") or running.logged("failed") or running.logged("deferred")),
             what="the delivery")
    assert running.logged("delivered"), running.lines
    [got] = upstream.messages
    assert max(len(line) for line in got.data.split(b"\r\n")) <= 998
    message = email.message_from_bytes(got.data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_a_base64_attachment_written_on_one_line_is_rewrapped_and_arrives_intact(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    one_line = base64.b64encode(PDF)
    attachment = (b"Content-Type: application/pdf; name=INV-19.pdf\r\nContent-Transfer-Encoding: base64\r\n"
                  b"Content-Disposition: attachment; filename=INV-19.pdf\r\n\r\n" + one_line)
    assert raw_data(running.port, multipart("b64", TEXT, attachment))[0] == 250
    parsed = delivered(running, upstream)
    [text, pdf] = parsed.iter_parts()
    assert pdf.get_content() == PDF and pdf.get_filename() == "INV-19.pdf"
    assert "invoice INV-19" in text.get_content()
    lines = upstream.messages[0].data.split(b"\r\n")
    assert one_line[:76] in lines and one_line[76:152] in lines, "re-wrapped at 76, not decoded and re-encoded"


def test_a_base64_part_with_a_long_line_that_is_not_base64_is_refused_not_accepted_and_failed(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    broken = (b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
              + base64.b64encode(PDF)[:2000] + b"<not base64!>" + base64.b64encode(PDF)[:2000])
    code, text = raw_data(running.port, multipart("broken", TEXT, broken))
    assert code == 550 and text.startswith(b"5.6.0") and b"base64" in text
    assert not running.spool.ids() and not upstream.messages


def test_quoted_printable_with_over_long_lines_is_decoded_and_encoded_again(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    """An encoder that writes quoted-printable without soft line breaks: each line of the HTML on one line."""
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    html = ("<html><body><p>" + "Rechnung für Ihr Projekt, Betrag = 100 €. " * 60 + "</p>\r\n<p>Danke</p>"
            "</body></html>\r\n").encode()
    encoded = b"\r\n".join(quopri.encodestring(line, quotetabs=False).replace(b"=\n", b"")
                           for line in html.split(b"\r\n"))
    assert max(len(line) for line in encoded.split(b"\r\n")) > 2000 and quopri.decodestring(encoded) == html
    part = (b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            + encoded)
    assert raw_data(running.port, multipart("qp", TEXT, part))[0] == 250
    parsed = delivered(running, upstream)
    [_, got] = parsed.iter_parts()
    assert got["Content-Transfer-Encoding"] == "quoted-printable"
    assert got.get_content().replace("\r\n", "\n") == html.decode().replace("\r\n", "\n")


def test_a_long_line_in_the_preamble_or_epilogue_is_dropped_and_the_parts_arrive(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    preamble = b"This is a multi-part message in MIME format.\r\n" + b"p" * 1500 + b"\r\n"
    epilogue = b"e" * 1200 + b"\r\nend of message\r\n"
    attachment = (b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                  + base64.encodebytes(PDF).replace(b"\n", b"\r\n").rstrip())
    assert raw_data(running.port, multipart("pre", TEXT, attachment, preamble=preamble, epilogue=epilogue))[0] == 250
    parsed = delivered(running, upstream)
    data = upstream.messages[0].data
    assert b"This is a multi-part message in MIME format." in data and b"end of message" in data
    assert b"p" * 100 not in data and b"e" * 100 not in data
    [_, pdf] = parsed.iter_parts()
    assert pdf.get_content() == PDF


def leaves(data: bytes) -> list[tuple[str, bytes]]:
    """Each leaf part's type and decoded content, as the email package reads them (text line ends as LF)."""
    found: list[tuple[str, bytes]] = []
    for part in email.message_from_bytes(data, policy=policy.compat32).walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            text = part.get_content_maintype() == "text"
            found.append((part.get_content_type(), payload.replace(b"\r\n", b"\n") if text else payload))
    return found


def test_nested_parts_a_forwarded_message_and_a_long_part_header_keep_their_content() -> None:
    """The in-place walk against the email package's reading of the same message: every leaf's content the
    same, no line over 998; a boundary that begins another one's text is not taken for it."""
    from xoromail_cli.relay.long_lines import short_lines

    long_html = b"<p>" + b"Zahlbar bis 31.12. " * 100 + b"</p>\r\nfin\r\n"
    inner = (b'Content-Type: multipart/alternative; boundary="in"\r\n\r\n--in\r\n'
             b"Content-Type: text/plain\r\n\r\nplain\r\n--in\r\nContent-Type: text/html; charset=utf-8\r\n"
             b"Content-Transfer-Encoding: 8bit\r\n\r\n" + long_html + b"--in--\r\n")
    forwarded = (b"Content-Type: message/rfc822\r\n\r\nFrom: a@b.test\r\nSubject: old\r\nMIME-Version: 1.0\r\n"
                 b"Content-Type: text/plain\r\n\r\n" + b"q" * 1500 + b"\r\n")
    named = (b"Content-Type: application/pdf;\r\n name=\"" + b"INV-19 " * 200 + b'.pdf"\r\n'
             b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(PDF))
    decoy = TEXT.replace(b"attached.", b"attached.\r\n--" + BOUNDARY.encode() + b"x is not a boundary")
    data = multipart("nested", decoy, inner, forwarded, named, b"\r\nno header at all " + b"z" * 1200)
    head, _, _ = data.partition(b"\r\n\r\n")
    mended = short_lines(head + b"\r\n", data, len(head) + 4)
    assert max(len(line) for line in mended.split(b"\r\n")) <= 998
    before, after = leaves(data), leaves(mended)
    assert [kind for kind, _ in after] == [kind for kind, _ in before] == [
        "text/plain", "text/plain", "text/html", "text/plain", "application/pdf", "text/plain"]
    assert after == before
    assert b"q" * 1500 not in mended and after[3][1] == b"q" * 1500 + b"\n"


def test_a_message_of_more_parts_than_the_walk_takes_is_refused_when_a_long_line_is_left() -> None:
    """A million one-character parts would cost a million steps and chunks: past 10,000 boundary lines the rest
    is kept as it is, and a line over 998 octets left in it refused (never a 250 and a failure upstream)."""
    from xoromail_cli.relay.long_lines import MAX_BOUNDARIES, short_lines
    from xoromail_cli.relay.mending import MendRefused

    head = b'From: a@company.test\r\nContent-Type: multipart/mixed; boundary="x"\r\n'
    many = b"\r\n--x" * (MAX_BOUNDARIES + 10) + b"\r\n--x\r\n\r\n" + b"y" * 2000 + b"\r\n--x--\r\n"
    with pytest.raises(MendRefused, match=r"^550 5\.6\.0 .* over 10,000 parts"):
        short_lines(head, head + b"\r\n" + many, len(head) + 2)
    fewer = b"\r\n--x" * 100 + b"\r\n--x\r\n\r\n" + b"y" * 2000 + b"\r\n--x--\r\n"
    mended = short_lines(head, head + b"\r\n" + fewer, len(head) + 2)
    assert max(len(line) for line in mended.split(b"\r\n")) <= 998 and mended.count(b"--x\r\n") == 101
