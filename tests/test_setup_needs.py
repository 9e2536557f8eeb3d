"""Setup asks what the chosen service needs: a sign-in service without a keyring is told that tokens need one
(never a password command or $XOROMAIL_PASSWORD, which cannot hold them), before anyone signs in."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import USER, TLSFiles, use_no_keyring
from tests.support.fakes.google_server import GoogleServer
from xoromail_cli.cli import app


def test_google_with_flags_and_no_keyring_stops_before_the_sign_in_with_the_token_hint(
        runner: CliRunner, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    google = GoogleServer(tls.server_context).start()
    try:
        use_no_keyring()
        secrets_file = google.client_secrets(tmp_path / "client_secret.json")
        result = runner.invoke(app, ["--config", str(config_path), "setup", "--service", "google",
                                     "--client-secrets", str(secrets_file), "--api-url", google.url,
                                     "--email", USER, "--display-name", "Company Billing",
                                     "--ca-file", str(tls.ca_file)])
        output = " ".join(result.output.split())
        assert result.exit_code == 78, result.output
        assert "keeps its sign-in (tokens) in a secret store" in output and "cannot hold tokens" in output
        assert "password_command" not in output and "$XOROMAIL_PASSWORD set" not in output
        # the server's way to keep tokens, since the encrypted store exists: say it
        assert "secrets init-key" in output and "XOROMAIL_SECRETS_KEY" in output, output
        assert not config_path.exists() and not google.state.refresh_tokens
    finally:
        google.stop()


def test_an_unknown_service_is_a_wrong_command_line(runner: CliRunner, config_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_path), "setup", "--service", "lotus", "--email", USER])
    assert result.exit_code == 2, result.output
    assert "lotus" in result.output and "microsoft365" in result.output


def test_setup_help_names_all_four_services(runner: CliRunner) -> None:
    from xoromail_cli import services

    shown = " ".join(runner.invoke(app, ["setup", "--help"], env={"COLUMNS": "200"}).output.split())
    assert all(name in shown for name in services.REGISTRY), shown


def test_sink_and_relay_do_not_default_to_the_same_port(runner: CliRunner) -> None:
    import re

    def default_port(command: str) -> str:
        shown = " ".join(runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output.split())
        return str(re.findall(r"\[default: (?:127\.0\.0\.1:)?(\d+)\]", shown)[-1])

    assert default_port("sink") != default_port("relay")


def test_relative_paths_are_stored_absolute(runner: CliRunner, tls: TLSFiles, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from xoromail_cli.services.google.service import SERVICE

    google = GoogleServer(tls.server_context).start()
    try:
        google.client_secrets(tmp_path / "client_secret.json")
    finally:
        google.stop()
    monkeypatch.chdir(tmp_path)
    settings = SERVICE.build_settings({"client_secrets": "client_secret.json"}, None, USER)
    assert settings.client_secrets_file == str(tmp_path / "client_secret.json")
    exported = runner.invoke(app, ["templates", "export", "mine"])
    assert exported.exit_code == 0, exported.output
    shown = " ".join(exported.output.split())
    assert f"to {tmp_path / 'mine'}" in shown and f"templates_dir = {json.dumps(str(tmp_path / 'mine'))}" in shown


def test_a_services_own_option_implies_the_service() -> None:
    from tests.support.samples import smtp_profile
    from xoromail_cli.provisioning import implied_service

    assert implied_service({"preset": "gmail"}, None) == "smtp"
    assert implied_service({"host": "mail.company.test"}, None) == "smtp"
    assert implied_service({"sign_in": "device-code"}, None) == "microsoft365"
    assert implied_service({"send_via": "graph", "tenant": "contoso.test"}, None) == "microsoft365"
    assert implied_service({"client_secrets": "c.json"}, None) == "google"
    assert implied_service({"ews_url": "https://mail.company.test/EWS/Exchange.asmx"}, None) == "exchange"
    assert implied_service({}, None) is None
    ambiguous = implied_service({"redirect_port": 8400}, None)  # Google's and Microsoft 365's
    assert ambiguous is None
    existing = smtp_profile(name="default", email=USER, host="h", port=587)
    assert implied_service({"username": "billing"}, existing) == "smtp"  # Web Mail's and Exchange's: kept


def test_the_wizard_asks_no_service_question_when_an_option_implies_it(config_path: Path) -> None:
    import os

    from tests.support.terminal import Terminal

    term = Terminal(["setup", "--no-validate", "--email", USER, "--sign-in", "device-code", "--display-name", "B"],
                    {**os.environ, "XOROMAIL_CONFIG": str(config_path)})
    term.expect("Tenant")
    assert "Service type" not in term.text
    os.kill(term.pid, 9)
    term.wait()
