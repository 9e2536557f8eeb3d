"""The fixtures every test may ask for: aiosmtpd servers on 127.0.0.1, trustme certificates, a file keyring,
a DNS server, EWS servers, PostgreSQL (tests/support/pg_server.py), a ledger and a CLI runner.

Nothing here reaches the internet, and no library is patched: servers answer with the replies that
real providers send (see shared provider facts), so the code under test meets them for real. Helpers that are
not fixtures live in tests/support/ (see tests/README.md).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
import trustme
from aiosmtpd.smtp import AuthResult
from keyring.backend import KeyringBackend
from keyrings.alt.file import PlaintextKeyring
from typer.testing import CliRunner

from tests.support.common import (
    PASSWORD,
    USER,
    EwsFactory,
    ServerFactory,
    TLSFiles,
    accepting_authenticator,
    server_context,
)
from tests.support.engine import sqlite_ledger
from tests.support.fakes.ews_server import Behaviour, EwsServer
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.local.sink import CaptureHandler, SinkServer

pytest_plugins = ("tests.support.pg_server",)  # the real PostgreSQL server fixtures


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    authority = trustme.CA()
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    return TLSFiles(authority, ca_file, server_context(authority, "127.0.0.1", "localhost"))


@pytest.fixture(scope="session")
def local_dns() -> Iterator[str]:
    """One DNS server on 127.0.0.1 for the whole run: every lookup the tool makes by itself (setup's MX guess,
    validate's domain notes) goes there, never to this machine's resolver."""
    from tests.support.dnsserver import dns_server

    with dns_server() as server:
        yield server.address


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_dns: str) -> Iterator[Path]:
    """Each test gets its own config, state and keyring folders, and a real file keyring."""
    home = tmp_path / "home"
    for variable, folder in (("XDG_CONFIG_HOME", "config"), ("XDG_STATE_HOME", "state"),
                             ("XDG_DATA_HOME", "data"), ("HOME", "")):
        (home / folder).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(variable, str(home / folder))
    for variable in ("XOROMAIL_CONFIG", "XOROMAIL_PROFILE", "XOROMAIL_PASSWORD", "SSL_CERT_FILE",
                     "XOROMAIL_SECRETS_KEY", "XOROMAIL_SECRETS_FILE", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(variable, raising=False)
    # chosen by name: a plain file is used only when chosen (stores/keyrings.py), as a user may choose it
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    monkeypatch.setenv("XOROMAIL_DNS_SERVER", local_dns)
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("NO_COLOR", "1")
    previous: KeyringBackend = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    yield home
    keyring.set_keyring(previous)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "xoromail.toml"


@pytest.fixture
def smtp_server(tls: TLSFiles) -> Iterator[ServerFactory]:
    """Start aiosmtpd servers on free loopback ports; all are stopped after the test."""
    started: list[SinkServer] = []

    def start(security: str = "starttls", *, handler: CaptureHandler | None = None,
              authenticator: Callable[..., AuthResult] | str | None = "accept",
              tls_context: ssl.SSLContext | None = None) -> SinkServer:
        auth = accepting_authenticator() if authenticator == "accept" else authenticator
        assert not isinstance(auth, str)
        server = SinkServer(handler=handler, security=security, tls_context=tls_context or tls.server_context,
                            authenticator=auth, auth_required=auth is not None)
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def ews(tls: TLSFiles) -> Iterator[EwsFactory]:
    started: list[EwsServer] = []

    def start(**behaviour: object) -> EwsServer:
        values: dict[str, object] = {"users": {USER: PASSWORD}}
        values.update(behaviour)
        server = EwsServer(tls.server_context, Behaviour(**values)).start()  # type: ignore[arg-type]  # test keywords
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """A SQLite sent-ledger of its own for the test."""
    return sqlite_ledger(tmp_path)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
