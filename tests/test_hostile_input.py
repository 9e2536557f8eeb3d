"""Hostile batch files: poison rows, attachments from elsewhere, control characters in header values."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import ServerFactory, TLSFiles, configure
from tests.support.samples import OVERDUE
from xoromail_cli.addresses import check_header_value
from xoromail_cli.cli import app
from xoromail_cli.compose.events import EVENTS
from xoromail_cli.errors import DataError, ExitCode, NoInputError
from xoromail_cli.sending.batch import InvalidRow, SendJob, jobs_from_file, make_job

EVENT = EVENTS["overdue-invoice"]
VALUES = {"customer_name": "Ann", "invoice_number": "INV-1", "amount_due": "9.50", "due_date": "2026-11-01"}


def jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def row(number: int, **changes: object) -> dict[str, object]:
    return {"to": f"c{number}@client.test", **VALUES, **changes}


def test_a_lone_surrogate_is_refused_at_the_check_with_its_row_and_the_rest_are_sent(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls)
    batch = tmp_path / "rows.jsonl"
    batch.write_text(json.dumps(row(1)) + "\n" + '{"to": "c2@client.test", "customer_name": "\\ud800", '
                     '"invoice_number": "INV-2", "amount_due": "1", "due_date": "2026-11-01"}\n'
                     + json.dumps(row(3)) + "\n", encoding="utf-8")
    stopped = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(batch)])
    assert stopped.exit_code == ExitCode.DATAERR, stopped.output
    assert "row 2" in stopped.output and "surrogate" in stopped.output
    assert server.messages == []
    skipped = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(batch),
                                  "--skip-invalid"])
    assert sorted(r for m in server.messages for r in m.recipients) == ["c1@client.test", "c3@client.test"]
    assert "Traceback" not in skipped.output


def test_a_non_utf8_var_on_the_command_line_is_refused_not_a_traceback(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls)
    env = {**os.environ, "XOROMAIL_PASSWORD": "x"}
    command = [os.fsencode(str(Path(sys.executable).with_name("xoromail"))), *map(os.fsencode, base), b"send",
               b"--event", b"overdue-invoice", b"--to", b"c@client.test", *map(os.fsencode, OVERDUE),
               b"--var", b"customer_name=M\xfcller"]
    result = subprocess.run(command, env=env, capture_output=True, timeout=60, check=False)
    assert result.returncode == ExitCode.DATAERR, result.stderr
    assert b"Traceback" not in result.stderr and b"not valid UTF-8" in result.stderr
    assert server.messages == []


def test_nul_in_a_body_variable_and_vt_ff_in_header_values_are_refused() -> None:
    with pytest.raises(DataError, match="NUL"):
        make_job(EVENT, 1, to=["c@client.test"], variables={**VALUES, "customer_name": "A\x00B"})
    for value in ("Invoice\x0bBcc: x@evil.test", "Invoice\x0cX", "A\x85B", "A\u2028B", "A\x1bB"):
        with pytest.raises(DataError, match="control character"):
            check_header_value("Subject", value)
    assert check_header_value("Subject", "tab\tok") == "tab\tok"


BIDI = ("\u202e", "\u202a", "\u202d", "\u200e", "\u200f", "\u2066", "\u2067", "\u2068", "\u2069", "\ufeff",
        "\u061c")


def test_invisible_direction_and_format_characters_are_refused_in_header_values() -> None:
    for char in BIDI:
        with pytest.raises(DataError, match=f"direction or format character \\(U\\+{ord(char):04X}\\)"):
            check_header_value("Subject", f"Invoice {char}fdp.exe")
    assert check_header_value("Subject", "Rechnung für Ægir, שלום, مرحبا") == "Rechnung für Ægir, שלום, مرحبا"


def test_a_bidi_override_in_a_subject_variable_is_refused_at_the_check_with_its_row_and_column(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls)
    batch = jsonl(tmp_path / "rows.jsonl", [row(1), row(2, invoice_number="INV-2 \u202efdp.exe"), row(3)])
    stopped = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(batch)])
    assert stopped.exit_code == ExitCode.DATAERR, stopped.output
    assert "row 2" in stopped.output and "invoice_number" in stopped.output and "U+202E" in stopped.output
    assert "\u202e" not in stopped.output and server.messages == []
    runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(batch), "--skip-invalid"])
    assert sorted(r for m in server.messages for r in m.recipients) == ["c1@client.test", "c3@client.test"]


def test_a_bidi_override_in_the_senders_name_is_refused(runner: CliRunner, config_path: Path, tls: TLSFiles) -> None:
    base = configure(config_path, None, tls, display_name="Billing \u202eKCAB")
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "c@client.test", *OVERDUE,
                                 "--dry-run"])
    assert result.exit_code == ExitCode.CONFIG, result.output  # a settings file's value: the file and its line
    assert "xoromail.toml:4:" in result.output
    assert "display_name contains an invisible direction or format character (U+202E)" in result.output


def test_bidi_characters_in_body_data_reach_the_terminal_escaped(
        runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    base = configure(config_path, None, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "c@client.test", "--dry-run",
                                 "--var", "customer_name=Ann \u202eKCAB\u2066x\u2069", *OVERDUE[2:]])
    assert result.exit_code == 0, result.output
    assert not any(char in result.output for char in BIDI)
    assert "Ann \\u202eKCAB\\u2066x\\u2069" in result.output


def attachment_rows(tmp_path: Path, *paths: str) -> list[SendJob | InvalidRow]:
    batch = jsonl(tmp_path / "batch" / "rows.jsonl", [row(n, attach=p) for n, p in enumerate(paths, 1)])
    return list(jobs_from_file(EVENT, batch, {}))


@pytest.fixture
def batch_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "batch"
    (folder / "invoices").mkdir(parents=True)
    (folder / "invoices" / "INV-1.pdf").write_bytes(b"%PDF-1.4 invoice")
    (tmp_path / "secret.txt").write_text("not for mailing", encoding="utf-8")
    (folder / "escape.pdf").symlink_to(tmp_path / "secret.txt")
    (folder / "inside.pdf").symlink_to(folder / "invoices" / "INV-1.pdf")
    return folder


def test_attachments_in_a_batch_stay_inside_its_folder(tmp_path: Path, batch_folder: Path) -> None:
    items = attachment_rows(tmp_path, "invoices/INV-1.pdf", "inside.pdf", "../secret.txt",
                            str(tmp_path / "secret.txt"), "escape.pdf", "/proc/self/environ",
                            "../../../../../../proc/self/environ")
    assert [type(item).__name__ for item in items] == ["SendJob", "SendJob"] + ["InvalidRow"] * 5
    reasons = [item.error.message for item in items if isinstance(item, InvalidRow)]
    assert "'..'" in reasons[0] and "absolute" in reasons[1] and "outside" in reasons[2]
    assert all(item.error.exit_code == ExitCode.DATAERR for item in items if isinstance(item, InvalidRow))


def test_attach_dir_allows_absolute_paths_inside_it_only(tmp_path: Path, batch_folder: Path) -> None:
    batch = jsonl(tmp_path / "rows.jsonl", [row(1, attach=str(batch_folder / "invoices" / "INV-1.pdf")),
                                            row(2, attach="/proc/self/environ")])
    first, second = jobs_from_file(EVENT, batch, {}, attach_dir=batch_folder)
    assert isinstance(first, SendJob) and isinstance(second, InvalidRow)


def test_a_command_line_attach_stays_as_given_but_never_a_fifo_or_proc(tmp_path: Path) -> None:
    own = tmp_path / "elsewhere.pdf"
    own.write_bytes(b"%PDF")
    assert make_job(EVENT, 0, to=["c@client.test"], variables=VALUES, attach=[str(own)]).attachments
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    for path in (str(fifo), "/proc/self/environ", "/dev/zero"):
        with pytest.raises((DataError, NoInputError)):
            make_job(EVENT, 0, to=["c@client.test"], variables=VALUES, attach=[path])


def test_a_huge_attachment_is_refused_by_its_size_before_any_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.pdf"
    with huge.open("wb") as handle:  # sparse: 1 GiB on paper, nothing on disk
        handle.truncate(1024 ** 3)
    huge.chmod(0)  # unreadable: the refusal can only come from its size (as root, the message still says)
    with pytest.raises(DataError, match="at most"):
        make_job(EVENT, 0, to=["c@client.test"], variables=VALUES, attach=[str(huge)])


@pytest.mark.parametrize("payload", [
    "{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% set x = [] %}{{ x.append(1) }}",
    "{{ ''|attr('__class__') }}",
    "{{ '{0.__class__.__mro__}'.format(customer_name) }}",
    "{% include '/etc/passwd' %}",
    "{% import '/etc/passwd' as secrets %}{{ secrets }}",
    "{% extends '/etc/passwd' %}",
])
def test_a_template_reaching_for_internals_fails_with_its_file_and_line_and_runs_nothing(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path, payload: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    base = configure(config_path, smtp_server(), tls)
    folder = isolated_environment / "config" / "xoromail" / "templates" / "overdue-invoice"
    folder.mkdir(parents=True)
    (folder / "body.txt").write_text(f"Dear {{{{ customer_name }}}},\n{payload}\n", encoding="utf-8")
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "c@client.test",
                                 *OVERDUE, "--dry-run"])
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "body.txt:2:" in result.output.replace("\n", "")
    assert not (tmp_path / "PWNED").exists()


def test_a_template_that_is_a_fifo_is_refused_not_waited_on(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path) -> None:
    base = configure(config_path, None, tls)
    folder = isolated_environment / "config" / "xoromail" / "templates" / "overdue-invoice"
    folder.mkdir(parents=True)
    os.mkfifo(folder / "body.txt")
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "c@client.test",
                                 *OVERDUE, "--dry-run"])
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "not a regular file" in result.output


def test_attach_dir_through_the_cli_and_only_with_a_batch(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        batch_folder: Path) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls)
    batch = jsonl(tmp_path / "elsewhere" / "rows.jsonl", [row(1, attach="invoices/INV-1.pdf")])
    sent = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(batch),
                               "--attach-dir", str(batch_folder)])
    assert sent.exit_code == 0, sent.output
    [part] = list(server.messages[0].parsed().iter_attachments())
    assert part.get_content() == b"%PDF-1.4 invoice"
    alone = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "c@client.test", *OVERDUE,
                                "--attach-dir", str(batch_folder)])
    assert alone.exit_code == ExitCode.USAGE and "--attach-dir goes with --batch" in alone.output


def test_json_output_carries_control_characters_escaped_and_decodes_to_the_same_text(
        capsys: pytest.CaptureFixture[str]) -> None:
    from xoromail_cli.cli.console import print_json_line

    value = "spam\x1b[2J\x9b2J\x07done"
    print_json_line({"reply": value})
    printed = capsys.readouterr().out
    assert not any(code in printed for code in ("\x1b", "\x9b", "\x07"))
    assert json.loads(printed)["reply"] == value


def test_a_json_line_nested_a_hundred_thousand_deep_is_a_data_error_not_a_traceback(
        runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    batch = tmp_path / "rows.jsonl"
    batch.write_text(json.dumps(row(1)) + "\n" + '{"to": "c2@client.test", "customer_name": '
                     + "[" * 100_000 + "]" * 100_000 + "}\n", encoding="utf-8")
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(batch), "--dry-run"])
    assert result.exit_code == ExitCode.DATAERR, result.output
    assert "line 2: values nested too deeply" in " ".join(result.output.split())


@pytest.mark.parametrize("swap", ["symlink to /proc/self/environ", "fifo", "a file moved in from outside"])
def test_an_attachment_swapped_after_the_check_is_not_read(tmp_path: Path, batch_folder: Path, swap: str) -> None:
    from xoromail_cli.compose.mime import build_message

    os.environ["XOROMAIL_TEST_CANARY"] = "canary-4711"
    [job] = attachment_rows(tmp_path, "invoices/INV-1.pdf")
    assert isinstance(job, SendJob)
    checked = batch_folder / "invoices" / "INV-1.pdf"
    checked.unlink()
    if swap == "fifo":
        os.mkfifo(checked)
    elif swap == "a file moved in from outside":
        (tmp_path / "secret.txt").rename(checked)
    else:
        checked.symlink_to("/proc/self/environ")
    try:
        with pytest.raises(DataError, match="was replaced after the batch was checked"):
            build_message(display_name="Billing", sender="billing@company.test", to=["c@client.test"],
                          subject="Invoice", text="see attached", attachments=job.attachments)
    finally:
        del os.environ["XOROMAIL_TEST_CANARY"]


def test_a_csv_value_over_the_field_limit_names_its_line_and_no_quote(tmp_path: Path) -> None:
    batch = tmp_path / "rows.csv"
    batch.write_text("to,customer_name,invoice_number,amount_due,due_date\n"
                     "c1@client.test,Ann,INV-1,1,2026-11-01\n"
                     f"c2@client.test,{'A' * 200_000},INV-2,1,2026-11-01\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        list(jobs_from_file(EVENT, batch, {}))
    assert "line 3: a value is longer than 131,072 characters" in caught.value.message
    assert "close the quote" not in (caught.value.hint or "")


@pytest.mark.parametrize("target", ["/proc/self/environ", "outside"])
def test_a_template_that_links_out_of_the_templates_folder_is_refused_not_mailed(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path, tmp_path: Path,
        target: str) -> None:
    base = configure(config_path, None, tls)
    folder = isolated_environment / "config" / "xoromail" / "templates" / "overdue-invoice"
    folder.mkdir(parents=True)
    if target == "outside":
        (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY----- canary-4711", encoding="utf-8")
        target = str(tmp_path / "key.pem")
    (folder / "body.txt").symlink_to(target)
    (folder / "subject.txt").symlink_to(folder / "body.txt")
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "c@client.test",
                                 *OVERDUE, "--dry-run"], env={"XOROMAIL_PASSWORD": "canary-4711"})
    assert result.exit_code == ExitCode.CONFIG, result.output
    assert "leads out of the templates folder" in " ".join(result.output.split())
    assert "canary" not in result.output


def test_a_template_linked_to_another_inside_the_folder_is_used(
        runner: CliRunner, tls: TLSFiles, config_path: Path, isolated_environment: Path) -> None:
    base = configure(config_path, None, tls)
    folder = isolated_environment / "config" / "xoromail" / "templates" / "overdue-invoice"
    folder.mkdir(parents=True)
    (folder.parent / "shared.txt").write_text("Dear {{ customer_name }}, shared text\n", encoding="utf-8")
    (folder / "body.txt").symlink_to(folder.parent / "shared.txt")
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "c@client.test",
                                 *OVERDUE, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Dear Ann, shared text" in result.output
