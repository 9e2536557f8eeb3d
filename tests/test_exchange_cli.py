"""The Exchange service through the CLI: setup validates against a local EWS server before saving, then
send, log and config show work for it exactly as for SMTP."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, EwsFactory, TLSFiles
from xoromail_cli.cli import app
from xoromail_cli.config import load

INVOICE_VARS = ["--var", "customer_name=Northwind", "--var", "invoice_number=INV-7", "--var", "amount_due=10",
                "--var", "due_date=2026-11-15", "--var", "payment_link=https://pay.example/INV-7"]


def setup_args(config_path: Path, url: str, tls: TLSFiles, *extra: str) -> list[str]:
    return ["--config", str(config_path), "setup", "--service", "ews", "--ews-url", url, "--domain", "company.test",
            "--username", "billing", "--auth", "basic", "--email", USER, "--display-name", "Company Billing",
            "--ca-file", str(tls.ca_file), "--password-stdin", *extra]


def test_setup_validates_through_ews_then_saves_the_exchange_table(
        runner: CliRunner, ews: EwsFactory, tls: TLSFiles, config_path: Path) -> None:
    server = ews()
    result = runner.invoke(app, setup_args(config_path, server.url, tls), input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    profile = load(config_path).profiles["default"]
    assert profile.service == "exchange" and profile.settings.username == "billing"
    assert "[profiles.default.exchange]" in config_path.read_text()
    assert PASSWORD not in config_path.read_text() + result.output
    assert [r.operation for r in server.received][-1] == "CreateItem"


def test_a_wrong_password_saves_nothing_and_exits_77(
        runner: CliRunner, ews: EwsFactory, tls: TLSFiles, config_path: Path) -> None:
    server = ews()
    result = runner.invoke(app, setup_args(config_path, server.url, tls), input="wrong\n")
    assert result.exit_code == 77, result.output
    assert not config_path.exists()
    assert "domain, username and password" in " ".join(result.output.split())


def test_a_domain_like_a_url_is_refused_at_setup_with_the_right_form(
        runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    args = setup_args(config_path, "https://127.0.0.1:1/EWS/Exchange.asmx", tls, "--no-validate")
    args[args.index("company.test")] = "https://company.test"
    result = runner.invoke(app, args, input=PASSWORD + "\n")
    assert result.exit_code == 65
    assert "company.test" in result.output and not config_path.exists()


def test_send_log_and_config_show_work_for_an_exchange_profile(
        runner: CliRunner, ews: EwsFactory, tls: TLSFiles, config_path: Path) -> None:
    server = ews()
    assert runner.invoke(app, setup_args(config_path, server.url, tls), input=PASSWORD + "\n").exit_code == 0
    base = ["--config", str(config_path)]
    sent = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "ap@customer.test",
                               "--bcc", "audit@company.test", *INVOICE_VARS, "--json"])
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout.splitlines()[-1])["status"] == "sent"
    delivered = server.received[-1]
    assert delivered.bcc == ["audit@company.test"] and b"audit@company.test" not in (delivered.mime or b"")
    again = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "ap@customer.test",
                                "--bcc", "audit@company.test", *INVOICE_VARS])
    assert again.exit_code == 0 and "already sent" in again.output
    log = runner.invoke(app, [*base, "log", "--json"])
    assert "ap@customer.test" in log.output
    shown = json.loads(runner.invoke(app, [*base, "config", "show", "--json"]).stdout)
    assert shown["exchange"]["url"] == server.url and shown["password"]["set"] is True
    assert os.environ.get("XOROMAIL_PASSWORD") is None


def test_the_wizard_asks_the_service_first_then_only_exchange_questions(config_path: Path) -> None:
    from tests.support.terminal import Terminal

    term = Terminal(["setup", "--no-validate"], {**os.environ, "XOROMAIL_CONFIG": str(config_path)})
    term.answer("Company email address", USER)
    term.answer("Service type", "2")
    term.answer("Exchange URI", "")  # no default: asked again
    term.answer("Exchange URI", "https://outlook.office365.com/EWS/Exchange.asmx")  # typed: the advisory follows
    term.answer("Domain", "https://company.test")
    term.expect("company.test")
    term.answer("Domain", "company.test")
    term.answer("Username", "COMPANY\\billing")
    term.answer("Authentication", "ntlm")
    term.answer("Display name", "Company Billing")
    term.answer("Password (input hidden)", "s3cret-pw", hidden=True)
    assert term.wait() == 0, term.text
    screen = " ".join(term.text.split())
    assert "Provider" not in screen and "s3cret-pw" not in screen
    assert "1 April 2027" in screen and "xoromail setup --service microsoft365" in screen
    profile = load(config_path).profiles["default"]
    assert (profile.service, profile.settings.username, profile.settings.auth) == ("exchange", "COMPANY\\billing",
                                                                                   "ntlm")
