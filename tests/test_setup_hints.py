"""Hints that repeat the user's own global options, so the command they suggest works as typed."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from xoromail_cli.cli import app


def _one_line(output: str) -> str:
    return " ".join(output.split())


def test_validate_with_a_missing_config_file_suggests_setup_with_the_same_config_option(
        runner: CliRunner, tmp_path: Path) -> None:
    other = tmp_path / "company b.toml"
    result = runner.invoke(app, ["--config", str(other), "validate"])
    assert result.exit_code == 78
    assert f"xoromail --config '{other}' setup" in _one_line(result.output)


def test_a_missing_profile_in_another_file_names_both_options(runner: CliRunner, tmp_path: Path) -> None:
    other = tmp_path / "b.toml"
    other.write_text('[profiles.default]\nemail = "a@b.test"\nhost = "smtp.b.test"\nport = 587\n')
    result = runner.invoke(app, ["--config", str(other), "--profile", "billing", "validate"])
    assert result.exit_code == 78
    assert f"xoromail --config {other} --profile billing setup" in _one_line(result.output)


def test_the_default_settings_file_needs_no_config_option_in_the_hint(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 78
    assert "run `xoromail setup` to create it" in _one_line(result.output)
