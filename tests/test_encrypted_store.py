"""Issue 20: the encrypted secrets file of a server without a desktop, its key from a systemd credential or an
owner-only key file; no secret in plain text or base64 anywhere on disk."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from keyrings.alt.file import PlaintextKeyring
from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles
from tests.support.fakes.google_server import CLIENT_SECRET, GoogleServer
from tests.support.google_helpers import envelope, expire_stored_token, google, signed_in, transport
from tests.support.keyring_store import KeyringStore
from tests.support.secret_scan import files_holding
from xoromail_cli import credentials
from xoromail_cli.cli import app
from xoromail_cli.errors import ExitCode, KeyringUnavailableError
from xoromail_cli.services.google import oauth
from xoromail_cli.stores import encrypted

__all__ = ["google"]

TOKEN_CACHE = "{" + ", ".join(f'"token{n}": "secret-part-{n:04d}-value"' for n in range(400)) + "}"


def systemd_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What `LoadCredentialEncrypted=xoromail-secrets.key` gives a service: the key, 0400, in a private folder."""
    folder = tmp_path / "run-credentials"
    folder.mkdir(mode=0o700)
    key = folder / encrypted.CREDENTIAL_NAME
    key.write_text(encrypted.new_key_text())
    key.chmod(0o400)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(folder))
    return key


