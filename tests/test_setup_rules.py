"""Setup's rules without a terminal: where the secret goes and when, how a port change alone is read, and
the notes setup prints, against real local servers and a real file keyring."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, use_no_keyring
from tests.support.samples import smtp_profile
from xoromail_cli import provisioning
from xoromail_cli.cli import app
from xoromail_cli.config import load
from xoromail_cli.credentials import Secrets
from xoromail_cli.errors import ConfigError, KeyringUnavailableError
from xoromail_cli.services.smtp.settings import SmtpSettings


def _flags(config_path: Path, port: int, tls: TLSFiles, *extra: str) -> list[str]:
    return ["--config", str(config_path), "setup", "--service", "smtp", "--email", USER, "--display-name", "B",
            "--host", "127.0.0.1", "--port", str(port), "--security", "starttls", "--ca-file", str(tls.ca_file),
            *extra]


def _settings(config_path: Path) -> SmtpSettings:
    settings = load(config_path).profiles["default"].settings
    assert isinstance(settings, SmtpSettings)
    return settings


def test_a_port_change_alone_follows_the_standard_ports(runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    assert runner.invoke(app, _flags(config_path, 587, tls, "--no-validate", "--password-stdin"),
                         input="pw\n").exit_code == 0
    base = ["--config", str(config_path), "setup", "--no-validate"]
    assert runner.invoke(app, [*base, "--port", "465"]).exit_code == 0
    assert (_settings(config_path).port, _settings(config_path).security) == (465, "ssl")
    assert runner.invoke(app, [*base, "--port", "587"]).exit_code == 0
    assert (_settings(config_path).port, _settings(config_path).security) == (587, "starttls")
    assert runner.invoke(app, [*base, "--port", "2525"]).exit_code == 0
    assert (_settings(config_path).port, _settings(config_path).security) == (2525, "starttls")


def test_a_password_from_the_environment_is_said_to_be_not_stored(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    result = runner.invoke(app, _flags(config_path, server.port, tls), env={"XOROMAIL_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    assert "the password comes from $XOROMAIL_PASSWORD and was not stored" in " ".join(result.output.split())
    assert keyring.get_password("xoromail", "default") is None
    assert len(server.messages) == 1


def test_an_unwritable_settings_location_stops_setup_before_the_test_message(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> None:
    server = smtp_server()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the settings folder should be\n")
    result = runner.invoke(app, _flags(blocker / "xoromail.toml", server.port, tls, "--password-stdin"),
                           input=PASSWORD + "\n")
    assert result.exit_code == 78, result.output
    assert "not-a-folder" in result.output
    assert server.messages == [], "no test message goes out for a profile that cannot be saved"
    assert keyring.get_password("xoromail", "default") is None


def test_the_writable_check_refuses_a_file_where_the_settings_folder_must_be(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x\n")
    with pytest.raises(ConfigError, match="cannot write"):
        provisioning.check_writable(blocker / "sub" / "xoromail.toml")
    provisioning.check_writable(tmp_path / "new" / "xoromail.toml")


def test_the_secret_is_not_stored_when_the_settings_file_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x\n")
    profile = smtp_profile(name="default", email=USER, host="127.0.0.1", port=587, security="starttls")
    secrets = Secrets(profile, staged=True)
    secrets.set("password", PASSWORD)
    with pytest.raises(ConfigError, match="cannot"):
        provisioning.save(blocker / "xoromail.toml", profile, secrets)
    assert keyring.get_password("xoromail", "default") is None


def test_a_keyring_failure_on_save_puts_the_previous_settings_file_back(config_path: Path) -> None:
    profile = smtp_profile(name="default", email=USER, host="127.0.0.1", port=587, security="starttls")
    provisioning.save(config_path, profile, Secrets(profile, staged=True))
    before = config_path.read_bytes()
    changed = smtp_profile(name="default", email=USER, host="mail.company.test", port=587, security="starttls")
    secrets = Secrets(changed, staged=True)
    secrets.set("password", PASSWORD)
    use_no_keyring()
    with pytest.raises(KeyringUnavailableError) as caught:
        provisioning.save(config_path, changed, secrets)
    assert config_path.read_bytes() == before
    assert PASSWORD not in str(caught.value)


def test_a_domain_backslash_username_gets_the_full_address_note(
        runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    result = runner.invoke(app, _flags(config_path, 587, tls, "--username", "CORP\\billing", "--no-validate",
                                       "--password-stdin"), input="pw\n")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "DOMAIN\\user form" in text and "full email address" in text
    plain = runner.invoke(app, _flags(config_path, 587, tls, "--username", "billing", "--no-validate"))
    assert "DOMAIN\\user" not in plain.output


def test_scripted_setup_suggests_no_validate_only_when_the_server_was_unreachable(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    unreachable = runner.invoke(app, _flags(config_path, closed, tls, "--password-stdin"), input=PASSWORD + "\n")
    assert unreachable.exit_code == 69
    assert "--no-validate" in unreachable.output
    server = smtp_server()
    refused = runner.invoke(app, _flags(config_path, server.port, tls, "--password-stdin"), input="wrong\n")
    assert refused.exit_code == 77
    assert "Nothing was saved" in refused.output and "--no-validate" not in refused.output
