"""The test account and what every kind of test builds around it: its address and password, the TLS files of
the session's certificate authority, SMTP authenticators, a profile for a local server, its secrets."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import keyring
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword
from keyring.backends import fail

from tests.support.fakes.ews_server import EwsServer
from tests.support.samples import smtp_profile
from xoromail_cli import config, credentials
from xoromail_cli.credentials import MemorySecrets
from xoromail_cli.local.sink import SinkServer, free_port
from xoromail_cli.profile import Profile

USER = "billing@company.test"
PASSWORD = "correct horse battery staple"

ServerFactory = Callable[..., SinkServer]
"""The `smtp_server` fixture: start(security="starttls", *, handler=…, authenticator="accept"|None|…)."""
EwsFactory = Callable[..., EwsServer]
"""The `ews` fixture: start(**behaviour) → a local EWS server."""


@dataclass
class TLSFiles:
    ca: trustme.CA
    ca_file: Path
    server_context: ssl.SSLContext

    def context_for(self, *names: str, not_after: datetime | None = None) -> ssl.SSLContext:
        """A server's TLS context with a certificate of this CA for `names` (ending at `not_after` if given)."""
        return server_context(self.ca, *names, not_after=not_after)

    def client_context(self) -> ssl.SSLContext:
        """A client's TLS context that trusts this CA (and verifies names, as every client should)."""
        return client_context(self.ca)


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """The one way the tests make a client's TLS context: the default one, trusting `ca`."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def server_context(ca: trustme.CA, *names: str, not_after: datetime | None = None) -> ssl.SSLContext:
    """The one way the tests make a server's TLS context: a certificate of `ca` for `names`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names, not_after=not_after).configure_cert(context)
    return context


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


def secrets(password: str | None) -> MemorySecrets:
    """The secrets a validation is given: the password typed at setup, or none."""
    return MemorySecrets({} if password is None else {"password": password})


def profile_for(server: SinkServer, tls: TLSFiles, **overrides: Any) -> Profile:
    values: dict[str, Any] = {
        "name": "default", "email": USER, "host": "127.0.0.1", "port": server.port,
        "security": server.security, "display_name": "Company Billing", "ca_file": str(tls.ca_file),
        "timeout": 5.0,
    }
    values.update(overrides)
    return smtp_profile(**values)


def configure(config_path: Path, server: SinkServer | None, tls: TLSFiles, **overrides: object) -> list[str]:
    """Save the test profile for `server` (a closed port when None) and its password in the keyring; the global
    options that point the CLI at it."""
    if server is None:
        server = SinkServer(port=free_port())
    config.save_profile(config_path, profile_for(server, tls, company_name="ACME Ltd", **overrides))
    credentials.store_password("default", PASSWORD)
    return ["--config", str(config_path)]
