"""Two settings files on one account, both with a profile `default`: the secret store keeps the profile's secrets
by name, so it remembers which settings file stored them (stores/owners.py). Setup and disconnect from the other
file refuse (exit 78) while the owner still has the profile, and take the secrets over once it does not."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import keyring
import pytest
from typer.testing import CliRunner

from tests.support.cli import setup_args
from tests.support.common import PASSWORD, ServerFactory, TLSFiles
from tests.support.samples import OVERDUE
from tests.support.terminal import Terminal
from xoromail_cli import config, credentials
from xoromail_cli.cli import app
from xoromail_cli.local.sink import SinkServer
from xoromail_cli.stores.owners import OWNER_KIND

OTHER = "another-password-typed-for-a-test"


@pytest.fixture
def prod(runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> tuple[Path, SinkServer]:
    """`--config prod.toml`, profile default, set up by today's setup (so its file is recorded as the owner)."""
    server = smtp_server()
    path = tmp_path / "prod.toml"
    done = runner.invoke(app, setup_args(path, server.port, tls), input=PASSWORD + "\n")
    assert done.exit_code == 0, done.output
    assert keyring.get_password("xoromail", f"default:{OWNER_KIND}") == str(path.resolve())
    return path, server


def _second_file(prod_path: Path, tmp_path: Path) -> Path:
    """test.toml: a second settings file with its own copy of the production file's profile `default`."""
    test_path = tmp_path / "test.toml"
    config.save_profile(test_path, config.load(prod_path).profiles["default"])
    return test_path


def _send(runner: CliRunner, path: Path) -> int:
    result = runner.invoke(app, ["--config", str(path), "send", "--event", "overdue-invoice", "--to",
                                 "ann@client.test", *OVERDUE])
    assert result.exit_code in (0, 77, 78), result.output
    return result.exit_code


def test_setup_from_a_second_file_is_refused_and_the_first_still_sends(
        runner: CliRunner, prod: tuple[Path, SinkServer], tls: TLSFiles, tmp_path: Path) -> None:
    prod_path, server = prod
    test_path = _second_file(prod_path, tmp_path)
    before = len(server.messages)
    refused = runner.invoke(app, setup_args(test_path, server.port, tls), input=OTHER + "\n")
    assert refused.exit_code == 78, refused.output
    said = " ".join(refused.output.split())
    assert str(prod_path.resolve()) in said and "'default'" in said
    assert f"xoromail --config {shlex.quote(str(prod_path.resolve()))} --profile default disconnect" in said
    assert "--profile NAME" in said
    assert len(server.messages) == before  # refused before the test message, and before any write
    assert keyring.get_password("xoromail", "default") == PASSWORD
    assert OTHER not in said
    assert _send(runner, prod_path) == 0  # the server takes PASSWORD only: cron's password is intact
    assert len(server.messages) == before + 1


def test_the_wizard_refuses_before_its_first_question(prod: tuple[Path, SinkServer], tmp_path: Path) -> None:
    prod_path, _ = prod
    term = Terminal(["setup"], {**os.environ, "XOROMAIL_CONFIG": str(tmp_path / "test.toml")})
    assert term.wait() == 78, term.text
    assert "Service type" not in term.text and str(prod_path.resolve()) in " ".join(term.text.split())
    assert keyring.get_password("xoromail", "default") == PASSWORD


def test_scripted_setup_refusal_as_json(
        runner: CliRunner, prod: tuple[Path, SinkServer], tls: TLSFiles, tmp_path: Path) -> None:
    prod_path, server = prod
    refused = runner.invoke(app, setup_args(tmp_path / "test.toml", server.port, tls, "--json"), input=OTHER + "\n")
    assert refused.exit_code == 78
    error = json.loads(refused.stdout.strip().splitlines()[-1])
    assert error["exit_code"] == 78 and str(prod_path.resolve()) in error["error"]
    assert "--profile default disconnect" in error["hint"] and "--config" in error["hint"]
    assert not (tmp_path / "test.toml").exists()


