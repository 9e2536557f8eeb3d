from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from xoromail_cli.compose.mime import Attachment, build_message, encode_header
from xoromail_cli.errors import DataError


def parse(data: bytes):  # type: ignore[no-untyped-def]  # email's parser returns a loosely typed message
    return message_from_bytes(data, policy=policy.default)


def test_text_only_message_is_a_single_part() -> None:
    data = build_message(display_name="A", sender="a@x.test", to=["b@x.test"], subject="Hi", text="Hello\n")
    message = parse(data)
    assert message.get_content_type() == "text/plain" and message.get_content() == "Hello\r\n"
    assert message["Auto-Submitted"] == "auto-generated"


def test_lines_starting_with_dots_and_long_lines_survive(tmp_path: Path) -> None:
    text = ".leading dot\n" + "x" * 2000 + "\nend\n"
    message = parse(build_message(display_name="A", sender="a@x.test", to=["b@x.test"], subject="s", text=text))
    assert message.get_content().replace("\r\n", "\n") == text


def test_attachments_keep_bytes_names_and_types(tmp_path: Path) -> None:
    csv_file = tmp_path / "Ünïcode report.csv"
    csv_file.write_bytes(b"a,b\r\n1,2\r\n")
    data = build_message(display_name="A", sender="a@x.test", to=["b@x.test"], subject="s", text="t", html="<p>t</p>",
                         attachments=[Attachment.from_path(csv_file)])
    message = parse(data)
    [part] = list(message.iter_attachments())
    assert part.get_filename() == "Ünïcode report.csv" and part.get_content_type() == "text/csv"
    assert part.get_payload(decode=True) == b"a,b\r\n1,2\r\n"
    assert message.get_body(("html",)).get_content().strip() == "<p>t</p>"


def test_long_subjects_are_folded_not_broken() -> None:
    subject = "word " * 60
    encoded = encode_header("Subject", subject.strip())
    assert all(len(line) <= 78 for line in encoded.split(b"\r\n"))
    assert parse(encoded + b"\r\nbody")["Subject"] == subject.strip()


def test_header_values_with_line_breaks_never_reach_the_bytes() -> None:
    with pytest.raises(DataError):
        encode_header("Subject", "a\r\nBcc: x@evil.test")
    with pytest.raises(DataError):
        build_message(display_name="Evil\nBcc: x@evil.test", sender="a@x.test", to=["b@x.test"], subject="s",
                      text="t")


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def _encoded_words(data: bytes) -> list[bytes]:
    import re

    return re.findall(rb"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=", data.split(b"\r\n\r\n", 1)[0])


def test_a_long_non_ascii_display_name_is_split_into_short_encoded_words_on_short_lines() -> None:
    from email.header import decode_header, make_header

    name = "Überlänge Rechnungsabteilung der Müller & Söhne Gesellschaft mit beschränkter Haftung " * 12
    data = build_message(display_name=name.strip(), sender="billing@company.test", to=["b@x.test"], subject="s",
                         text="t")
    assert max(map(len, _lines(data))) <= 998
    assert _encoded_words(data) and all(len(word) <= 75 for word in _encoded_words(data))
    message = parse(data)
    assert message["From"].addresses[0].addr_spec == "billing@company.test"
    raw_from = data.split(b"\r\nTo:", 1)[0].removeprefix(b"From:").decode("ascii")
    assert str(make_header(decode_header(raw_from.replace("\r\n", "")))) == f"{name.strip()} <billing@company.test>"


def test_a_short_non_ascii_display_name_reads_back_exactly_with_the_email_package() -> None:
    data = build_message(display_name="Müller & Söhne GmbH, Zürich", sender="a@x.test", to=["b@x.test"],
                         subject="s", text="t")
    assert parse(data)["From"].addresses[0].display_name == "Müller & Söhne GmbH, Zürich"


def test_a_1100_character_subject_is_folded_below_998_octets_and_reads_back_as_typed() -> None:
    for subject in ("Reminder " * 122, "Erinnerung für Überweisung " * 41, "x" * 1100):
        data = build_message(display_name="A", sender="a@x.test", to=["b@x.test"], subject=subject.strip(),
                             text="t")
        assert max(map(len, _lines(data))) <= 998
        assert all(len(word) <= 75 for word in _encoded_words(data))
        assert parse(data)["Subject"] == subject.strip()


def test_ascii_that_looks_like_an_encoded_word_is_encoded_so_readers_show_it_as_typed() -> None:
    typed = "Invoice =?utf-8?b?SGFja2Vk?= for  you"
    data = build_message(display_name="=?utf-8?q?Bank?=", sender="a@x.test", to=["b@x.test"], subject=typed,
                         text="t")
    assert b"=?utf-8?b?SGFja2Vk?=" not in data and b"=?utf-8?q?Bank?=" not in data
    message = parse(data)
    assert message["Subject"] == typed
    assert message["From"].addresses[0].display_name == "=?utf-8?q?Bank?="


def test_a_long_recipient_list_is_folded_between_addresses() -> None:
    to = [f"customer{number}@client.test" for number in range(80)]
    data = build_message(display_name="A", sender="a@x.test", to=to, subject="s", text="t")
    assert max(map(len, _lines(data))) <= 78
    assert [address.addr_spec for address in parse(data)["To"].addresses] == to


def test_non_ascii_attachment_names_carry_a_name_fallback_beside_filename_star(tmp_path: Path) -> None:
    from email.header import decode_header, make_header

    name = "Überlänge Rechnung " + "ä" * 90 + ".pdf"
    path = tmp_path / name
    path.write_bytes(b"%PDF-1.4\n")
    data = build_message(display_name="A", sender="a@x.test", to=["b@x.test"], subject="s", text="t",
                         attachments=[Attachment.from_path(path)])
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert all(len(word) <= 75 for word in _encoded_words(data.split(b"Content-Transfer-Encoding: 7bit", 1)[1]))
    [part] = list(parse(data).iter_attachments())
    assert part.get_filename() == name
    raw_name = part.get_param("name", header="content-type")
    assert str(make_header(decode_header(str(raw_name)))) == name
    assert b"filename*0*=utf-8''" in data and b"filename*1*=" in data


def test_a_large_attachment_is_encoded_once_into_the_message(tmp_path: Path) -> None:
    import base64
    import os

    content = os.urandom(3 * 1024 * 1024 + 7)
    path = tmp_path / "archive.bin"
    path.write_bytes(content)
    data = build_message(display_name="A", sender="a@x.test", to=["b@x.test"], subject="s", text="t",
                         attachments=[Attachment.from_path(path)])
    [part] = list(parse(data).iter_attachments())
    assert part.get_payload(decode=True) == content
    body = data.split(b"Content-Transfer-Encoding: base64\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0]
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert base64.b64decode(body) == content