def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "secrets.key") -> Path:
    path = tmp_path / "keys" / name
    done = subprocess.run([str(Path(sys.executable).with_name("xoromail")), "secrets", "init-key", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "XOROMAIL_SECRETS_KEY" in done.stdout and "systemd-creds encrypt" in done.stdout
    monkeypatch.setenv(encrypted.KEY_ENV, str(path))
    return path


def test_setup_validate_and_send_through_the_encrypted_store_leave_no_secret_on_disk(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    systemd_credential(tmp_path, monkeypatch)
    server = smtp_server()  # accepts only USER with PASSWORD
    base = ["--config", str(config_path)]
    setup = runner.invoke(app, [*base, "setup", "--email", USER, "--display-name", "Billing", "--host", "127.0.0.1",
                                "--port", str(server.port), "--security", "starttls", "--ca-file", str(tls.ca_file),
                                "--password-stdin"], input=PASSWORD + "\n")
    assert setup.exit_code == 0, setup.output
    said = " ".join(setup.output.split())
    store = encrypted.store_path()
    assert f"password in encrypted file {store} (key: systemd credential xoromail-secrets.key)" in said
    assert runner.invoke(app, [*base, "validate"]).exit_code == 0
    sent = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "ann@client.test",
                               "--var", "customer_name=Ann", "--var", "invoice_number=INV-1",
                               "--var", "amount_due=99.5", "--var", "due_date=2026-11-01"])
    assert sent.exit_code == 0, sent.output
    assert len(server.messages) == 3  # setup's test message, validate's, the invoice
    shown = json.loads(runner.invoke(app, [*base, "config", "show", "--json"]).stdout)
    assert shown["password"]["source"] == "encrypted_file" and shown["password"]["set"] is True
    assert shown["secret_store"] == {"name": f"encrypted file {store} (key: systemd credential "
                                             "xoromail-secrets.key)", "usable": True, "encrypts": True,
                                     "problem": None}
    assert stat.S_IMODE(store.stat().st_mode) == 0o600 and store.read_bytes().startswith(encrypted.MAGIC)
    assert not Path(PlaintextKeyring().file_path).exists()  # the keyring was not used
    assert files_holding(tmp_path, PASSWORD) == []
    assert [path.name for path in store.parent.iterdir() if path.name.endswith(".tmp")] == []
    gone = runner.invoke(app, [*base, "disconnect", "--yes"])
    assert gone.exit_code == 0, gone.output
    assert (f"the stored password was removed from encrypted file {store} (key: systemd credential "
            "xoromail-secrets.key)") in " ".join(gone.output.split())  # the store it was in, named
    assert credentials.read_secret("default", "password") is None


def test_rotating_oauth_tokens_are_written_encrypted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token cache larger than a keyring entry, then a refreshed token written over the old one."""
    key_file(tmp_path, monkeypatch)
    credentials.write_secret("m365", "token_cache", TOKEN_CACHE)
    credentials.write_secret("m365", "access_token", "ya29.first-access-token-value")
    credentials.write_secret("m365", "access_token", "ya29.rotated-access-token-value")
    assert credentials.read_secret("m365", "token_cache") == TOKEN_CACHE
    assert credentials.read_secret("m365", "access_token") == "ya29.rotated-access-token-value"
    hits = files_holding(tmp_path, "secret-part-0007-value", "ya29.first-access-token-value",
                         "ya29.rotated-access-token-value", "token_cache")
    assert hits == []


def test_google_sign_in_and_a_refresh_keep_every_token_in_the_encrypted_file(
        google: GoogleServer, tls: TLSFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Connect and Allow, a send, the access token expired and refreshed (written back), another send."""
    key_file(tmp_path, monkeypatch)
    settings = signed_in(google, tls, tmp_path)
    (tmp_path / "client_secret.json").unlink()  # the downloaded JSON holds the client secret: the user's file
    first = KeyringStore("google-test").get(oauth.ACCESS_TOKEN)
    refresh_token = KeyringStore("google-test").get(oauth.REFRESH_TOKEN)
    assert first is not None and refresh_token is not None
    expire_stored_token()
    gmail = transport(settings, tls)
    gmail.open()
    assert gmail.send(envelope(1)).ok
    gmail.close()
    assert gmail.refreshes == 1 and len(google.state.sent) == 1
    fresh = oauth.AccessToken.from_secret(KeyringStore("google-test").get(oauth.ACCESS_TOKEN))
    old = oauth.AccessToken.from_secret(first)
    assert fresh is not None and old is not None and fresh.token != old.token
    assert files_holding(tmp_path, CLIENT_SECRET, refresh_token, old.token, fresh.token) == []
    assert credentials.list_secrets("google-test") == ["access_token", "client_secret", "refresh_token"]


def test_a_key_file_others_can_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = key_file(tmp_path, monkeypatch)
    key.chmod(0o640)
    with pytest.raises(KeyringUnavailableError) as caught:
        credentials.store_password("default", "s3cret")
    assert caught.value.exit_code == ExitCode.CONFIG
    assert "can be read by others (mode 0640)" in caught.value.message
    assert f"chmod 600 {key}" in (caught.value.hint or "")
    assert not encrypted.store_path().exists()


def test_a_missing_key_file_is_an_error_not_a_fallback_to_the_keyring(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(encrypted.KEY_ENV, str(tmp_path / "nowhere.key"))
    with pytest.raises(KeyringUnavailableError, match="does not exist") as caught:
        credentials.store_password("default", "s3cret")
    assert "xoromail secrets init-key" in (caught.value.hint or "")
    assert not Path(PlaintextKeyring().file_path).exists()


def test_another_key_cannot_open_the_file_and_changes_nothing(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    key_file(tmp_path, monkeypatch)
    credentials.store_password("default", "s3cret")
    before = encrypted.store_path().read_bytes()
    key_file(tmp_path, monkeypatch, "other.key")
    with pytest.raises(KeyringUnavailableError, match="cannot be opened with the key file"):
        credentials.read_secret("default", "password")
    with pytest.raises(KeyringUnavailableError):
        credentials.write_secret("default", "refresh_token", "x")
    assert encrypted.store_path().read_bytes() == before


def test_an_existing_key_is_never_overwritten(tmp_path: Path, runner: CliRunner,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    key = key_file(tmp_path, monkeypatch)
    before = key.read_bytes()
    again = runner.invoke(app, ["secrets", "init-key", str(key)])
    assert again.exit_code == ExitCode.CANTCREAT and "already exists" in again.output
    assert key.read_bytes() == before and stat.S_IMODE(key.stat().st_mode) == 0o600


WRITER = """
import sys
from xoromail_cli import credentials
for number in range(15):
    credentials.write_secret(sys.argv[1], f"kind{number}", f"value-{sys.argv[1]}-{number}")
assert "keyring" not in sys.modules, "the encrypted store needs no keyring (and no backend scan)"
"""


def test_writers_in_parallel_lose_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relay and a cron job may rotate tokens at once: each change is made under the file's lock."""
    key_file(tmp_path, monkeypatch)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, f"p{n}"], env=dict(os.environ)) for n in range(4)]
    assert [writer.wait(120) for writer in writers] == [0, 0, 0, 0]
    for n in range(4):
        assert credentials.list_secrets(f"p{n}") == sorted(f"kind{number}" for number in range(15))
        assert credentials.read_secret(f"p{n}", "kind14") == f"value-p{n}-14"


def test_removing_every_secret_of_a_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key_file(tmp_path, monkeypatch)
    for kind in ("password", "refresh_token", "relay_password"):
        credentials.write_secret("billing", kind, f"{kind}-value")
    credentials.write_secret("shipping", "password", "other")
    assert credentials.remove_secrets("billing") == ["password", "refresh_token", "relay_password"]
    assert credentials.list_secrets("billing") == [] and credentials.read_secret("shipping", "password") == "other"


def test_a_systemd_credential_others_can_read_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = systemd_credential(tmp_path, monkeypatch)
    key.chmod(0o440)
    with pytest.raises(KeyringUnavailableError, match=r"can be read by others \(mode 0440\)"):
        credentials.store_password("default", "s3cret")


def test_a_password_left_in_the_keyring_is_named_when_the_encrypted_file_has_none(
        runner: CliRunner, tmp_path: Path, config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set up on the keyring, then XOROMAIL_SECRETS_KEY for every run (the no-store hint's advice): the file
    has no password yet, and saying only "no password stored" sent people looking for a lost password."""
    from tests.support.samples import smtp_profile
    from xoromail_cli import config

    config.save_profile(config_path, smtp_profile(name="default", email=USER, host="127.0.0.1", port=2525))
    credentials.store_password("default", PASSWORD)  # the test keyring: setup before the key was given
    key_file(tmp_path, monkeypatch)
    shown = json.loads(runner.invoke(app, ["--config", str(config_path), "config", "show", "--json"]).stdout)
    assert shown["password"]["set"] is False
    assert "the OS keyring is not read while a secrets key is given" in shown["password"]["detail"]
    checked = runner.invoke(app, ["--config", str(config_path), "validate", "--no-send"])
    said = " ".join(checked.output.split())
    assert checked.exit_code == 78 and "the OS keyring is not read while a secrets key is given" in said
    assert "setup" in said
