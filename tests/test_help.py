"""What --help shows: no value placeholder after flags, and shell completion at the top level."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from xoromail_cli.cli import app

GENERATOR = Path(__file__).resolve().parent.parent / "scripts" / "gen_cli_reference.py"


def _every_help_text() -> str:
    spec = importlib.util.spec_from_file_location("gen_cli_reference", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.render())


def test_no_flag_shows_a_bool_placeholder_in_any_help() -> None:
    text = _every_help_text()
    assert "<bool>" not in text
    assert "--no-validate " in text and "--json " in text


def test_flags_still_work_as_flags(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("xoromail ")


def test_completion_is_offered_at_the_top_level(runner: CliRunner) -> None:
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert "--install-completion" in top.output and "--show-completion" in top.output
    script = Path(sys.executable).with_name("xoromail")
    shown = subprocess.run([str(script), "--show-completion", "bash"], capture_output=True, text=True,
                           timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "complete" in shown.stdout and "_XOROMAIL_COMPLETE" in shown.stdout


def test_no_typer_type_placeholder_in_any_help() -> None:
    text = _every_help_text()
    assert [shown for shown in ("<int range>", "<int>", "<str>", "<path>", "<float", "<file>") if shown in text] == []
    assert "--retries" in text and "N [0<=x<=20]" in text


def test_the_completion_options_are_offered_at_the_top_level_only() -> None:
    sections = _every_help_text().split("## xoromail ")
    assert "--install-completion" in sections[0]
    assert [s.split("\n", 1)[0] for s in sections[1:] if "completion" in s.split("Options", 1)[-1]] == []


def _complete(words: str, env: dict[str, str] | None = None) -> list[str]:
    import os

    script = Path(sys.executable).with_name("xoromail")
    shown = subprocess.run([str(script)], capture_output=True, text=True, timeout=60, check=False,
                           env={**os.environ, **(env or {}), "_XOROMAIL_COMPLETE": "complete_bash",
                                "_TYPER_COMPLETE_ARGS": words, "COMP_WORDS": words,
                                "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))})
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.split()


def test_tab_completion_offers_event_names_and_profile_names(tmp_path: Path) -> None:
    from tests.support.samples import smtp_profile
    from xoromail_cli import config

    assert _complete("xoromail send --event ship") == ["ship-confirmation"]
    assert "overdue-invoice" in _complete("xoromail templates show ")
    assert "goods-received" in _complete("xoromail log --event ")
    settings = tmp_path / "company.toml"
    for name in ("default", "nightly"):
        config.save_profile(settings, smtp_profile(name=name, email="a@b.test", host="h", port=587))
    assert _complete(f"xoromail --config {settings} --profile ") == ["default", "nightly"]
    assert _complete("xoromail --profile n", {"XOROMAIL_CONFIG": str(settings)}) == ["nightly"]


def test_help_names_the_secret_store_not_only_the_keyring() -> None:
    """Secrets go to the encrypted file when its key is given, else to the OS keyring: help that says "the
    keyring" misleads a server's user (disconnect once said it removes secrets "from the keyring")."""
    text = " ".join(_every_help_text().replace("│", " ").split())
    assert [said for said in ("in the keyring", "from the keyring") if said in text] == []
    assert "Remove every secret of the profile from the secret store" in text
