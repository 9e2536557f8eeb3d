from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.samples import smtp_profile
from xoromail_cli import config, paths
from xoromail_cli.errors import ConfigError, ExitCode
from xoromail_cli.services.smtp.settings import SmtpSettings


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """\
[profiles.default]
email = "billing@company.test"
host = "smtp.office365.com"
port = 587
security = "starttls"
display_name = "Company Billing"

[profiles.ops]
service = "webmail"
email = "ops@company.test"
host = "smtp.gmail.com"
port = 465
security = "ssl"
"""


def test_profiles_load_with_types_and_aliases(config_path: Path) -> None:
    loaded = config.load(write(config_path, GOOD))
    assert set(loaded.profiles) == {"default", "ops"}
    assert loaded.profiles["default"].settings.port == 587
    assert loaded.profiles["ops"].service == "smtp"
    assert loaded.profiles["ops"].settings.auth_username(loaded.profiles["ops"].email) == "ops@company.test"


def test_missing_file_is_an_empty_configuration(config_path: Path) -> None:
    assert config.load(config_path).profiles == {}


def test_unknown_profile_names_the_known_ones(config_path: Path) -> None:
    write(config_path, GOOD)
    with pytest.raises(ConfigError, match=r"no profile 'nope' .*profiles: default, ops") as caught:
        config.load_profile(config_path, "nope")
    assert caught.value.exit_code == ExitCode.CONFIG


def test_malformed_toml_names_file_and_line(config_path: Path) -> None:
    write(config_path, '[profiles.default]\nemail = "a@b.test"\nport = = 5\n')
    with pytest.raises(ConfigError) as caught:
        config.load(config_path)
    assert str(config_path) in caught.value.message
    assert "line 3" in caught.value.message
    assert caught.value.exit_code == ExitCode.CONFIG


def test_wrong_type_names_line_and_field(config_path: Path) -> None:
    write(config_path, GOOD.replace("port = 465", 'port = "465"'))
    with pytest.raises(ConfigError, match=r"xoromail\.toml:12: 'port' must be int, not str"):
        config.load(config_path)


def test_unknown_setting_is_caught_with_its_line(config_path: Path) -> None:
    write(config_path, GOOD.replace('security = "starttls"', 'securty = "starttls"'))
    with pytest.raises(ConfigError, match=r":5: unknown setting 'securty' in profile 'default'"):
        config.load(config_path)


def test_invalid_value_names_line_and_field(config_path: Path) -> None:
    write(config_path, GOOD.replace("port = 587", "port = 70000"))
    with pytest.raises(ConfigError, match=r":4: profile 'default': port 70000 is out of range"):
        config.load(config_path)


def test_missing_required_setting_points_at_the_table(config_path: Path) -> None:
    write(config_path, "[profiles.default]\nemail = \"a@b.test\"\n")
    with pytest.raises(ConfigError, match=r":1: profile 'default' is missing 'host'"):
        config.load(config_path)


def test_save_is_atomic_private_and_keeps_other_profiles(config_path: Path) -> None:
    write(config_path, GOOD)
    new = smtp_profile(name="default", email="new@company.test", host="smtp.zoho.com", port=465, security="ssl")
    config.save_profile(config_path, new)
    assert stat.S_IMODE(os.stat(config_path).st_mode) == 0o600
    loaded = config.load(config_path)
    assert loaded.profiles["default"].email == "new@company.test"
    assert loaded.profiles["ops"].settings.host == "smtp.gmail.com"
    assert [p.name for p in config_path.parent.iterdir()] == [config_path.name]


def test_failed_write_leaves_the_old_file_intact(config_path: Path) -> None:
    write(config_path, GOOD)

    with pytest.raises(TypeError):
        paths.atomic_write(config_path, "not bytes")  # type: ignore[arg-type]  # provokes a failure mid-write
    assert config_path.read_text() == GOOD
    assert [p.name for p in config_path.parent.iterdir()] == [config_path.name]


def test_service_names_of_the_erp_are_understood() -> None:
    assert config.normalize_service("WebMail") == "smtp"
    assert config.normalize_service("EWS") == config.normalize_service("exchange") == "exchange"
    assert config.normalize_service("Email services") == "google"
    assert config.normalize_service("m365") == "microsoft365"
    with pytest.raises(ConfigError, match="unknown service 'lotus'") as caught:
        config.normalize_service("lotus")
    assert "email-services" in (caught.value.hint or "")


def test_an_invalid_rate_is_a_config_error_with_its_line(config_path: Path) -> None:
    write(config_path, GOOD.replace('display_name = "Company Billing"', 'display_name = "B"\nrate = "fast"'))
    with pytest.raises(ConfigError, match=r":7: profile 'default': rate 'fast'"):
        config.load(config_path)


@pytest.mark.parametrize("value", ["nan", "inf", "0", "86400"])
def test_timeouts_must_be_finite_and_sensible(config_path: Path, value: str) -> None:
    write(config_path, GOOD.replace("port = 587", f"port = 587\ntimeout = {value}"))
    with pytest.raises(ConfigError, match=r"timeout .* must be more than 0 and at most 3600 seconds"):
        config.load(config_path)


def test_a_first_release_file_loads_and_only_the_profile_saved_is_rewritten_in_the_new_form(
        config_path: Path) -> None:
    write(config_path, GOOD)
    loaded = config.load(config_path)
    assert {p.form for p in loaded.profiles.values()} == {"flat"}
    assert loaded.profiles["default"].settings == SmtpSettings(host="smtp.office365.com", port=587, security="starttls")
    config.save_profile(config_path, dataclasses.replace(loaded.profiles["ops"], display_name="Ops"))
    text = config_path.read_text()
    assert "[profiles.ops.smtp]" in text and "[profiles.default.smtp]" not in text
    again = config.load(config_path)
    assert (again.profiles["default"].form, again.profiles["ops"].form) == ("flat", "current")
    assert again.profiles["default"].settings == loaded.profiles["default"].settings
    assert again.profiles["ops"].settings == loaded.profiles["ops"].settings


def test_config_show_says_which_form_it_read(runner: CliRunner, config_path: Path) -> None:
    from xoromail_cli.cli import app

    write(config_path, GOOD)
    shown = runner.invoke(app, ["--config", str(config_path), "config", "show", "--json"])
    assert shown.exit_code == 0 and shown.stdout and '"form": "flat' in shown.stdout


def test_a_profile_email_with_an_empty_domain_label_is_refused_naming_the_field(config_path: Path) -> None:
    write(config_path, GOOD.replace("billing@company.test", "billing@company..test"))
    with pytest.raises(ConfigError, match=r":2: profile 'default': email 'billing@company..test' is not a valid "
                                          r"email address: in the part after the @, it has an empty part"):
        config.load(config_path)
