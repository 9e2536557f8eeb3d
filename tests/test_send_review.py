"""Review before sending: outbox files private and named by event and row, with Bcc kept; options that
contradict each other refused."""

from __future__ import annotations

import stat
from email import message_from_bytes, policy
from pathlib import Path

from typer.testing import CliRunner

from tests.support.common import ServerFactory, TLSFiles, configure
from tests.support.samples import csv_batch
from xoromail_cli.cli import app


def _batch(path: Path) -> Path:
    path.write_text("to,bcc,customer_name,invoice_number,amount_due,due_date\n"
                    "a@client.test,audit@company.test,Ann,INV-1,1.00,2026-11-01\n"
                    "b@client.test,,Bob,INV-2,2.00,2026-11-01\n", encoding="utf-8")
    return path


def test_outbox_files_are_private_named_by_event_and_row_and_keep_bcc(
        runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    outbox = tmp_path / "review" / "outbox"
    rows = _batch(tmp_path / "r.csv")
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", str(rows),
                                 "--outbox", str(outbox)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(outbox.stat().st_mode) == 0o700
    files = sorted(outbox.glob("*.eml"))
    assert [f.name.split("-row")[0] for f in files] == ["overdue-invoice", "overdue-invoice"]
    assert sorted(f.name.split("-row")[1].split("-")[0] for f in files) == ["2", "3"]
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    first = next(f for f in files if "-row2-" in f.name)
    parsed = message_from_bytes(first.read_bytes(), policy=policy.default)
    assert parsed["Bcc"] == "audit@company.test" and parsed["To"] == "a@client.test"


def test_dry_run_with_outbox_is_refused(runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    base = configure(config_path, None, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "a@x.test", "--dry-run",
                                 "--outbox", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "--dry-run and --outbox exclude each other" in " ".join(result.output.split())
    assert not (tmp_path / "o").exists()


def test_resend_with_resend_after_is_refused(runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    base = configure(config_path, None, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "a@x.test", "--resend",
                                 "--resend-after", "7d", "--dry-run"])
    assert result.exit_code == 2
    assert "--resend and --resend-after exclude each other" in " ".join(result.output.split())


def test_dry_run_pending_previews_only_what_a_rerun_would_send_and_writes_nothing(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls)
    sent = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch",
                               str(csv_batch(tmp_path / "two.csv", 2))])
    assert sent.exit_code == 0, sent.output
    before = runner.invoke(app, [*base, "log", "--json"]).stdout
    three = str(csv_batch(tmp_path / "three.csv", 3))
    preview = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", three, "--dry-run",
                                  "--pending"])
    assert preview.exit_code == 0, preview.output
    assert "0 sent, 1 dry-run" in preview.output and "2 skipped" in preview.output
    assert "Dear Customer 3," in preview.output and "Dear Customer 1," not in preview.output
    assert runner.invoke(app, [*base, "log", "--json"]).stdout == before
    assert len(server.messages) == 2
    plain = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch", three, "--dry-run"])
    assert "3 dry-run" in plain.output, "without --pending the ledger is not read"


def test_pending_without_dry_run_is_refused(runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    base = configure(config_path, None, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "a@x.test", "--pending"])
    assert result.exit_code == 2 and "--pending only goes with --dry-run" in " ".join(result.output.split())
