"""`--send-via smtp`: a token with the SMTP.Send scope, and XOAUTH2 accepted by an aiosmtpd server."""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult

from tests.support.common import ServerFactory, TLSFiles, failing_authenticator
from tests.support.fakes.microsoft_server import MicrosoftServer
from tests.support.keyring_store import KeyringStore
from tests.support.m365_helpers import approving, settings_for
from xoromail_cli.errors import ConfigError
from xoromail_cli.local.sink import CaptureHandler
from xoromail_cli.services.microsoft365.auth import TokenSource
from xoromail_cli.services.microsoft365.smtp import access_token_for_smtp, xoauth2_string

USER = "billing@company.test"


@dataclass
class _Login:
    login: bytes


class XOAuth2Handler(CaptureHandler):
    """Exchange Online's SMTP AUTH XOAUTH2: the bearer token must carry SMTP.Send for this user."""

    identity: MicrosoftServer | None = None

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        if len(args) > 1:
            raw = base64.b64decode(args[1])
        else:
            answer = await server.challenge_auth("")
            raw = answer if isinstance(answer, bytes) else b""
        fields = dict(part.split("=", 1) for part in raw.decode().split("\x01") if "=" in part)
        assert self.identity is not None
        issued = self.identity.bearer(fields.get("auth"))
        if issued is None or "SMTP.Send" not in issued.scope or issued.user != fields.get("user"):
            return AuthResult(success=False, handled=False, message="535 5.7.3 Authentication unsuccessful")
        return AuthResult(success=True, auth_data=_Login(fields["user"].encode()))


@pytest.fixture
def identity(tls: TLSFiles) -> Iterator[MicrosoftServer]:
    with MicrosoftServer(tls.server_context) as fake:
        yield fake


def send_with_xoauth2(port: int, tls: TLSFiles, user: str, token: str) -> None:
    context = tls.client_context()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.starttls(context=context)
        client.ehlo()  # smtplib's auth() does not greet again after STARTTLS, and takes a 503 for success
        client.auth("XOAUTH2", lambda challenge=None: xoauth2_string(user, token))
        client.sendmail(user, ["customer@example.org"], b"Subject: hi\r\n\r\nhello\r\n")


def test_the_xoauth2_string_has_the_documented_form() -> None:
    assert xoauth2_string("a@b.test", "T0K") == "user=a@b.test\x01auth=Bearer T0K\x01\x01"


def test_a_delegated_sign_in_gives_an_smtp_token_that_xoauth2_accepts(identity: MicrosoftServer, tls: TLSFiles,
                                                                      smtp_server: ServerFactory) -> None:
    settings = settings_for(identity, send_via="smtp")
    store = KeyringStore("m365")
    TokenSource(settings, store, mailbox=USER, ca_file=str(tls.ca_file), timeout=10).sign_in(approving(identity))
    token = access_token_for_smtp(settings, store, mailbox=USER, ca_file=str(tls.ca_file), timeout=10)
    handler = XOAuth2Handler()
    handler.identity = identity
    server = smtp_server("starttls", handler=handler, authenticator=failing_authenticator(
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."))
    send_with_xoauth2(server.port, tls, USER, token)
    assert server.messages[0].login == USER
    assert settings.smtp_scopes == ["https://outlook.office.com/SMTP.Send"]


def test_a_graph_token_is_not_an_smtp_token(identity: MicrosoftServer, tls: TLSFiles,
                                            smtp_server: ServerFactory) -> None:
    settings = settings_for(identity)
    store = KeyringStore("m365")
    source = TokenSource(settings, store, mailbox=USER, ca_file=str(tls.ca_file), timeout=10)
    source.sign_in(approving(identity))
    handler = XOAuth2Handler()
    handler.identity = identity
    server = smtp_server("starttls", handler=handler, authenticator=failing_authenticator("535 5.7.3 no"))
    with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        send_with_xoauth2(server.port, tls, USER, source.token())
    assert caught.value.smtp_code == 535 and server.messages == []


def test_app_only_smtp_is_refused_with_the_exchange_steps_for_this_tenant(identity: MicrosoftServer) -> None:
    settings = settings_for(identity, mode="app", send_via="smtp")
    with pytest.raises(ConfigError) as caught:
        access_token_for_smtp(settings, KeyringStore("m365"), mailbox=USER)
    hint = caught.value.hint or ""
    assert f"New-ServicePrincipal -AppId {settings.client_id}" in hint and "Enterprise" in hint
    assert f"Add-MailboxPermission -Identity {USER}" in hint and "https://outlook.office365.com/.default" in hint
    assert identity.requests_seen == []


def test_a_send_via_smtp_profile_validates_through_the_smtp_transport_with_xoauth2(
        identity: MicrosoftServer, tls: TLSFiles, smtp_server: ServerFactory) -> None:
    from xoromail_cli import validate
    from xoromail_cli.profile import Profile

    handler = XOAuth2Handler()
    handler.identity = identity
    server = smtp_server("starttls", handler=handler, authenticator=failing_authenticator(
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."))
    settings = settings_for(identity, send_via="smtp", smtp_host="127.0.0.1", smtp_port=server.port)
    store = KeyringStore("m365")
    TokenSource(settings, store, mailbox=USER, ca_file=str(tls.ca_file), timeout=10).sign_in(approving(identity))
    profile = Profile(name="default", email=USER, service="microsoft365", settings=settings,
                      display_name="Company Billing", ca_file=str(tls.ca_file), timeout=10.0)
    report = validate.run(profile, store)
    assert report.ok, report.to_json()
    assert [stage.name for stage in report.stages] == ["config", "dns", "connect", "ehlo", "tls", "auth", "send"]
    assert "XOAUTH2" in report.stages[5].detail and len(server.messages) == 1


def test_high_volume_email_gets_a_token_valid_for_more_than_600_seconds(tls: TLSFiles) -> None:
    """HVE refuses a token expiring within 600 s; msal alone would reuse one with 300 s left."""
    with MicrosoftServer(tls.server_context, token_lifetime=500) as fake:
        store = KeyringStore("hve")
        source = TokenSource(settings_for(fake, send_via="smtp"), store, mailbox=USER, ca_file=str(tls.ca_file),
                             timeout=10)
        source.sign_in(approving(fake))
        before = len(fake.token_requests)
        office = settings_for(fake, send_via="smtp")
        assert access_token_for_smtp(office, store, mailbox=USER, ca_file=str(tls.ca_file), timeout=10)
        assert len(fake.token_requests) == before  # 500 s left is enough for smtp.office365.com
        hve = settings_for(fake, send_via="smtp", smtp_host="smtp-hve.office365.com")
        token = access_token_for_smtp(hve, store, mailbox=USER, ca_file=str(tls.ca_file), timeout=10)
        assert fake.token_requests[before:] == ["refresh_token"]
        issued = fake.bearer(token)
        assert issued is not None and "SMTP.Send" in issued.scope
