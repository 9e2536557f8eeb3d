"""Issue 24: setup records the keyring backend that holds the secrets (`keyring_backend`), and one `send` loads that
backend by name instead of keyring's scan, which imports every installed backend to rank them. An explicit choice
($PYTHON_KEYRING_BACKEND, keyringrc.cfg) still wins; a recorded backend that cannot be loaded, is not viable here
or keeps secrets unencrypted is not used: keyring's full resolution and issue 22's policy decide, with their
messages. The real Secret Service runs in a `dbus-run-session` (as tests/test_secret_service.py)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring
from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles
from tests.support.samples import smtp_profile
from tests.support.secret_service import in_secret_service_session, secret_service_here
from tests.support.send_probe import PROBE, SEND
from xoromail_cli import config, credentials
from xoromail_cli.cli import app
from xoromail_cli.errors import ExitCode, KeyringUnavailableError

SCRIPT = str(Path(sys.executable).with_name("xoromail"))
SECRET_SERVICE = "keyring.backends.SecretService.Keyring"
SCANNED = ("keyring.backends.chainer", "keyring.backends.kwallet", "keyring.backends.libsecret",
           "keyring.backends.macOS", "keyring.backends.Windows", "keyrings.alt")
"""What keyring's backend scan (`keyring.backend.get_all_keyring`) imports besides the backend it picks."""


def invoice(number: int) -> list[str]:
    """SEND for another invoice: the ledger would skip the same one sent twice."""
    return [f"invoice_number=INV-{number}" if word == "invoice_number=INV-1" else word for word in SEND]


def scanned(modules: list[str]) -> list[str]:
    return sorted(name for name in modules if any(name == p or name.startswith(p + ".") for p in SCANNED))


def recorded(config_path: Path) -> Any:
    return tomllib.loads(config_path.read_text(encoding="utf-8"))["profiles"]["default"].get("keyring_backend")


OLD_FORM = """
import pathlib, sys, tomllib, tomli_w
document = tomllib.loads(pathlib.Path(sys.argv[1]).read_text(encoding="utf-8"))
document["profiles"]["default"].pop("keyring_backend")
pathlib.Path(sys.argv[2]).write_text(tomli_w.dumps(document), encoding="utf-8")
"""
"""The same settings as an older release wrote them: no `keyring_backend`."""


