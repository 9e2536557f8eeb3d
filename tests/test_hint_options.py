"""A command a hint suggests, typed as shown, acts on the same settings file and profile: hints carry the
run's --config and --profile (after a cancel, a disconnect or a wrong account as after any failure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import ServerFactory, TLSFiles, profile_for
from xoromail_cli import config
from xoromail_cli.cli import app
from xoromail_cli.cli.state import AppState, with_global_options
from xoromail_cli.services.google.hints import SETUP_AGAIN


def test_a_suggested_command_gains_the_runs_config_and_profile(tmp_path: Path) -> None:
    state = AppState(tmp_path / "b.toml", "billing")
    assert with_global_options(SETUP_AGAIN, state) == (
        f"run `xoromail --config {tmp_path / 'b.toml'} --profile billing setup --service google` again to sign in")
    already = "run `xoromail --profile billing setup` to create it"
    assert with_global_options(already, state) == (
        f"run `xoromail --config {tmp_path / 'b.toml'} --profile billing setup` to create it")
    assert with_global_options(SETUP_AGAIN, AppState()) == SETUP_AGAIN  # the defaults: nothing to add


def test_a_path_with_a_space_is_quoted(tmp_path: Path) -> None:
    state = AppState(tmp_path / "my settings.toml", None)
    assert f"`xoromail --config '{tmp_path / 'my settings.toml'}' setup`" in with_global_options(
        "run `xoromail setup`", state)


@pytest.fixture
def billing(tmp_path: Path, tls: TLSFiles, smtp_server: ServerFactory) -> list[str]:
    """A profile `billing` in a settings file of its own, its server running, no password stored."""
    path = tmp_path / "company b" / "xoromail.toml"
    config.save_profile(path, profile_for(smtp_server(), tls, name="billing"))
    return ["--config", str(path), "--profile", "billing"]


def test_the_hints_of_errors_and_of_json_carry_them(runner: CliRunner, billing: list[str]) -> None:
    expected = f"`xoromail --config '{billing[1]}' --profile billing setup"
    failed = runner.invoke(app, [*billing, "send", "--event", "overdue-invoice", "--to", "a@client.test",
                                 "--var", "customer_name=A", "--var", "invoice_number=1", "--var", "amount_due=1",
                                 "--var", "due_date=2026-11-01", "--json"])
    assert failed.exit_code != 0
    assert expected in " ".join(failed.output.split()), failed.output
    validated = runner.invoke(app, [*billing, "validate", "--json", "--no-send"])
    assert expected in json.loads(validated.stdout)["hint"], validated.stdout


def test_disconnect_says_how_to_connect_again_for_the_same_profile(runner: CliRunner, billing: list[str]) -> None:
    from xoromail_cli import credentials

    credentials.store_password("billing", "pw")
    done = runner.invoke(app, [*billing, "disconnect", "--yes"])
    assert done.exit_code == 0, done.output
    assert f"`xoromail --config '{billing[1]}' --profile billing setup`" in " ".join(done.output.split())


def test_a_hint_that_names_a_quoted_config_already_is_not_doubled(tmp_path: Path) -> None:
    state = AppState(tmp_path / "company b.toml", None)
    hint = f"run `xoromail --config '{tmp_path / 'company b.toml'}' setup` to create it"
    assert with_global_options(hint, state) == hint


def test_disconnect_run_twice_says_there_was_nothing_to_remove(runner: CliRunner, billing: list[str]) -> None:
    from xoromail_cli import credentials

    credentials.store_password("billing", "pw")
    first = runner.invoke(app, [*billing, "disconnect", "--yes"])
    assert first.exit_code == 0 and "Disconnected profile 'billing'" in first.output, first.output
    second = runner.invoke(app, [*billing, "disconnect", "--yes", "--json"])
    assert second.exit_code == 0
    assert json.loads(second.stdout)["removed"] == []
    third = runner.invoke(app, [*billing, "disconnect", "--yes"])
    assert third.exit_code == 0 and "nothing was removed" in " ".join(third.output.split())


def test_a_command_that_reads_no_profile_gains_no_global_options(tmp_path: Path) -> None:
    """`secrets init-key`, `sink` and `demo` use neither the settings file nor a profile: a hint naming them
    stays as short as the docs show it (the no-store hint once read `xoromail --config … secrets init-key`)."""
    from xoromail_cli.stores.keyrings import TOKEN_HINT

    state = AppState(tmp_path / "b.toml", "billing")
    assert with_global_options(TOKEN_HINT, state) == TOKEN_HINT
    assert "`xoromail secrets init-key ~/.config/xoromail/secrets.key`" in TOKEN_HINT
    assert with_global_options("try `xoromail demo`, then `xoromail sink`", state) == (
        "try `xoromail demo`, then `xoromail sink`")
