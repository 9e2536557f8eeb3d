"""The relay keeps a message as pieces written one after another to the spool file, never joined (issue 19:
memory about twice the messages in flight): the file holds exactly the bytes the joined form held."""

from __future__ import annotations

import base64
import email
import random
import tracemalloc
from email import policy
from pathlib import Path

import pytest

from xoromail_cli.relay.long_lines import long_line_in
from xoromail_cli.relay.mending import has_long_line
from xoromail_cli.relay.message import SenderPolicy, Taken, accept_message, take_message
from xoromail_cli.relay.spool import Spool

SENDER = "billing@company.test"
POLICY = SenderPolicy(mailbox=SENDER)
RCPTS = ("customer@client.test", "audit@company.test")
HEAD = (b"From: Billing <billing@company.test>\r\nTo: customer@client.test\r\nBcc: audit@company.test\r\n"
        b"Subject: Invoice INV-19\r\n")
MIME = b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n'
PDF = base64.b64encode(bytes(range(256)) * 40)


def _part(header: bytes, body: bytes) -> bytes:
    return b"--B\r\n" + header + b"\r\n" + body + b"\r\n"


MESSAGES = {
    "plain": HEAD + b"Message-ID: <p@company.test>\r\n\r\nHello\r\n.dot line\r\n",
    "bare LF": (HEAD + b"Message-ID: <lf@company.test>\r\n\r\nHello\nthere\n").replace(b"\r\n", b"\n"),
    "no Message-ID": HEAD + b"\r\nHello\r\n",
    "headers only": HEAD + b"Message-ID: <h@company.test>\r\n",
    "long base64": HEAD + MIME + b"\r\n" + _part(b"Content-Type: text/plain\r\n", b"hi")
    + _part(b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n", PDF) + b"--B--\r\n",
    "long 7bit and preamble": HEAD + MIME + b"\r\n" + b"p" * 2000 + b"\r\n"
    + _part(b"Content-Type: text/html\r\n", b"<p>" + b"Rechnung " * 400 + b"</p>\r\nshort\r\n" + b"y" * 5000)
    + b"--B--\r\n" + b"e" * 1500 + b"\r\n",
    "long quoted-printable": HEAD + b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + b"f=C3=BCr Ihr Projekt. " * 300 + b"\r\n",
}


def _file_bytes(spool: Spool, spool_id: str) -> bytes:
    data = (spool.root / "queue" / f"{spool_id}.msg").read_bytes()
    return data.partition(b"\n")[2]


@pytest.mark.parametrize("name", list(MESSAGES))
def test_the_spool_file_holds_the_pieces_in_order_and_equals_the_joined_message(name: str, tmp_path: Path) -> None:
    received = bytearray(MESSAGES[name])
    taken = take_message(received, SENDER, RCPTS, POLICY)
    joined = accept_message(bytes(received), SENDER, RCPTS, POLICY)
    spool = Spool(tmp_path / "spool")
    spool_id = spool.put(taken.envelope, pieces=taken.pieces)
    written = _file_bytes(spool, spool_id)
    assert written == b"".join(taken.pieces) == joined.data
    assert taken.size == len(written) and taken.envelope.data == b""
    at = 0
    for piece in taken.pieces:  # each piece where it belongs: in order, one after another
        assert written[at:at + len(piece)] == bytes(piece)
        at += len(piece)
    loaded = spool.load(spool_id).envelope
    assert loaded.data == written and (loaded.to, loaded.cc, loaded.bcc) == (joined.to, joined.cc, joined.bcc)
    assert loaded.message_id == joined.message_id and loaded.sender == joined.sender
    assert b"\nBcc:" not in written and not has_long_line(written) and written.count(b"\r") == written.count(b"\r\n")


def test_the_plain_message_is_kept_byte_for_byte_but_its_bcc_and_its_body_is_not_copied(tmp_path: Path) -> None:
    received = bytearray(MESSAGES["plain"])
    taken = take_message(received, SENDER, RCPTS, POLICY)
    assert any(isinstance(piece, memoryview) and piece.obj is received for piece in taken.pieces)
    spool = Spool(tmp_path / "spool")
    spool_id = spool.put(taken.envelope, pieces=taken.pieces)
    assert _file_bytes(spool, spool_id) == bytes(received).replace(b"Bcc: audit@company.test\r\n", b"")
    assert taken.envelope.bcc == ("audit@company.test",)


def test_mended_pieces_keep_what_a_reader_gets(tmp_path: Path) -> None:
    taken = take_message(bytearray(MESSAGES["long base64"]), SENDER, RCPTS, POLICY)
    assert len(taken.pieces) > 3
    spool = Spool(tmp_path / "spool")
    message = email.message_from_bytes(_file_bytes(spool, spool.put(taken.envelope, pieces=taken.pieces)),
                                       policy=policy.default)
    attachment = [part for part in message.walk() if part.get_content_type() == "application/pdf"]
    assert attachment[0].get_payload(decode=True) == bytes(range(256)) * 40


def _keep(data: bytearray, tmp_path: Path) -> tuple[Taken, int]:
    tracemalloc.start()
    try:
        taken = take_message(data, SENDER, RCPTS, POLICY)
        Spool(tmp_path / "spool").put(taken.envelope, pieces=taken.pieces)
        return taken, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_large_message_is_kept_without_one_more_copy_of_it(tmp_path: Path) -> None:
    data = bytearray(HEAD + b"Message-ID: <l@company.test>\r\n\r\n" + (b"x" * 76 + b"\r\n") * 200_000)
    taken, peak = _keep(data, tmp_path)
    assert taken.size == len(data) - len(b"Bcc: audit@company.test\r\n")
    assert peak < len(data) // 4, f"{peak:,} bytes allocated to keep {len(data):,}"


def _large(kind: str) -> bytearray:
    if kind == "base64":
        blob = base64.b64encode(random.Random(19).randbytes(6_000_000))
        return bytearray(HEAD + MIME + b"\r\n" + _part(b"Content-Type: application/pdf\r\n"
                                                       b"Content-Transfer-Encoding: base64\r\n", blob) + b"--B--\r\n")
    line = (b"f=C3=BCr Ihr Projekt. " * 10_000)[:200_000]
    return bytearray(HEAD + b"Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
                     b"\r\n\r\n" + b"\r\n".join([line] * 40) + b"\r\n")


@pytest.mark.parametrize("kind", ["base64", "quoted-printable"])
def test_a_mended_large_message_is_kept_with_at_most_one_more_copy(kind: str, tmp_path: Path) -> None:
    data = _large(kind)
    taken, peak = _keep(data, tmp_path)
    assert not long_line_in(list(taken.pieces))
    room = len(data) * 1.1 + 6 * 2**20  # the mended copy, and a few 1 MiB blocks under way (the joined form: 2x)
    assert peak < room, f"{peak:,} bytes allocated to keep {len(data):,}"


def test_long_lines_are_found_across_pieces_as_in_their_join() -> None:
    chooser = random.Random(5)
    for _ in range(400):
        lengths = [chooser.choice((0, 1, 500, 996, 997, 998, 999, 1000, 3000)) for _ in range(chooser.randint(1, 6))]
        lines = [b"z" * length for length in lengths]
        whole = b"\r\n".join(lines) + chooser.choice((b"", b"\r\n", b"\r"))
        cuts = sorted(chooser.randint(0, len(whole)) for _ in range(chooser.randint(0, 5)))
        pieces: list[bytes | memoryview] = []
        for start, end in zip([0, *cuts], [*cuts, len(whole)], strict=True):
            pieces.append(memoryview(whole)[start:end] if chooser.random() < 0.5 else whole[start:end])
        assert long_line_in(pieces) == has_long_line(whole), (lines, cuts)