def test_send_loads_the_recorded_secret_service_without_the_scan(
        smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> None:
    instead = "checked that a recorded backend that cannot be loaded falls back to keyring's own choice"
    server = smtp_server()
    if not secret_service_here(instead):
        return  # the fallback tests below run everywhere
    config_path = tmp_path / "config" / "xoromail.toml"
    old_form = tmp_path / "config" / "old.toml"
    listings = [tmp_path / f"modules{number}.json" for number in range(2)]
    setup = {"argv": [SCRIPT, "--config", str(config_path), "setup", "--email", USER, "--display-name", "Billing",
                      "--host", "127.0.0.1", "--port", str(server.port), "--security", "starttls", "--ca-file",
                      str(tls.ca_file), "--password-stdin"], "input": PASSWORD + "\n"}
    write_old_form = [sys.executable, "-c", OLD_FORM, str(config_path), str(old_form)]
    steps: list[Any] = [
        setup,
        [sys.executable, "-c", PROBE, str(listings[0]), "--config", str(config_path), *invoice(1), "--quiet"],
        write_old_form,
        [sys.executable, "-c", PROBE, str(listings[1]), "--config", str(old_form), *invoice(2), "--quiet"],
        ["env", "PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring", SCRIPT, "--config", str(config_path),
         *invoice(3), "--quiet"],
    ]
    results = in_secret_service_session(steps, tmp_path)
    for step in results[:4]:
        assert step["code"] == 0, step
    assert recorded(config_path) == SECRET_SERVICE
    with_record, old = (json.loads(listing.read_text(encoding="utf-8")) for listing in listings)
    assert "keyring.backends.SecretService" in with_record
    assert scanned(with_record) == []  # no other backend imported: the scan never ran
    assert "keyring.backends.chainer" in scanned(old)  # the old form still scans, and still sends
    assert len(server.messages) == 3  # setup's test, and both sends
    explicit = results[4]  # the plain file named in the environment holds no password: it was used, not the record
    assert explicit["code"] == ExitCode.CONFIG, explicit
    assert "no password for profile 'default'" in explicit["stderr"]
    assert len(server.messages) == 3


def test_setup_records_no_plain_file_even_when_chosen_by_name(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    """The test environment names keyrings.alt's plain file: used, as chosen, but never recorded (a record is
    loaded without the user naming it)."""
    server = smtp_server()
    result = runner.invoke(app, ["--config", str(config_path), "setup", "--email", USER, "--display-name", "B",
                                 "--host", "127.0.0.1", "--port", str(server.port), "--security", "starttls",
                                 "--ca-file", str(tls.ca_file), "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert recorded(config_path) is None
    assert credentials.resolve_password(config.load_profile(config_path, "default")) == PASSWORD


@pytest.mark.parametrize("backend", [SECRET_SERVICE, "keyrings.gone.Keyring", "keyring.backends.null.Keyring",
                                     "keyrings.alt.file.PlaintextKeyring", "os.path.join"])
def test_a_recorded_backend_not_usable_here_leaves_the_choice_and_its_message_as_before(
        tmp_path: Path, backend: str) -> None:
    """No D-Bus session (as under cron), a backend no longer installed, the null backend, a plain file written in
    by hand, a name that is no backend: the installed command says exactly what it says without the record."""
    home = tmp_path / "fresh"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", "NO_COLOR": "1"}
    said = []
    for name, record in (("with", backend), ("without", None)):
        path = tmp_path / f"{name}.toml"
        profile = smtp_profile(name="default", email=USER, host="smtp.company.test", port=587)
        config.save_profile(path, dataclasses.replace(profile, keyring_backend=record))
        done = subprocess.run([SCRIPT, "--config", str(path), "send", *SEND[1:]], capture_output=True, text=True,
                              env=env, timeout=60, check=False)
        said.append((done.returncode, done.stderr.replace(str(path), "PATH")))
    assert said[0] == said[1]
    assert said[0][0] == ExitCode.CONFIG and "keeps secrets unencrypted" in " ".join(said[0][1].split())


def test_a_recorded_module_outside_the_keyring_namespaces_is_never_imported(tmp_path: Path) -> None:
    """The settings file is outside input: a hand-written `keyring_backend` naming some other module on the path
    (here one that leaves a mark when imported) is not imported; keyring's own resolution decides, as without it."""
    planted = tmp_path / "lib"
    planted.mkdir()
    mark = tmp_path / "imported"
    (planted / "planted.py").write_text(f"open({str(mark)!r}, 'w').close()\nclass Keyring: pass\n")
    home = tmp_path / "fresh"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", "NO_COLOR": "1",
           "PYTHONPATH": str(planted)}
    path = tmp_path / "settings.toml"
    profile = smtp_profile(name="default", email=USER, host="smtp.company.test", port=587)
    config.save_profile(path, dataclasses.replace(profile, keyring_backend="planted.Keyring"))
    done = subprocess.run([SCRIPT, "--config", str(path), "send", *SEND[1:]], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == ExitCode.CONFIG, done.stderr
    assert not mark.exists()


def test_a_recorded_plain_file_is_not_used_without_being_named(monkeypatch: pytest.MonkeyPatch) -> None:
    credentials.store_password("default", PASSWORD)  # while the user named the plain file
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    keyring.set_keyring(PlaintextKeyring())  # what keyring picks by priority where no Secret Service runs
    profile = smtp_profile(name="default", email=USER, host="smtp.company.test", port=587)
    hand_written = dataclasses.replace(profile, keyring_backend="keyrings.alt.file.PlaintextKeyring")
    with pytest.raises(KeyringUnavailableError, match="unencrypted"):
        credentials.resolve_password(hand_written)


@pytest.mark.parametrize(("value", "said"), [('"keyring backends"', "is not a class path"),
                                             ('"Keyring"', "is not a class path"), ("5", "must be str")])
def test_a_keyring_backend_that_is_no_class_path_is_refused_with_its_line(
        config_path: Path, value: str, said: str) -> None:
    from xoromail_cli.errors import ConfigError

    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(f'[profiles.default]\nemail = "{USER}"\nkeyring_backend = {value}\n\n'
                           '[profiles.default.smtp]\nhost = "smtp.company.test"\nport = 587\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=said) as caught:
        config.load(config_path)
    assert f"{config_path}:3:" in caught.value.message


def test_setup_with_the_encrypted_store_clears_an_earlier_record(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The secrets move to the encrypted file: the keyring backend recorded before no longer holds them."""
    server = smtp_server()
    profile = smtp_profile(name="default", email=USER, host="127.0.0.1", port=server.port)
    config.save_profile(config_path, dataclasses.replace(profile, keyring_backend=SECRET_SERVICE))
    assert recorded(config_path) == SECRET_SERVICE
    key = tmp_path / "secrets.key"
    subprocess.run([SCRIPT, "secrets", "init-key", str(key)], capture_output=True, check=True, timeout=60)
    monkeypatch.setenv("XOROMAIL_SECRETS_KEY", str(key))
    result = runner.invoke(app, ["--config", str(config_path), "setup", "--email", USER, "--display-name", "B",
                                 "--host", "127.0.0.1", "--port", str(server.port), "--security", "starttls",
                                 "--ca-file", str(tls.ca_file), "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert recorded(config_path) is None
    assert credentials.resolve_password(config.load_profile(config_path, "default")) == PASSWORD
