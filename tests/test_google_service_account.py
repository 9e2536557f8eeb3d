"""Google Workspace without a browser: setup with a service account key (domain-wide delegation, gmail.send only)
against the local Google fake, whose token endpoint checks the JWT assertion as Google does. The key lives in the
keyring (the file is deleted after setup); each of Google's refusals comes with its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import USER, TLSFiles
from tests.support.fakes.google_server import ACCESS_NOT_CONFIGURED, GoogleServer
from tests.support.fakes.google_workspace import SEND_SCOPE
from tests.support.google_helpers import google, key_file
from xoromail_cli import config, credentials
from xoromail_cli.cli import app
from xoromail_cli.services.google.oauth import SERVICE_ACCOUNT_KEY

__all__ = ["google"]  # the fixture, used by name


def setup(runner: CliRunner, config_path: Path, server: GoogleServer, tls: TLSFiles, key: Path,
          email: str = USER) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--config", str(config_path), "setup", "--service", "google", "--service-account",
                                 str(key), "--email", email, "--display-name", "Company Billing", "--api-url",
                                 server.url, "--ca-file", str(tls.ca_file)])
    return result.exit_code, result.stdout, result.stdout + result.stderr  # the stage table is on stdout


def test_setup_signs_in_as_the_mailbox_keeps_the_key_in_the_keyring_and_survives_the_file(
        runner: CliRunner, google: GoogleServer, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    path, key = key_file(google, tmp_path)
    code, out, err = setup(runner, config_path, google, tls, path)
    assert code == 0, out + err
    claims = google.state.workspace.assertions[-1]
    assert claims["sub"] == USER and claims["scope"] == SEND_SCOPE and claims["iss"] == key["client_email"]
    assert len(google.state.sent) == 1  # the validation's test message went through the Gmail API
    saved = config_path.read_text()
    assert "BEGIN PRIVATE KEY" not in saved and key["client_email"] in saved
    profile = config.load_profile(config_path, "default")
    assert "BEGIN PRIVATE KEY" in (credentials.Secrets(profile).get(SERVICE_ACCOUNT_KEY) or "")
    path.unlink()
    again = runner.invoke(app, ["--config", str(config_path), "validate", "--json"])
    assert again.exit_code == 0, again.output
    assert google.state.grants.count("urn:ietf:params:oauth:grant-type:jwt-bearer") >= 2
    assert "refresh_token" not in google.state.grants


def test_delegation_not_granted_names_the_admin_console_path_client_id_and_scope(
        runner: CliRunner, google: GoogleServer, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    path, key = key_file(google, tmp_path, delegate=False)
    code, out, err = setup(runner, config_path, google, tls, path)
    assert code == 77, err[-800:]
    assert "unauthorized_client" in err and "API controls → Manage Domain Wide Delegation" in err
    assert key["client_id"] in err and SEND_SCOPE in err
    assert "BEGIN PRIVATE KEY" not in out + err and not config_path.exists()


@pytest.mark.parametrize("email", ["someone@elsewhere.test", "suspended@company.test"])
def test_a_mailbox_outside_the_domain_or_suspended_is_invalid_grant_with_its_fix(
        runner: CliRunner, google: GoogleServer, tls: TLSFiles, config_path: Path, tmp_path: Path,
        email: str) -> None:
    google.state.workspace.users.add("suspended@company.test")
    google.state.workspace.suspended.add("suspended@company.test")
    path, _ = key_file(google, tmp_path)
    code, _, err = setup(runner, config_path, google, tls, path, email=email)
    assert code == 77 and "Invalid email or User ID" in err and "suspended" in err


def test_a_key_deleted_in_the_cloud_console_says_to_create_a_new_one(
        runner: CliRunner, google: GoogleServer, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    path, key = key_file(google, tmp_path)
    assert setup(runner, config_path, google, tls, path)[0] == 0
    google.state.workspace.accounts[key["client_email"]].deleted = True
    result = runner.invoke(app, ["--config", str(config_path), "validate", "--json"])
    data = json.loads(result.stdout)
    assert result.exit_code == 77 and "Invalid JWT Signature" in data["error"]
    assert "Add key" in data["hint"] and "--service-account" in data["hint"]


def test_a_disabled_gmail_api_says_where_to_enable_it(
        runner: CliRunner, google: GoogleServer, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    path, _ = key_file(google, tmp_path)
    google.state.send_replies.append(ACCESS_NOT_CONFIGURED)
    code, _, err = setup(runner, config_path, google, tls, path)
    assert code == 78 and "enable the Gmail API" in err
    assert "project that owns the OAuth client or the service account" in " ".join(err.split())


@pytest.mark.parametrize(("content", "says"), [
    ("{not json", "not JSON"),
    ('{"installed": {"client_id": "x"}}', "not a service account key"),
    ('{"type": "service_account", "client_email": "a@b.test"}', "lacks"),
])
def test_a_wrong_file_is_refused_before_any_request(runner: CliRunner, google: GoogleServer, tls: TLSFiles,
                                                    config_path: Path, tmp_path: Path, content: str, says: str) -> None:
    path = tmp_path / "key.json"
    path.write_text(content)
    code, _, err = setup(runner, config_path, google, tls, path)
    assert code == 65 and says in err and google.state.grants == []
