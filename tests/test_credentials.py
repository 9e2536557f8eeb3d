from __future__ import annotations

from pathlib import Path

import keyring
import pytest

from tests.support.common import use_no_keyring
from tests.support.samples import smtp_profile
from xoromail_cli import credentials
from xoromail_cli.errors import ConfigError, ExitCode, KeyringUnavailableError

PROFILE = smtp_profile(name="default", email="billing@company.test", host="smtp.office365.com", port=587)


def test_password_round_trips_through_the_keyring() -> None:
    credentials.store_password("default", "s3cret")
    assert keyring.get_password("xoromail", "default") == "s3cret"
    assert credentials.resolve_password(PROFILE) == "s3cret"
    assert credentials.password_source(PROFILE).kind == "keyring"


def test_environment_overrides_the_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    credentials.store_password("default", "from-keyring")
    monkeypatch.setenv("XOROMAIL_PASSWORD", "from-env")
    assert credentials.resolve_password(PROFILE) == "from-env"
    assert credentials.password_source(PROFILE).kind == "environment"


def test_password_command_output_is_the_password() -> None:
    profile = smtp_profile(name="x", email="a@b.test", host="h.test", port=587,
                      password_command="printf 'from-command\\nignored\\n'")
    assert credentials.resolve_password(profile) == "from-command"
    assert credentials.password_source(profile).kind == "password_command"


def test_failing_password_command_does_not_echo_its_output() -> None:
    profile = smtp_profile(name="x", email="a@b.test", host="h.test", port=587,
                      password_command="echo leaked-secret; exit 3")
    with pytest.raises(ConfigError, match="exit status 3") as caught:
        credentials.resolve_password(profile)
    assert "leaked-secret" not in str(caught.value) + (caught.value.hint or "")


def test_no_password_anywhere_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no password for profile 'default'") as caught:
        credentials.resolve_password(PROFILE)
    assert caught.value.exit_code == ExitCode.CONFIG
    assert credentials.password_source(PROFILE).kind == "unset"


def test_without_a_keyring_backend_storing_refuses_and_names_alternatives() -> None:
    use_no_keyring()
    with pytest.raises(KeyringUnavailableError) as caught:
        credentials.store_password("default", "s3cret")
    hint = caught.value.hint or ""
    assert "keyrings.alt" in hint and "password_command" in hint and "XOROMAIL_PASSWORD" in hint
    assert caught.value.exit_code == ExitCode.CONFIG


def test_gmail_app_password_spaces_are_removed_only_for_gmail() -> None:
    assert credentials.normalize_password("smtp.gmail.com", "abcd efgh ijkl mnop") == "abcdefghijklmnop"
    assert credentials.normalize_password("smtp.office365.com", "abcd efgh ijkl mnop") == "abcd efgh ijkl mnop"
    assert credentials.normalize_password("smtp.gmail.com", "my real password x") == "my real password x"


def test_a_damaged_keyring_file_is_reported_without_its_contents(isolated_environment: Path) -> None:
    credentials.store_password("default", "s3cret")
    keyring_file = next((isolated_environment / "data").rglob("keyring_pass.cfg"))
    keyring_file.write_text("=c2VjcmV0cHc=\nnot an ini file\n")
    with pytest.raises(KeyringUnavailableError) as caught:
        credentials.resolve_password(PROFILE)
    shown = caught.value.message + (caught.value.hint or "")
    assert "c2VjcmV0cHc" not in shown and "s3cret" not in shown
    assert caught.value.exit_code == ExitCode.CONFIG
