"""Setup asks what the chosen service needs: a sign-in service without a keyring is told that tokens need one
(never a password command or $XOROMAIL_PASSWORD, which cannot hold them), before anyone signs in."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import USER, TLSFiles, use_no_keyring
from tests.fakes.google_server import GoogleServer
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
        assert "keeps its sign-in (tokens) in the OS keyring" in output and "cannot hold tokens" in output
        assert "password_command" not in output and "$XOROMAIL_PASSWORD set" not in output
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
