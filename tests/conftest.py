"""Real parts for every test: aiosmtpd servers on 127.0.0.1, trustme certificates, a file keyring.

Nothing here reaches the internet, and no library is patched: servers answer with the replies that
real providers send (see shared provider facts), so the code under test meets them for real.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyrings.alt.file import PlaintextKeyring
from typer.testing import CliRunner

from tests.fakes.ews_server import Behaviour, EwsServer
from tests.samples import smtp_profile
from xoromail_cli.credentials import MemorySecrets
from xoromail_cli.local.sink import CaptureHandler, SinkServer
from xoromail_cli.profile import Profile

pytest_plugins = ("tests.pg_server",)  # the real PostgreSQL server fixtures

USER = "billing@company.test"
PASSWORD = "correct horse battery staple"


@dataclass
class TLSFiles:
    ca: trustme.CA
    ca_file: Path
    server_context: ssl.SSLContext

    def context_for(self, *names: str) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*names).configure_cert(context)
        return context


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    authority = trustme.CA()
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return TLSFiles(authority, ca_file, context)


@pytest.fixture(scope="session")
def local_dns() -> Iterator[str]:
    """One DNS server on 127.0.0.1 for the whole run: every lookup the tool makes by itself (setup's MX guess,
    validate's domain notes) goes there, never to this machine's resolver."""
    from tests.dnsserver import dns_server

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


def use_no_keyring() -> None:
    """What a headless server without Secret Service has: keyring's always-failing backend."""
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]  # keyring's fail backend is unannotated


def failing_authenticator(reply: str) -> Callable[..., AuthResult]:
    """An authenticator that always answers with a provider's own failure reply."""

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        return AuthResult(success=False, handled=False, message=reply)

    return authenticate


def accepting_authenticator(login: str = USER, password: str = PASSWORD) -> Callable[..., AuthResult]:
    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == login
              and auth_data.password.decode() == password)
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False, message="535 5.7.3 Authentication unsuccessful")

    return authenticate


ServerFactory = Callable[..., SinkServer]


def secrets(password: str | None) -> MemorySecrets:
    """The secrets a validation is given: the password typed at setup, or none."""
    return MemorySecrets({} if password is None else {"password": password})


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


def profile_for(server: SinkServer, tls: TLSFiles, **overrides: Any) -> Profile:
    values: dict[str, Any] = {
        "name": "default", "email": USER, "host": "127.0.0.1", "port": server.port,
        "security": server.security, "display_name": "Company Billing", "ca_file": str(tls.ca_file),
        "timeout": 5.0,
    }
    values.update(overrides)
    return smtp_profile(**values)


EwsFactory = Callable[..., EwsServer]


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
def runner() -> CliRunner:
    return CliRunner()
