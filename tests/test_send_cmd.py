"""`xoromail send` through the CLI: checks before sending, one connection, dry run, outbox, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, configure
from tests.support.samples import OVERDUE, csv_batch
from tests.support.servers import RefuseRecipient, connections
from xoromail_cli.cli import app


def test_one_message_is_sent_and_reported(runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles,
                                          config_path: Path) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "ann@client.test",
                                 "--cc", "boss@client.test", "--bcc", "audit@company.test", *OVERDUE])
    assert result.exit_code == 0, result.output
    assert "sent ann@client.test" in result.output and "1 sent" in result.output
    received = server.messages[0]
    assert sorted(received.recipients) == ["ann@client.test", "audit@company.test", "boss@client.test"]
    message = received.parsed()
    assert message["Cc"] == "boss@client.test" and message["Bcc"] is None
    assert message["Subject"] == "Payment reminder: invoice INV-1 is overdue"


def test_batch_of_1000_rows_arrives_over_one_connection(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--rate", "100000/s",
                                 "--batch", str(csv_batch(tmp_path / "rows.csv", 1000))])
    assert result.exit_code == 0, result.output
    assert "1000 sent, 0 failed, 0 skipped" in result.output
    assert len(server.messages) == 1000
    assert connections(server.handler) == 1


def test_one_bad_row_stops_the_batch_before_anything_is_sent(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls)
    rows = csv_batch(tmp_path / "rows.csv", 20, bad_row=15)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(rows)])
    assert result.exit_code == 65
    assert "row 16" in result.output and "nothing was sent" in result.output
    assert server.messages == []
    skipping = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(rows), "--skip-invalid"])
    assert skipping.exit_code == 65
    assert "19 sent" in skipping.output and "1 invalid" in skipping.output
    assert len(server.messages) == 19


def test_refused_recipient_does_not_stop_the_batch(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    server = smtp_server(handler=RefuseRecipient("c2@client.test"))
    base = configure(config_path, server, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch",
                                 str(csv_batch(tmp_path / "rows.csv", 4)), "--json"])
    assert result.exit_code == 65
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["status"] for line in lines] == ["sent", "failed", "sent", "sent"]
    assert "550 5.1.1" in lines[1]["reply"] and lines[0]["message_id"].endswith("@company.test>")
    assert len(server.messages) == 3


def test_unknown_event_lists_the_events(runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    base = configure(config_path, None, tls)
    result = runner.invoke(app, [*base, "send", "--event", "invoice-overdue", "--to", "a@x.test"])
    assert result.exit_code == 2
    assert "overdue-invoice" in result.output and "goods-received" in result.output


def test_missing_and_unknown_variables_exit_65(runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    base = configure(config_path, None, tls)
    missing = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "a@x.test",
                                  "--var", "customer_name=A"])
    assert missing.exit_code == 65 and "invoice_number, amount_due, due_date" in missing.output
    unknown = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "a@x.test", *OVERDUE,
                                  "--var", "colour=red", "--dry-run"])
    assert unknown.exit_code == 65 and "colour" in unknown.output


def test_missing_attachment_exits_66(runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    result = runner.invoke(app, [*base, "send", "--event", "packing-slip", "--to", "a@x.test",
                                 "--var", "customer_name=A", "--var", "order_number=1", "--var", "invoice_number=2",
                                 "--attach", str(tmp_path / "missing.pdf")])
    assert result.exit_code == 66 and "missing.pdf" in result.output


@pytest.mark.parametrize("args", [
    ["--to", "a@x.test\r\nBcc: victim@evil.test", *OVERDUE],
    ["--to", "a@x.test", "--cc", "b@x.test\nBcc: victim@evil.test", *OVERDUE],
    ["--to", "a@x.test", "--reply-to", "r@x.test\r\nX-Evil: 1", *OVERDUE],
    ["--to", "a@x.test", "--subject", "Hello\r\nBcc: victim@evil.test", *OVERDUE],
    ["--to", "a@x.test", *OVERDUE[:2], "--var", "invoice_number=INV-1\r\nBcc: victim@evil.test", *OVERDUE[4:]],
])
def test_header_injection_is_refused_before_connecting(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, args: list[str]) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", *args])
    assert result.exit_code == 65, result.output
    assert server.messages == []


def test_attachment_file_name_with_a_line_break_is_refused(
        runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    evil = tmp_path / "slip\r\nBcc: victim@evil.test.pdf"
    evil.write_bytes(b"%PDF")
    result = runner.invoke(app, [*base, "send", "--event", "packing-slip", "--to", "a@x.test",
                                 "--var", "customer_name=A", "--var", "order_number=1", "--var", "invoice_number=2",
                                 "--attach", str(evil), "--dry-run"])
    assert result.exit_code == 65


def test_dry_run_prints_the_message_and_connects_to_nothing(
        runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    base = configure(config_path, None, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "a@x.test", *OVERDUE,
                                 "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Subject: Payment reminder: invoice INV-1 is overdue" in result.output
    assert "Dear Ann," in result.output and "1 dry-run" in result.output


def test_outbox_writes_eml_files_and_connects_to_nothing(
        runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    outbox = tmp_path / "outbox"
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch",
                                 str(csv_batch(tmp_path / "rows.csv", 3)), "--outbox", str(outbox)])
    assert result.exit_code == 0, result.output
    assert "3 written" in result.output and "0 sent" in result.output
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 3
    assert all((f.stat().st_mode & 0o777) == 0o600 for f in files)
    from email import message_from_bytes, policy

    parsed = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Subject"].startswith("Payment reminder")


def test_data_file_and_stdin_supply_variables_and_var_wins(
        runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    data = {"customer_name": "From JSON", "invoice_number": "INV-7", "amount_due": 5, "due_date": "soon"}
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "a@x.test", "--data", "-",
                                 "--var", "customer_name=From var", "--dry-run"], input=json.dumps(data))
    assert result.exit_code == 0, result.output
    assert "Dear From var," in result.output and "INV-7" in result.output


def test_batch_with_to_option_is_a_usage_error(runner: CliRunner, tls: TLSFiles, config_path: Path,
                                               tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "a@x.test",
                                 "--batch", str(csv_batch(tmp_path / "r.csv", 1))])
    assert result.exit_code == 2


def test_reply_to_option_applies_to_every_batch_row(runner: CliRunner, tls: TLSFiles, config_path: Path,
                                                    tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch",
                                 str(csv_batch(tmp_path / "r.csv", 2)), "--reply-to", "desk@company.test",
                                 "--outbox", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert all(b"Reply-To: desk@company.test" in f.read_bytes() for f in (tmp_path / "out").glob("*.eml"))


def test_skipped_invalid_rows_are_reported_once_with_their_row(
        runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch",
                                 str(csv_batch(tmp_path / "r.csv", 3, bad_row=2)), "--skip-invalid", "--dry-run"])
    assert "invalid row 3: to 'broken-address' is not a valid email address" in result.output


def test_sending_over_smtp_loads_no_other_transport_library(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    import os
    import subprocess
    import sys

    server = smtp_server()
    configure(config_path, server, tls)
    code = ("import sys\nfrom xoromail_cli.cli import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit as stop:\n    code = stop.code\n"
            "heavy = {'exchangelib', 'google', 'msal', 'aiosmtpd', 'keyring', 'requests', 'dns', 'psycopg',"
            " 'checkdmarc'}\n"
            "print(code, sorted(m for m in sys.modules if m.split('.')[0] in heavy), file=sys.stderr)\n")
    completed = subprocess.run(
        [sys.executable, "-c", code, "send", "--event", "overdue-invoice", "--to", "a@x.test", *OVERDUE],
        env={**os.environ, "XOROMAIL_CONFIG": str(config_path), "XOROMAIL_PASSWORD": PASSWORD},
        capture_output=True, text=True, timeout=60, check=True)
    assert completed.stderr.strip().splitlines()[-1] == "0 []"
    assert len(server.messages) == 1


def test_a_batch_at_a_terminal_shows_progress_then_the_summary(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    import os

    from tests.support.terminal import Terminal

    server = smtp_server()
    configure(config_path, server, tls)
    term = Terminal(["send", "--event", "overdue-invoice", "--batch", str(csv_batch(tmp_path / "r.csv", 300))],
                    {**os.environ, "XOROMAIL_CONFIG": str(config_path), "XOROMAIL_PASSWORD": PASSWORD})
    assert term.wait() == 0, term.text
    assert "sending" in term.text and "/300" in term.text
    assert "overdue-invoice: 300 sent, 0 failed, 0 skipped" in term.text
    assert len(server.messages) == 300


def test_an_outbox_that_cannot_be_written_is_exit_73(runner: CliRunner, tls: TLSFiles, config_path: Path,
                                                     tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "a@x.test", *OVERDUE,
                                 "--outbox", str(blocker / "out")])
    assert result.exit_code == 73 and "cannot create outbox folder" in result.output


def test_a_run_that_cannot_connect_reports_the_bad_rows_and_exits_69(
        runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    rows = csv_batch(tmp_path / "r.csv", 3, bad_row=3)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(rows), "--skip-invalid",
                                 "--json", "--retries", "0"])
    assert result.exit_code == 69, result.output
    *rows_seen, stopped = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["status"] for row in rows_seen] == ["invalid"]
    # what stopped the run is on stdout too, as every --json command's error: a script reads stdout only
    assert stopped["ok"] is False and stopped["exit_code"] == 69 and "refused the connection" in stopped["error"]
    assert stopped["hint"]


def test_one_message_with_json_that_cannot_connect_prints_a_json_error(
        runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    base = configure(config_path, None, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "a@x.test", *OVERDUE,
                                 "--json", "--retries", "0"])
    assert result.exit_code == 69, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [{**lines[0], "ok": False, "exit_code": 69}] and "refused the connection" in lines[0]["error"]


def test_a_dry_run_loads_neither_tls_nor_sqlite_nor_any_service_library(tls: TLSFiles, config_path: Path,
                                                                       tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    configure(config_path, None, tls)
    code = ("import sys\nfrom xoromail_cli.cli import app\n"
            "try:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('ssl', 'smtplib', 'sqlite3', 'exchangelib', 'google', 'msal', 'requests',"
            " 'dns', 'psycopg', 'checkdmarc', 'aiosmtpd') if m in sys.modules), file=sys.stderr)\n")
    completed = subprocess.run(
        [sys.executable, "-c", code, "send", "--event", "overdue-invoice", "--dry-run",
         "--batch", str(csv_batch(tmp_path / "r.csv", 2))],
        env={**os.environ, "XOROMAIL_CONFIG": str(config_path)}, capture_output=True, text=True, timeout=60,
        check=True)
    assert completed.stderr.strip().splitlines()[-1] == "[]"


def test_a_resend_of_one_message_is_skipped_with_a_hint(runner: CliRunner, smtp_server: ServerFactory,
                                                         tls: TLSFiles, config_path: Path) -> None:
    base = configure(config_path, smtp_server(), tls)
    args = [*base, "send", "--event", "overdue-invoice", "--to", "a@x.test", *OVERDUE]
    assert runner.invoke(app, args).exit_code == 0
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "skipped a@x.test: already sent on" in again.output
    assert "pass --resend to send it again" in again.output


def test_recipients_whose_domain_dns_cannot_carry_are_refused_with_their_row_or_option(
        runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    long_domain = "x" * 64 + ".test"
    rows = tmp_path / "r.csv"
    rows.write_text("to,cc,customer_name,invoice_number,amount_due,due_date\n"
                    "c1@client.test,,C1,INV-1,1.00,2026-11-01\n"
                    f"c2@client.test,boss@{long_domain},C2,INV-2,2.00,2026-11-01\n", encoding="utf-8")
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(rows), "--dry-run"])
    assert result.exit_code == 65
    assert f"row 3: cc 'boss@{long_domain}' is not a valid email address" in " ".join(result.output.split())
    for option, value in (("--to", "ann@client..test"), ("--reply-to", f"desk@{long_domain}")):
        recipient = [] if option == "--to" else ["--to", "ann@client.test"]
        single = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", *recipient, option, value,
                                     *OVERDUE, "--dry-run"])
        assert single.exit_code == 65, single.output
        words = " ".join(single.output.split())
        assert f"'{value}' is not a valid email address: in the part after the @" in words
