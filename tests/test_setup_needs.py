"""Setup asks what the chosen service needs: a sign-in service without a keyring is told that tokens need one
(never a password command or $XOROMAIL_PASSWORD, which cannot hold them), before anyone signs in."""

from __future__ import annotations

from pathlib import Path

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
