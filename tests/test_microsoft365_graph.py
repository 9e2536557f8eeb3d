"""The Graph transport against the local Graph: MIME kept exactly, one session, classified errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.common import TLSFiles
from tests.support.fakes.microsoft_server import ADMIN, CLIENT_SECRET, USER, GraphReply, MicrosoftServer
from tests.support.keyring_store import KeyringStore
from tests.support.m365_helpers import approving, settings_for
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services.base import ConnectionLostError
from xoromail_cli.services.microsoft365.auth import CLIENT_SECRET as SECRET_KIND
from xoromail_cli.services.microsoft365.auth import TokenSource
from xoromail_cli.services.microsoft365.graph import MAX_MESSAGE_BYTES
from xoromail_cli.services.microsoft365.transport import Microsoft365Transport

MESSAGE = (b"From: Company Billing <billing@company.test>\r\nTo: customer@example.org\r\n"
           b"Reply-To: accounts@company.test\r\nSubject: Invoice 1001\r\nMessage-ID: <inv-1001@company.test>\r\n"
           b"Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"\r\nPlease find invoice 1001.\r\n")


def envelope(**overrides: object) -> Envelope:
    values: dict[str, object] = {"sender": USER, "to": ("customer@example.org",), "data": MESSAGE,
                                 "message_id": "<inv-1001@company.test>"}
    values.update(overrides)
    return Envelope(**values)  # type: ignore[arg-type]  # the test's overrides are the dataclass's fields


@pytest.fixture
def server(tls: TLSFiles) -> Iterator[MicrosoftServer]:
    with MicrosoftServer(tls.server_context) as fake:
        yield fake


def delegated(server: MicrosoftServer, tls: TLSFiles, user: str | None = None, trace: list[str] | None = None,
              **settings: object) -> Microsoft365Transport:
    store = KeyringStore("m365")
    tokens = TokenSource(settings_for(server, **settings), store, mailbox=USER, ca_file=str(tls.ca_file),
                         timeout=10)
    tokens.sign_in(approving(server, user))
    return Microsoft365Transport(settings_for(server, **settings), store, mailbox=USER, ca_file=str(tls.ca_file),
                                 timeout=10, trace=(lambda way, text: trace.append(f"{way} {text}"))
                                 if trace is not None else None)


def app_only(server: MicrosoftServer, tls: TLSFiles) -> Microsoft365Transport:
    store = KeyringStore("m365-app")
    store.set(SECRET_KIND, CLIENT_SECRET)
    return Microsoft365Transport(settings_for(server, mode="app"), store, mailbox=USER, ca_file=str(tls.ca_file),
                                 timeout=10)


def test_the_mime_message_goes_base64_as_text_plain_with_every_header_kept(server: MicrosoftServer,
                                                                          tls: TLSFiles) -> None:
    transport = delegated(server, tls)
    stages: list[tuple[str, str]] = []
    transport.open(lambda stage, detail: stages.append((stage, detail)))
    delivery = transport.send(envelope())
    transport.close()
    assert delivery.ok and delivery.reply == "202 Accepted"
    sent = server.sent[0]
    assert sent.path == "/v1.0/me/sendMail" and sent.content_type == "text/plain" and sent.sender == USER
    assert sent.mime == MESSAGE
    assert stages == [("sign-in", f"access token for {USER} (from the cache)")]


def test_bcc_travels_in_the_header_and_subset_retries_are_impossible(server: MicrosoftServer,
                                                                     tls: TLSFiles) -> None:
    transport = delegated(server, tls)
    transport.open()
    assert transport.send(envelope(bcc=("auditor@company.test",))).ok
    transport.close()
    assert b"\r\nBcc: auditor@company.test\r\n" in server.sent[0].mime
    assert transport.subset_retries is False


def test_a_batch_uses_one_connection(server: MicrosoftServer, tls: TLSFiles) -> None:
    transport = delegated(server, tls)
    transport.open()
    assert all(transport.send(envelope()).ok for _ in range(3))
    transport.close()
    assert len(server.sent) == 3 and len({mail.client_port for mail in server.sent}) == 1


def test_app_only_sends_as_the_profile_mailbox(server: MicrosoftServer, tls: TLSFiles) -> None:
    transport = app_only(server, tls)
    transport.open()
    assert transport.send(envelope()).ok
    transport.close()
    assert server.sent[0].path == f"/v1.0/users/{USER}/sendMail" and server.sent[0].sender == "app"


def test_a_sign_in_as_another_account_is_refused_naming_both(server: MicrosoftServer, tls: TLSFiles) -> None:
    transport = delegated(server, tls, user=ADMIN)
    with pytest.raises(StageFailedError) as caught:
        transport.open()
    assert ADMIN in caught.value.message and USER in caught.value.message
    assert caught.value.exit_code == ExitCode.NOPERM and server.sent == []
    accepted = Microsoft365Transport(settings_for(server, account=ADMIN), KeyringStore("m365"), mailbox=USER,
                                     ca_file=str(tls.ca_file), timeout=10)
    accepted.open()  # a shared mailbox sent as on purpose: the account is named in the profile
    accepted.close()


@pytest.mark.parametrize(("reply", "status", "exit_code", "says"), [
    (GraphReply(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."),
     "failed", ExitCode.NOPERM, "delegated"),
    (GraphReply(404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted "
                "on-premise."), "failed", ExitCode.UNAVAILABLE, "no Exchange Online mailbox"),
    (GraphReply(403, "ErrorSendAsDenied", "The user account which was used to submit this request does not have "
                "the right to send mail on behalf of the specified sending account., Cannot submit message."),
     "failed", ExitCode.NOPERM, "Send As"),
    (GraphReply(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                {"Retry-After": "7"}), "temporary", ExitCode.TEMPFAIL, "wait 7 s"),
    (GraphReply(503, "ServiceUnavailable", "Service Unavailable", {"Retry-After": "3"}), "temporary",
     ExitCode.TEMPFAIL, "wait 3 s"),
    (GraphReply(403, "ErrorQuotaExceeded", "The mailbox has exceeded its submission quota."), "failed",
     ExitCode.TEMPFAIL, "24 hours"),
])
def test_graph_refusals_are_classified_with_a_hint(server: MicrosoftServer, tls: TLSFiles, reply: GraphReply,
                                                   status: str, exit_code: ExitCode, says: str) -> None:
    transport = delegated(server, tls)
    transport.open()
    server.graph_replies.append(reply)
    delivery = transport.send(envelope())
    transport.close()
    assert (delivery.status, delivery.exit_code) == (status, exit_code)
    assert says in (delivery.hint or "") and reply.code in delivery.reply
    if "Retry-After" in reply.headers:
        assert delivery.retry_after == float(reply.headers["Retry-After"])
    assert delivery.stops_batch == (status == "failed" and reply.status != 400)


def test_app_only_access_denied_points_at_application_permission_and_rbac(server: MicrosoftServer,
                                                                          tls: TLSFiles) -> None:
    transport = app_only(server, tls)
    transport.open()
    server.graph_replies.append(GraphReply(403, "ErrorAccessDenied", "Access to OData is disabled."))
    delivery = transport.send(envelope())
    transport.close()
    assert "application" in (delivery.hint or "") and "RBAC for Applications" in (delivery.hint or "")


def test_a_rejected_token_is_renewed_before_the_next_try(server: MicrosoftServer, tls: TLSFiles) -> None:
    transport = delegated(server, tls)
    transport.open()
    with server.lock:
        server.access_tokens.clear()  # revoked on Microsoft's side, still valid in our cache
    first = transport.send(envelope())
    assert first.status == "temporary" and first.reconnect and first.exit_code == ExitCode.NOPERM
    transport.open()
    assert transport.send(envelope()).ok
    transport.close()
    assert server.token_requests[-1] == "refresh_token"


def test_a_message_too_large_for_one_request_is_refused_before_sending(server: MicrosoftServer,
                                                                       tls: TLSFiles) -> None:
    transport = delegated(server, tls)
    transport.open()
    big = MESSAGE + b"x" * MAX_MESSAGE_BYTES
    seen = len(server.requests_seen)
    delivery = transport.send(envelope(data=big))
    transport.close()
    assert delivery.status == "failed" and delivery.exit_code == ExitCode.DATAERR
    assert "nothing was sent" in delivery.reply and len(server.requests_seen) == seen


def test_the_trace_shows_requests_but_never_the_token(server: MicrosoftServer, tls: TLSFiles) -> None:
    trace: list[str] = []
    transport = delegated(server, tls, trace=trace)
    transport.open()
    token = transport.tokens.token()
    transport.send(envelope())
    transport.close()
    assert any(line.startswith("→ POST") for line in trace) and any("202" in line for line in trace)
    assert all(token not in line for line in trace)


def test_a_refused_connection_means_the_message_was_certainly_not_sent(tls: TLSFiles) -> None:
    with MicrosoftServer(tls.server_context) as server:
        transport = delegated(server, tls)
        transport.open()
    with pytest.raises(ConnectionLostError) as caught:  # the server is gone: connection refused, nothing sent
        transport.send(envelope())
    transport.close()
    assert caught.value.committed is False and caught.value.exit_code == ExitCode.TEMPFAIL