def test_disconnect_from_the_second_file_refuses_and_removes_nothing(
        runner: CliRunner, prod: tuple[Path, SinkServer], tmp_path: Path) -> None:
    prod_path, _ = prod
    test_path = _second_file(prod_path, tmp_path)
    refused = runner.invoke(app, ["--config", str(test_path), "disconnect", "--yes"])
    assert refused.exit_code == 78, refused.output
    said = " ".join(refused.output.split())
    assert str(prod_path.resolve()) in said and "nothing was removed" in said
    assert keyring.get_password("xoromail", "default") == PASSWORD
    assert keyring.get_password("xoromail", f"default:{OWNER_KIND}") == str(prod_path.resolve())
    assert _send(runner, prod_path) == 0


def test_disconnect_from_the_owner_removes_the_secrets_and_the_owner(
        runner: CliRunner, prod: tuple[Path, SinkServer]) -> None:
    prod_path, _ = prod
    done = runner.invoke(app, ["--config", str(prod_path), "disconnect", "--yes", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["removed"] == ["password"]  # the owner entry is bookkeeping, not a secret
    assert keyring.get_password("xoromail", "default") is None
    assert keyring.get_password("xoromail", f"default:{OWNER_KIND}") is None


@pytest.mark.parametrize("how", ["profile removed", "file deleted"])
def test_once_the_first_file_lost_the_profile_the_second_takes_the_secrets_over(
        runner: CliRunner, prod: tuple[Path, SinkServer], tls: TLSFiles, tmp_path: Path, how: str) -> None:
    prod_path, server = prod
    if how == "file deleted":
        prod_path.unlink()
    else:
        profile = config.load(prod_path).profiles["default"]
        prod_path.unlink()
        config.save_profile(prod_path, profile.__class__(**{**profile.__dict__, "name": "billing"}))
    test_path = tmp_path / "test.toml"
    done = runner.invoke(app, setup_args(test_path, server.port, tls), input=PASSWORD + "\n")
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())
    assert f"were kept for {prod_path.resolve()}" in said and "takes them over" in said
    assert ("no longer exists" if how == "file deleted" else "no longer has it") in said
    assert keyring.get_password("xoromail", f"default:{OWNER_KIND}") == str(test_path.resolve())
    assert _send(runner, test_path) == 0


def test_disconnect_takes_over_from_a_file_that_is_gone(
        runner: CliRunner, prod: tuple[Path, SinkServer], tmp_path: Path) -> None:
    prod_path, _ = prod
    test_path = _second_file(prod_path, tmp_path)
    prod_path.unlink()
    done = runner.invoke(app, ["--config", str(test_path), "disconnect", "--yes"])
    assert done.exit_code == 0, done.output
    assert keyring.get_password("xoromail", "default") is None
    assert keyring.get_password("xoromail", f"default:{OWNER_KIND}") is None


def test_a_secret_stored_by_an_older_release_is_taken_over_silently(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> None:
    server = smtp_server()
    credentials.store_password("default", "what-an-older-release-stored")  # no owner recorded
    path = tmp_path / "test.toml"
    done = runner.invoke(app, setup_args(path, server.port, tls), input=PASSWORD + "\n")
    assert done.exit_code == 0, done.output
    assert "Note:" not in done.output and "takes them over" not in done.output
    assert keyring.get_password("xoromail", "default") == PASSWORD
    assert keyring.get_password("xoromail", f"default:{OWNER_KIND}") == str(path.resolve())


def test_setup_again_from_the_owner_is_not_refused(
        runner: CliRunner, prod: tuple[Path, SinkServer], tls: TLSFiles) -> None:
    prod_path, server = prod
    again = runner.invoke(app, setup_args(prod_path, server.port, tls), input=PASSWORD + "\n")
    assert again.exit_code == 0, again.output
    assert "Note:" not in again.output


def _users(runner: CliRunner, path: Path, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["--config", str(path), "relay", "users", *args], input=stdin)
    return result.exit_code, " ".join(result.output.split())


def test_a_relay_login_of_another_file_is_neither_replaced_nor_removed(
        runner: CliRunner, prod: tuple[Path, SinkServer], tmp_path: Path) -> None:
    """Relay logins are kept by their name alone (`relay:login:NAME`): the same guard, per login."""
    prod_path, _ = prod
    test_path = _second_file(prod_path, tmp_path)
    kept = "prod-erp-login-password-1234"
    added = _users(runner, prod_path, "add", "erp", "--profile", "default", "--password-stdin", stdin=kept + "\n")
    assert added[0] == 0, added[1]
    code, said = _users(runner, test_path, "add", "erp", "--profile", "default", "--password-stdin",
                        stdin="test-erp-login-password-5678\n")
    assert code == 78 and str(prod_path.resolve()) in said and "relay users remove erp" in said, said
    assert "[relay" not in test_path.read_text()  # refused before the settings file was written
    assert credentials.read_secret("relay", "login:erp") == kept
    # the test file now gets its own `erp` in its table by hand: rotating or removing it there is refused too
    test_path.write_text(test_path.read_text() + '\n[relay.users.erp]\nprofile = "default"\n')
    assert _users(runner, test_path, "password", "erp")[0] == 78
    assert _users(runner, test_path, "remove", "erp")[0] == 78
    assert credentials.read_secret("relay", "login:erp") == kept
    assert "[relay.users.erp]" in test_path.read_text()  # refused before the table was touched
    # once the production file no longer has the login, the test file takes it over
    assert _users(runner, prod_path, "remove", "erp")[0] == 0
    assert keyring.get_password("xoromail", f"relay:{OWNER_KIND}:login:erp") is None
    assert _users(runner, test_path, "password", "erp")[0] == 0
    assert keyring.get_password("xoromail", f"relay:{OWNER_KIND}:login:erp") == str(test_path.resolve())


def test_config_show_names_the_file_the_secrets_belong_to(
        runner: CliRunner, prod: tuple[Path, SinkServer], tmp_path: Path) -> None:
    prod_path, _ = prod
    test_path = _second_file(prod_path, tmp_path)
    shown = runner.invoke(app, ["--config", str(test_path), "config", "show"])
    assert shown.exit_code == 0, shown.output
    assert str(prod_path.resolve()) in "".join(shown.output.split()).replace("│", "")
    as_json = runner.invoke(app, ["--config", str(test_path), "config", "show", "--json"])
    assert json.loads(as_json.stdout)["secrets_owner"] == str(prod_path.resolve())
    own = runner.invoke(app, ["--config", str(prod_path), "config", "show", "--json"])
    assert json.loads(own.stdout)["secrets_owner"] is None


def test_setup_through_a_symlinked_settings_file_keeps_the_link_and_its_file_owns_the_secrets(
        runner: CliRunner, prod: tuple[Path, SinkServer], tls: TLSFiles, tmp_path: Path) -> None:
    """`--config` a symlink to the settings file (/etc/xoromail.toml → the real one): setup writes the file it
    points at, so the link stays and the real file still owns the secrets — replacing the link with a copy made
    the real file a stranger to its own password (its setup and disconnect refused, 78)."""
    prod_path, server = prod
    link = tmp_path / "link.toml"
    link.symlink_to(prod_path)
    again = runner.invoke(app, setup_args(link, server.port, tls, "--display-name", "Through the link"),
                          input=PASSWORD + "\n")
    assert again.exit_code == 0, again.output
    assert link.is_symlink() and link.resolve() == prod_path.resolve()
    assert config.load(prod_path).profiles["default"].display_name == "Through the link"
    assert keyring.get_password("xoromail", f"default:{OWNER_KIND}") == str(prod_path.resolve())
    direct = runner.invoke(app, setup_args(prod_path, server.port, tls), input=PASSWORD + "\n")
    assert direct.exit_code == 0, direct.output
