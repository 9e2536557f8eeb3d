"""Issue 22, item 3: a keyring backend keyring chose only by priority that keeps secrets unencrypted (keyrings.alt's
plain file, null, fail) is never used silently; one the user chose by name is used, and named."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keyring
import pytest
from keyring.backends import null
from keyrings.alt.file import PlaintextKeyring
from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles
from tests.support.samples import smtp_profile
from xoromail_cli import credentials
from xoromail_cli.cli import app
from xoromail_cli.errors import ExitCode, KeyringUnavailableError

PROFILE = smtp_profile(name="default", email=USER, host="smtp.company.test", port=587)
SCRIPT = str(Path(sys.executable).with_name("xoromail"))


def chosen_by_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    """What keyring itself picks with keyrings.alt installed and no Secret Service: its plain file, unnamed."""
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    keyring.set_keyring(PlaintextKeyring())


def test_a_plain_file_chosen_by_priority_is_refused_with_what_to_do_instead(
        monkeypatch: pytest.MonkeyPatch) -> None:
    chosen_by_priority(monkeypatch)
    with pytest.raises(KeyringUnavailableError) as caught:
        credentials.store_password("default", "s3cret")
    error = caught.value
    assert error.exit_code == ExitCode.CONFIG
    assert "plain file" in error.message and "keyring_pass.cfg" in error.message and "unencrypted" in error.message
    hint = error.hint or ""
    for alternative in ("Secret Service", "xoromail secrets init-key", "XOROMAIL_SECRETS_KEY", "--password-command",
                        "PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring"):
        assert alternative in hint, alternative
    assert not Path(PlaintextKeyring().file_path).exists()  # nothing was written there


def test_reading_from_a_plain_file_chosen_by_priority_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    credentials.store_password("default", "s3cret")  # stored while the user had chosen it
    chosen_by_priority(monkeypatch)
    with pytest.raises(KeyringUnavailableError, match="unencrypted"):
        credentials.resolve_password(PROFILE)
    source = credentials.password_source(PROFILE)
    assert source.kind == "unset" and source.unreachable and "plain file" in source.detail


def test_a_plain_file_named_in_keyrings_config_file_is_used_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from keyring.util import platform_

    chosen_by_priority(monkeypatch)
    config = platform_.config_root() / "keyringrc.cfg"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[backend]\ndefault-keyring = keyrings.alt.file.PlaintextKeyring\n")
    credentials.store_password("default", "s3cret")
    assert credentials.resolve_password(PROFILE) == "s3cret"
    assert credentials.store_label() == f"plain file {PlaintextKeyring().file_path}"


def test_the_null_backend_holds_nothing_even_when_chosen() -> None:
    keyring.set_keyring(null.Keyring())  # type: ignore[no-untyped-call]  # keyring's null backend is unannotated
    with pytest.raises(KeyringUnavailableError, match="no usable OS keyring backend"):
        credentials.store_password("default", "s3cret")


def test_setup_and_config_show_name_the_backend_that_holds_the_secret(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    result = runner.invoke(app, ["--config", str(config_path), "setup", "--email", USER, "--display-name", "Billing",
                                 "--host", "127.0.0.1",
                                 "--port", str(server.port), "--security", "starttls", "--ca-file", str(tls.ca_file),
                                 "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    where = f"password in plain file {PlaintextKeyring().file_path}"
    assert where in " ".join(result.output.split())
    shown = runner.invoke(app, ["--config", str(config_path), "config", "show"])
    assert f"plain file {PlaintextKeyring().file_path}" in "".join(shown.output.split("\n"))


def test_the_installed_command_refuses_keyrings_own_choice_of_its_plain_file(tmp_path: Path) -> None:
    """The issue's case for real: no PYTHON_KEYRING_BACKEND, no D-Bus, keyrings.alt in the venv; keyring picks
    its plain file by priority in a fresh process, and setup stops with exit 78 before anything is written."""
    home = tmp_path / "fresh"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", "NO_COLOR": "1"}
    done = subprocess.run([SCRIPT, "setup", "--email", USER, "--display-name", "B", "--host", "smtp.company.test",
                           "--port", "587", "--password-stdin"], input=PASSWORD + "\n", capture_output=True,
                          text=True, env=env, timeout=60, check=False)
    assert done.returncode == ExitCode.CONFIG, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert "keeps secrets unencrypted" in said and "xoromail secrets init-key" in said
    written = [path for path in home.rglob("*") if path.is_file()]
    assert written == [], written


def test_config_show_names_the_refused_backend_and_why(runner: CliRunner, config_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from xoromail_cli import config

    config.save_profile(config_path, PROFILE)
    chosen_by_priority(monkeypatch)
    shown = runner.invoke(app, ["--config", str(config_path), "config", "show", "--json"])
    store = json.loads(shown.stdout)["secret_store"]
    assert store["name"] == f"plain file {PlaintextKeyring().file_path}" and store["usable"] is False
    assert "unencrypted" in store["problem"]
    table = " ".join(runner.invoke(app, ["--config", str(config_path), "config", "show"]).output.split())
    assert "secret store" in table and "plain file" in table and "uses such a backend only when you choose" in table


def test_config_show_names_the_refused_file_once(runner: CliRunner, config_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from xoromail_cli import config

    config.save_profile(config_path, PROFILE)
    chosen_by_priority(monkeypatch)
    output = runner.invoke(app, ["--config", str(config_path), "config", "show"]).output
    line = next(line for line in output.splitlines() if line.startswith("secret store:"))
    assert line.count(PlaintextKeyring().file_path) == 1, line
    assert "plain file" in line and "unencrypted" in line and "only when you choose it by name" in line


def test_the_null_backend_chosen_by_name_is_named_as_the_cause_not_a_missing_d_bus(tmp_path: Path) -> None:
    """keyring never picks its null backend itself: a user who named it is told so (was: "no D-Bus session, as
    under cron", with the cron advice), by setup (nothing written) and by config show of an existing profile."""
    from xoromail_cli import config

    home = tmp_path / "fresh"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", "NO_COLOR": "1",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring", "XOROMAIL_CONFIG": str(tmp_path / "x.toml")}
    setup = subprocess.run([SCRIPT, "setup", "--email", USER, "--display-name", "B", "--host", "smtp.company.test",
                            "--port", "587", "--password-stdin", "--no-validate"], input=PASSWORD + "\n",
                           capture_output=True, text=True, env=env, timeout=60, check=False)
    assert setup.returncode == ExitCode.CONFIG, setup.stdout + setup.stderr
    assert not (tmp_path / "x.toml").exists()
    config.save_profile(tmp_path / "x.toml", PROFILE)
    shown = subprocess.run([SCRIPT, "config", "show"], capture_output=True, text=True, env=env, timeout=60,
                           check=False)
    for said in (" ".join((setup.stdout + setup.stderr).split()), " ".join(shown.stdout.split())):
        assert "chosen by $PYTHON_KEYRING_BACKEND (keyring.backends.null.Keyring) keeps no secrets" in said, said
        assert "D-Bus" not in said and "cron" not in said
