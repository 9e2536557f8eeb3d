from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.support.samples import smtp_profile
from xoromail_cli import config, credentials
from xoromail_cli.cli import app

PROFILE = smtp_profile(name="default", email="billing@company.test", host="smtp.office365.com", port=587,
                  display_name="Billing")


def test_show_reports_the_password_as_set_and_where_it_comes_from(runner: CliRunner, config_path: Path) -> None:
    config.save_profile(config_path, PROFILE)
    credentials.store_password("default", "top-secret-value")
    result = runner.invoke(app, ["--config", str(config_path), "config", "show", "--json"])
    data = json.loads(result.stdout)
    assert data["password"] == {"set": True, "source": "keyring", "detail": data["password"]["detail"],
                                "keyring_reachable": True}
    assert data["smtp"]["host"] == "smtp.office365.com"
    table = runner.invoke(app, ["--config", str(config_path), "config", "show"])
    assert "top-secret-value" not in result.output + table.output
    assert "set (plain file " in table.output and "keyring_pass.cfg" in table.output
    assert data["secret_store"]["name"].startswith("plain file ") and data["secret_store"]["encrypts"] is False


def test_show_says_unset_when_no_password_exists(runner: CliRunner, config_path: Path) -> None:
    config.save_profile(config_path, PROFILE)
    result = runner.invoke(app, ["--config", str(config_path), "config", "show", "--json"])
    assert json.loads(result.stdout)["password"]["set"] is False


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
