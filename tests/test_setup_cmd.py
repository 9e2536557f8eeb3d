"""`xoromail setup` through the CLI: validate first, save only on success, never prompt without a TTY."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import keyring
from typer.testing import CliRunner

from tests.support.cli import setup_args
from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, failing_authenticator, use_no_keyring
from xoromail_cli.cli import app
from xoromail_cli.config import load


def test_scripted_setup_validates_then_saves_and_keeps_the_password_out_of_the_file(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    result = runner.invoke(app, setup_args(config_path, server.port, tls), input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "Saved profile 'default'" in result.output
    assert PASSWORD not in result.output
    assert PASSWORD not in config_path.read_text()
    assert stat.S_IMODE(os.stat(config_path).st_mode) == 0o600
    assert keyring.get_password("xoromail", "default") == PASSWORD
    assert len(server.messages) == 1
    assert server.messages[0].parsed()["From"] == f"Company Billing <{USER}>"


def test_failed_validation_saves_nothing_and_exits_with_the_stage_code(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    reply = "534-5.7.9 Application-specific password required"
    server = smtp_server(authenticator=failing_authenticator(reply.replace("-", " ", 1)))
    result = runner.invoke(app, setup_args(config_path, server.port, tls), input=PASSWORD + "\n")
    assert result.exit_code == 77
    assert "2-Step Verification" in result.output
    assert "Nothing was saved" in result.output
    assert not config_path.exists()
    assert keyring.get_password("xoromail", "default") is None
    assert PASSWORD not in result.output


def test_no_validate_saves_without_connecting(runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    result = runner.invoke(app, setup_args(config_path, 9, tls, "--no-validate"), input="pw\n")
    assert result.exit_code == 0, result.output
    assert load(config_path).profiles["default"].settings.port == 9


def test_missing_values_without_a_terminal_are_a_usage_error_naming_them(
        runner: CliRunner, config_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_path), "setup", "--email", USER])
    assert result.exit_code == 2
    assert "--display-name" in result.output and "--host (or --preset)" in result.output
    assert "--password-stdin" in result.output
    assert not config_path.exists()


def test_no_keyring_backend_stops_with_exit_78_and_writes_nothing(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    use_no_keyring()
    server = smtp_server()
    result = runner.invoke(app, setup_args(config_path, server.port, tls), input=PASSWORD + "\n")
    assert result.exit_code == 78
    assert "keyrings.alt" in result.output and "password_command" in result.output
    assert not config_path.exists()
    assert server.messages == []


def test_password_command_works_without_a_keyring(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    use_no_keyring()
    server = smtp_server()
    args = setup_args(config_path, server.port, tls)
    args.remove("--password-stdin")
    result = runner.invoke(app, [*args, "--password-command", f"echo '{PASSWORD}'"])
    assert result.exit_code == 0, result.output
    assert load(config_path).profiles["default"].password_command == f"echo '{PASSWORD}'"


def test_rerunning_setup_updates_the_profile_and_reuses_the_stored_password(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    assert runner.invoke(app, setup_args(config_path, server.port, tls), input=PASSWORD + "\n").exit_code == 0
    result = runner.invoke(app, ["--config", str(config_path), "setup", "--display-name", "Accounts",
                                 "--company-name", "ACME Ltd"])
    assert result.exit_code == 0, result.output
    profile = load(config_path).profiles["default"]
    assert (profile.display_name, profile.company_name, profile.settings.port) == ("Accounts", "ACME Ltd", server.port)
    assert len(server.messages) == 2


def test_json_output_reports_the_failed_stage(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    result = runner.invoke(app, setup_args(config_path, server.port, tls, "--json"), input="wrong\n")
    assert result.exit_code == 77
    data = json.loads(result.stdout)
    assert (data["ok"], data["stage"], data["saved"]) == (False, "auth", False)


def test_an_unknown_service_type_lists_the_choices(runner: CliRunner, config_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_path), "setup", "--service", "lotus"])
    assert result.exit_code == 2  # a wrong command line (issue 22)
    assert "unknown service 'lotus'" in result.output and "microsoft365" in result.output


def test_an_option_of_another_service_is_refused(runner: CliRunner, config_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_path), "setup", "--service", "webmail", "--email", USER,
                                 "--display-name", "B", "--preset", "gmail", "--ews-url", "https://x.test/EWS"])
    assert result.exit_code == 2
    assert "--ews-url is an option of the exchange service, not of smtp" in " ".join(result.output.split())


def test_a_local_relay_without_login_needs_no_password(
        runner: CliRunner, smtp_server: ServerFactory, config_path: Path) -> None:
    server = smtp_server("none", authenticator=None)
    result = runner.invoke(app, ["--config", str(config_path), "setup", "--email", USER, "--display-name", "ERP",
                                 "--host", "127.0.0.1", "--port", str(server.port), "--security", "none"])
    assert result.exit_code == 0, result.output
    assert keyring.get_password("xoromail", "default") is None


def test_a_missing_ca_file_is_exit_66(runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    args = setup_args(config_path, 587, tls)
    args[args.index("--ca-file") + 1] = str(tmp_path / "missing.pem")
    assert runner.invoke(app, args, input="pw\n").exit_code == 66


def test_wizard_at_a_terminal_prefills_gmail_and_explains_the_app_password(
        config_path: Path, isolated_environment: Path) -> None:
    from tests.support.terminal import Terminal

    env = {**os.environ, "XOROMAIL_CONFIG": str(config_path)}
    term = Terminal(["setup", "--no-validate"], env)
    term.answer("Company email address", "")
    term.answer("Company email address", "billing at gmail")
    term.expect("name@example.com")
    term.answer("Company email address", "billing@gmail.com")
    term.answer("Service type", "1")
    term.answer("Provider", "")
    term.expect("2-Step Verification")
    term.answer("Username", "")
    term.answer("Display name", "ACME Billing")
    term.answer("Password (input hidden)", "abcd efgh ijkl mnop", hidden=True)
    assert term.wait() == 0, term.text
    assert "abcd" not in term.text
    profile = load(config_path).profiles["default"]
    settings = profile.settings
    assert (settings.host, settings.port, settings.security, settings.preset) == ("smtp.gmail.com", 587, "starttls",
                                                                                  "gmail")
    keyring.set_keyring(type(keyring.get_keyring())())
    assert keyring.get_password("xoromail", "default") == "abcdefghijklmnop"


def test_wizard_for_office365_states_the_retirement_dates(config_path: Path) -> None:
    from tests.support.terminal import Terminal

    term = Terminal(["setup", "--no-validate", "--email", USER, "--preset", "office365", "--display-name", "B"],
                    {**os.environ, "XOROMAIL_CONFIG": str(config_path)})
    term.answer("Username", "")  # --preset is Web Mail's: no "Service type" question (issue 22)
    term.answer("Password", "pw", hidden=True)
    assert term.wait() == 0, term.text
    screen = " ".join(term.text.split())
    assert "SMTP AUTH off by default at the end of December 2026" in screen
    assert "Service type" not in screen


def test_a_new_password_replaces_a_stored_password_command(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    args = setup_args(config_path, server.port, tls)
    args.remove("--password-stdin")
    assert runner.invoke(app, [*args, "--password-command", "echo wrong-one"], input="").exit_code == 77
    assert runner.invoke(app, [*args, "--password-command", "echo wrong", "--no-validate"]).exit_code == 0
    result = runner.invoke(app, ["--config", str(config_path), "setup", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert load(config_path).profiles["default"].password_command is None
    both = runner.invoke(app, [*args, "--password-stdin", "--password-command", "x"], input="pw\n")
    assert both.exit_code == 2 and "exclude each other" in both.output


def test_no_validate_still_refuses_a_ca_file_without_certificates(
        runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    args = setup_args(config_path, 587, tls, "--no-validate")
    args[args.index("--ca-file") + 1] = str(bogus)
    assert runner.invoke(app, args, input="pw\n").exit_code == 78
    assert not config_path.exists()


def test_setup_notes_when_the_domains_mx_is_on_microsoft_365(runner: CliRunner, config_path: Path) -> None:
    """contoso.test's MX (the suite's local DNS server) is at mail.protection.outlook.com."""
    args = ["--config", str(config_path), "setup", "--email", "billing@contoso.test", "--display-name", "B",
            "--host", "mail.contoso.test", "--password-stdin", "--no-validate"]
    result = runner.invoke(app, args, input="pw\n")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "it is on Microsoft 365" in text and "'office365'" in text
    matching = runner.invoke(app, [*args[:7], "--preset", "office365", *args[9:]], input="pw\n")
    assert matching.exit_code == 0 and "Microsoft 365; service" not in matching.output


def test_an_email_whose_domain_has_a_label_over_63_characters_is_refused_before_saving(
        runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    args = setup_args(config_path, 9, tls, "--no-validate")
    args[args.index(USER)] = "billing@" + "x" * 64 + ".test"
    result = runner.invoke(app, args, input="pw\n")
    assert result.exit_code == 65, result.output
    assert "--email" in result.output and "longer than 63 characters" in " ".join(result.output.split())
    assert not config_path.exists()
