"""`xoromail sink --maildir`: a bad folder is an error with a hint before anything listens, and what it
stores is what a local delivery would: LF line ends and the envelope, Bcc recipients included."""

from __future__ import annotations

import smtplib
from pathlib import Path

from typer.testing import CliRunner

from xoromail_cli.cli import app
from xoromail_cli.local.sink import CaptureHandler, SinkServer


def test_a_file_given_as_maildir_is_refused_with_exit_73(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "mail.txt"
    target.write_text("not a folder\n")
    result = runner.invoke(app, ["sink", "--port", "1", "--maildir", str(target)])
    assert result.exit_code == 73, result.output
    assert "is a file, not a folder" in " ".join(result.output.split()) and "Traceback" not in result.output


def test_a_maildir_that_cannot_be_made_is_refused_with_exit_73(runner: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x\n")
    result = runner.invoke(app, ["sink", "--port", "1", "--maildir", str(blocker / "Maildir")])
    assert result.exit_code == 73, result.output
    assert "cannot write to --maildir" in " ".join(result.output.split()) and "hint:" in result.output


def test_a_missing_or_empty_folder_becomes_a_maildir(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (empty, tmp_path / "a" / "b" / "Maildir"):
        CaptureHandler(maildir=folder)
        assert all((folder / sub).is_dir() for sub in ("cur", "new", "tmp"))


def test_stored_messages_have_lf_line_ends_and_keep_the_envelope(tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    data = b"From: a@company.test\r\nTo: b@customer.test\r\nSubject: Hi\r\n\r\nline one\r\nline two\r\n"
    with SinkServer(handler=CaptureHandler(maildir=maildir)) as server, \
            smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.sendmail("a@company.test", ["b@customer.test", "auditor@company.test"], data)
    [stored] = list((maildir / "new").iterdir())
    content = stored.read_bytes()
    assert b"\r\n" not in content
    assert content.startswith(b"Return-Path: <a@company.test>\nX-Original-To: b@customer.test, auditor@company.test\n")
    assert content.endswith(b"\n\nline one\nline two\n")
