from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from xoromail_cli.errors import DataError
from xoromail_cli.mime import Attachment, build_message, encode_header


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
