from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, profile_for
from xoromail_cli import config, credentials
from xoromail_cli.cli import app
from xoromail_cli.local.sink import SinkServer


def saved_profile(config_path: Path, server: SinkServer, tls: TLSFiles) -> None:
    config.save_profile(config_path, profile_for(server, tls))
    credentials.store_password("default", PASSWORD)


def test_validate_prints_every_stage_and_exits_0(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    saved_profile(config_path, server, tls)
    result = runner.invoke(app, ["--config", str(config_path), "validate", "--to", "ops@company.test"])
    assert result.exit_code == 0, result.output
    for stage in ("config", "dns", "connect", "ehlo", "tls", "auth", "send"):
        assert stage in result.output
    assert "All checks passed" in result.output
    assert server.messages[0].recipients == ["ops@company.test"]


def test_validate_json_for_scripts(runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles,
                                   config_path: Path) -> None:
    server = smtp_server()
    saved_profile(config_path, server, tls)
    result = runner.invoke(app, ["--config", str(config_path), "validate", "--json", "--no-send"])
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and data["ok"] is True and data["stage"] is None and data["hint"] is None
    assert [s["name"] for s in data["stages"]][-1] == "auth"


def test_wrong_password_in_environment_exits_77_without_showing_it(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    saved_profile(config_path, server, tls)
    result = runner.invoke(app, ["--config", str(config_path), "validate"],
                           env={"XOROMAIL_PASSWORD": "hunter2-wrong"})
    assert result.exit_code == 77
    assert "hunter2-wrong" not in result.output
    assert "Failed at stage 'auth'" in result.output


def test_malformed_config_is_one_line_exit_78_without_traceback(runner: CliRunner, config_path: Path) -> None:
    config_path.parent.mkdir(parents=True)
    config_path.write_text("[profiles.default\nemail = 1\n")
    result = runner.invoke(app, ["--config", str(config_path), "validate"])
    assert result.exit_code == 78
    assert "Traceback" not in result.output
    assert str(config_path) in result.output and "line 1" in result.output


def test_missing_config_points_to_setup(runner: CliRunner, config_path: Path) -> None:
    result = runner.invoke(app, ["--config", str(config_path), "validate"])
    assert result.exit_code == 78
    assert f"xoromail --config {config_path} setup" in " ".join(result.output.split())


def test_profile_is_chosen_by_environment(runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles,
                                          config_path: Path) -> None:
    server = smtp_server()
    config.save_profile(config_path, profile_for(server, tls, name="ops"))
    credentials.store_password("ops", PASSWORD)
    result = runner.invoke(app, ["validate", "--no-send"],
                           env={"XOROMAIL_CONFIG": str(config_path), "XOROMAIL_PROFILE": "ops"})
    assert result.exit_code == 0, result.output
