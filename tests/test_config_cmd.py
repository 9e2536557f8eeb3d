from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.samples import smtp_profile
from xoromail_cli import config, credentials
from xoromail_cli.cli import app
from xoromail_cli.stores import encrypted

PROFILE = smtp_profile(name="default", email="billing@company.test", host="smtp.office365.com", port=587,
                  display_name="Billing")


def test_show_reports_the_password_as_set_and_where_it_comes_from(runner: CliRunner, config_path: Path) -> None:
    config.save_profile(config_path, PROFILE)
    credentials.store_password("default", "top-secret-value")
    result = runner.invoke(app, ["--config", str(config_path), "config", "show", "--json"])
    data = json.loads(result.stdout)
    assert data["password"] == {"set": True, "needed": True, "source": "keyring",
                                "detail": data["password"]["detail"], "keyring_reachable": True}
    assert data["smtp"]["host"] == "smtp.office365.com"
    table = runner.invoke(app, ["--config", str(config_path), "config", "show"])
    assert "top-secret-value" not in result.output + table.output
    assert "set (plain file " in table.output and "keyring_pass.cfg" in table.output
    assert data["secret_store"]["name"].startswith("plain file ") and data["secret_store"]["encrypts"] is False


def test_show_says_unset_when_no_password_exists(runner: CliRunner, config_path: Path) -> None:
    config.save_profile(config_path, PROFILE)
    result = runner.invoke(app, ["--config", str(config_path), "config", "show", "--json"])
    assert json.loads(result.stdout)["password"]["set"] is False


RELAY = smtp_profile(name="default", email="billing@company.test", host="relay.company.test", port=25,
                     security="none", display_name="Billing")  # an internal relay: no username, no AUTH


@pytest.mark.parametrize("with_key", [True, False])
def test_show_says_a_profile_without_sign_in_has_no_password_by_design(
        runner: CliRunner, config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_key: bool) -> None:
    """Not "password unset … run setup with the key set": the server takes mail without one, as setup said."""
    if with_key:
        key = tmp_path / "keys" / "secrets.key"
        key.parent.mkdir(mode=0o700)
        key.write_text(encrypted.new_key_text())
        key.chmod(0o600)
        monkeypatch.setenv(encrypted.KEY_ENV, str(key))
    config.save_profile(config_path, RELAY)
    result = runner.invoke(app, ["--config", str(config_path), "config", "show", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["password"] == {"set": False, "needed": False, "source": "none",
                                "detail": "no sign-in: the server accepts mail without one", "keyring_reachable": True}
    assert data["secret_store"]["encrypts"] is with_key
    table = runner.invoke(app, ["--config", str(config_path), "config", "show"])
    text = " ".join(table.output.split())
    assert table.exit_code == 0 and "password: none (no sign-in: the server accepts mail without one)" in text
    assert "unset" not in text and "run setup" not in text


def test_show_still_says_unset_with_the_key_set_when_the_profile_signs_in(
        runner: CliRunner, config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "secrets.key"
    key.write_text(encrypted.new_key_text())
    key.chmod(0o600)
    monkeypatch.setenv(encrypted.KEY_ENV, str(key))
    config.save_profile(config_path, PROFILE)
    data = json.loads(runner.invoke(app, ["--config", str(config_path), "config", "show", "--json"]).stdout)
    assert data["password"]["set"] is False and data["password"]["needed"] is True
    assert "run setup with the key set" in data["password"]["detail"]


def test_path_follows_option_then_environment_then_platform(runner: CliRunner, tmp_path: Path,
                                                            isolated_environment: Path) -> None:
    explicit = tmp_path / "x.toml"
    assert runner.invoke(app, ["--config", str(explicit), "config", "path"]).stdout.strip() == str(explicit)
    from_env = runner.invoke(app, ["config", "path"], env={"XOROMAIL_CONFIG": str(tmp_path / "e.toml")})
    assert from_env.stdout.strip() == str(tmp_path / "e.toml")
    default = runner.invoke(app, ["config", "path"]).stdout.strip()
    assert default == str(isolated_environment / "config" / "xoromail" / "config.toml")


def test_profile_names_that_could_escape_the_state_folder_are_refused(runner: CliRunner, config_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_path), "--profile", "../../etc/x", "config", "show"])
    assert result.exit_code == 2 and "profile name '../../etc/x' is not allowed" in result.output
