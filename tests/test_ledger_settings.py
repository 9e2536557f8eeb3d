"""The `ledger` setting: its password comes from PGPASSWORD into the keyring, never from a command line,
never to the file or the screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.cli import setup_args
from tests.support.common import ServerFactory, TLSFiles
from tests.support.samples import smtp_profile
from xoromail_cli import config
from xoromail_cli import ledger as ledger_doors
from xoromail_cli.cli import app
from xoromail_cli.errors import ConfigError
from xoromail_cli.ledger import location as ledger_url

URL = "postgresql://erp_mail:s3cr%40t-pw@db.erp.test:5432/erp?sslmode=verify-full"


BARE = "postgresql://erp_mail@db.erp.test:5432/erp?sslmode=verify-full"


def test_setup_ledger_takes_the_password_from_pgpassword_and_keeps_it_in_the_keyring(
        runner: CliRunner, tls: TLSFiles, config_path: Path) -> None:
    result = runner.invoke(app, [*setup_args(config_path, 587, tls, "--no-validate"), "--ledger", BARE],
                           input="pw\n", env={"PGPASSWORD": "s3cr@t-pw"})
    assert result.exit_code == 0, result.output
    assert "ledger password" in result.output
    saved = config_path.read_text()
    assert "s3cr" not in saved and BARE in saved
    assert ledger_url.stored_password("default") == "s3cr@t-pw"
    shown = runner.invoke(app, ["--config", str(config_path), "config", "show", "--json"])
    assert "s3cr" not in shown.output and "erp_mail@db.erp.test" in shown.output


@pytest.mark.parametrize("command", [["setup", "--ledger", URL], ["ledger", "copy", "--to", URL],
                                     ["ledger", "copy", "--from", URL, "--to", "copy.db"]])
def test_a_password_in_a_url_on_the_command_line_is_refused_with_the_way_to_give_it(
        runner: CliRunner, config_path: Path, command: list[str]) -> None:
    result = runner.invoke(app, ["--config", str(config_path), *command], input="pw\n")
    assert result.exit_code == 2, result.output
    assert "PGPASSWORD" in result.output and "ps" in result.output
    assert ("setup then keeps it" in " ".join(result.output.split())) is (command[0] == "setup")  # copy keeps none
    assert ledger_url.stored_password("default") is None and not config_path.exists()


def test_a_setup_that_fails_validation_keeps_no_ledger_password(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    result = runner.invoke(app, [*setup_args(config_path, server.port, tls), "--ledger", BARE], input="wrong\n",
                           env={"PGPASSWORD": "s3cr@t-pw"})
    assert result.exit_code == 69 and "ledger" in result.output  # db.erp.test does not resolve
    assert ledger_url.stored_password("default") is None and not config_path.exists()


def test_config_show_masks_a_password_written_into_the_file_by_hand(runner: CliRunner, config_path: Path) -> None:
    config.save_profile(config_path, smtp_profile(name="default", email="a@b.test", host="h", port=587,
                                                    ledger=URL))
    for extra in ([], ["--json"]):
        shown = runner.invoke(app, ["--config", str(config_path), "config", "show", *extra])
        assert shown.exit_code == 0 and "s3cr" not in shown.output and "erp_mail:***@db.erp.test" in shown.output


def test_the_ledger_setting_reads_paths_sqlite_urls_and_postgresql_urls(tmp_path: Path) -> None:
    assert ledger_url.parse(str(tmp_path / "l.db")).path == tmp_path / "l.db"
    assert ledger_url.parse(f"sqlite://{tmp_path}/l.db").path == tmp_path / "l.db"
    found = ledger_url.parse(URL)
    assert found.is_postgres and found.password == "s3cr@t-pw" and "s3cr" not in found.describe()
    with pytest.raises(ConfigError, match="unknown kind of ledger 'mysql'"):
        ledger_url.parse("mysql://u:pw@h/db")
    with pytest.raises(ConfigError, match="absolute path"):
        ledger_url.parse("sqlite://relative.db")


def test_xoromail_ledger_overrides_the_profile_for_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = smtp_profile(name="default", email="a@b.test", host="h", port=587, ledger=str(tmp_path / "a.db"))
    assert ledger_doors.location_for(profile).path == tmp_path / "a.db"
    monkeypatch.setenv("XOROMAIL_LEDGER", "postgresql://u@db.erp.test/erp")
    assert ledger_doors.location_for(profile).url == "postgresql://u@db.erp.test/erp"


def test_a_password_given_as_a_url_parameter_is_kept_apart_too() -> None:
    found = ledger_url.parse("postgresql://erp_mail@db.erp.test/erp?sslmode=verify-full&password=p%26w")
    assert found.password == "p&w" and found.url == "postgresql://erp_mail@db.erp.test/erp?sslmode=verify-full"
    assert "p%26w" not in ledger_url.redact("postgresql://erp_mail@db.erp.test/erp?password=p%26w")


def test_validate_proves_a_shared_ledger_answers_and_fails_at_the_ledger_stage_when_it_does_not(
        smtp_server: ServerFactory, tls: TLSFiles, pg_url: str) -> None:
    from tests.support.common import profile_for, secrets
    from xoromail_cli import validate

    server = smtp_server()
    good = validate.run(profile_for(server, tls, ledger=pg_url), secrets("correct horse battery staple"))
    assert good.ok and [s.name for s in good.stages][:2] == ["config", "ledger"]
    down = profile_for(server, tls, ledger="postgresql://xoromail_app@127.0.0.1:1/none")
    report = validate.run(down, secrets("correct horse battery staple"))
    assert report.failed is not None and report.failed.name == "ledger" and report.exit_code == 75
    assert "dns" in report.skipped and not server.messages[1:]


CONNINFO = "host=db.erp.test user=erp_mail password=s3cr@t-pw dbname=erp"


@pytest.mark.parametrize("command", [["setup", "--ledger", CONNINFO], ["ledger", "copy", "--to", CONNINFO]])
def test_a_libpq_key_value_string_is_refused_not_saved_as_a_file_name_with_its_password(
        runner: CliRunner, tls: TLSFiles, config_path: Path, command: list[str]) -> None:
    if command[0] == "setup":
        command = [*setup_args(config_path, 587, tls, "--no-validate")[2:], "--ledger", CONNINFO]
    result = runner.invoke(app, ["--config", str(config_path), *command], input="pw\n")
    assert result.exit_code == 2, result.output
    assert "libpq 'key=value' string with a password" in " ".join(result.output.split())
    assert "postgresql://user@host/db" in " ".join(result.output.split())
    assert not config_path.exists() or "s3cr" not in config_path.read_text()
