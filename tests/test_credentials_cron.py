"""What a cron job meets: no keyring in its environment, and a password_command that hangs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import use_no_keyring
from tests.support.samples import smtp_profile
from xoromail_cli import credentials
from xoromail_cli.cli import app
from xoromail_cli.errors import ConfigError, ExitCode, KeyringUnavailableError

PROFILE = smtp_profile(name="default", email="billing@company.test", host="smtp.company.test", port=587)


def test_an_unreachable_keyring_is_not_reported_as_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)  # what cron's environment has
    use_no_keyring()
    with pytest.raises(KeyringUnavailableError) as caught:
        credentials.resolve_password(PROFILE)
    error = caught.value
    assert "cannot be reached in this environment" in error.message and "D-Bus" in error.message
    assert "no password for profile" not in error.message
    assert "password_command" in (error.hint or "") and "XOROMAIL_PASSWORD" in (error.hint or "")
    assert error.exit_code == ExitCode.CONFIG


def test_the_secret_store_raises_the_unreachable_keyring_for_every_kind() -> None:
    use_no_keyring()
    with pytest.raises(KeyringUnavailableError, match="cannot be reached"):
        credentials.Secrets(PROFILE).get("password")
    with pytest.raises(KeyringUnavailableError, match="cannot be reached"):
        credentials.Secrets(PROFILE).get("refresh_token")


def test_the_environment_or_a_command_still_work_without_a_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    use_no_keyring()
    monkeypatch.setenv("XOROMAIL_PASSWORD", "from-env")
    assert credentials.resolve_password(PROFILE) == "from-env"


def test_config_show_says_unreachable_not_unset(config_path: Path, runner: CliRunner) -> None:
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text('[profiles.default]\nemail = "billing@company.test"\nhost = "smtp.company.test"\n'
                           'port = 587\nsecurity = "starttls"\n')
    use_no_keyring()
    shown = runner.invoke(app, ["--config", str(config_path), "config", "show"])
    assert "unreachable" in shown.stdout and "cannot be reached" in shown.stdout
    as_json = runner.invoke(app, ["--config", str(config_path), "config", "show", "--json"])
    password = json.loads(as_json.stdout)["password"]
    assert password["set"] is False and password["keyring_reachable"] is False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_hung_password_command_is_killed_with_the_processes_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    command = f"sleep 30 & echo $! > {pid_file}; wait"
    started = time.monotonic()
    with pytest.raises(ConfigError, match="did not finish within 1 s"):
        credentials.run_password_command(command, timeout=1.0)
    assert time.monotonic() - started < 5  # not held for the child's 30 s by the pipe it keeps open
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
