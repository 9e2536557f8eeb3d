"""The relay delivering through an OAuth service: Microsoft 365 (Graph sendMail) against the local fake."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest

from tests.support.common import USER, TLSFiles
from tests.support.fakes.microsoft_server import CLIENT_SECRET, GraphReply, MicrosoftServer
from tests.support.m365_helpers import app_only_profile, graph
from tests.support.relay_helpers import RelayFactory, erp_message, relay, submit, wait_for

__all__ = ["graph", "relay"]  # the fixtures, imported for pytest


def test_a_password_smtp_submission_goes_out_through_graph_with_an_oauth_token(
        relay: RelayFactory, graph: MicrosoftServer, tls: TLSFiles) -> None:
    running = relay(app_only_profile(graph, tls))
    message = erp_message(1, attachment=b"%PDF-1.4 invoice")
    submit(running.port, message, recipients=["customer@client.test", "audit@company.test"])
    wait_for(lambda: len(graph.sent) == 1, what="the Graph sendMail")
    sent = graph.sent[0]
    assert sent.path == f"/v1.0/users/{USER}/sendMail" and sent.sender == "app"
    parsed = message_from_bytes(sent.mime, policy=policy.default)
    assert parsed["Message-ID"] == message["Message-ID"] and parsed["X-ERP-Document"] == "INV-1"
    assert parsed["Bcc"] == "audit@company.test"  # header-driven API: Graph takes Bcc from the MIME and drops it
    wait_for(lambda: bool(running.logged("delivered")), what="the delivered line")
    assert 'reply="202 Accepted"' in running.logged("delivered")[0]
    assert all(CLIENT_SECRET not in line for line in running.lines)


def test_graph_throttling_keeps_the_message_queued_then_delivers_it_once(
        relay: RelayFactory, graph: MicrosoftServer, tls: TLSFiles) -> None:
    throttled = GraphReply(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                           {"Retry-After": "1"})
    graph.graph_replies.extend([throttled, throttled])
    running = relay(app_only_profile(graph, tls), retries=1, retry_delay=0.3)
    submit(running.port, erp_message(2))
    wait_for(lambda: bool(running.logged("deferred")), timeout=30, what="a deferred message")
    assert 'reply="429 ApplicationThrottled' in running.logged("deferred")[0]
    wait_for(lambda: len(graph.sent) == 1 and not running.spool.ids(), timeout=30, what="the later delivery")
    assert len(graph.sent) == 1


def test_through_graph_the_relay_advertises_graphs_3_mb_and_500_recipients_and_refuses_more_at_the_door(
        relay: RelayFactory, graph: MicrosoftServer, tls: TLSFiles) -> None:
    import smtplib

    from tests.support.relay_helpers import RELAY_PASSWORD, RELAY_USER
    from xoromail_cli.relay.limits import recipient_cap
    from xoromail_cli.relay.upstream import learn_max_size
    from xoromail_cli.sending.limits import provider_limits
    from xoromail_cli.services.microsoft365.graph import MAX_MESSAGE_BYTES

    profile = app_only_profile(graph, tls)
    running = relay(profile)
    assert learn_max_size(profile, running.server, running.log) == MAX_MESSAGE_BYTES < 3_200_000
    provider = provider_limits(profile)
    assert recipient_cap(provider.label if provider is not None else None) == 500
    with smtplib.SMTP("127.0.0.1", running.port, timeout=20) as client:
        client.login(RELAY_USER, RELAY_PASSWORD)
        assert client.esmtp_features["size"] == str(MAX_MESSAGE_BYTES)
        code, text = client.mail(USER, [f"SIZE={MAX_MESSAGE_BYTES + 1}"])
        assert code == 552 and text.startswith(b"5.3.4")
        assert b"Mail.ReadWrite" in text  # what would lift Graph's limit (an upload session), as `send` says
    big = erp_message(3, attachment=b"%PDF-1.4 " + bytes(range(256)) * 12_000)
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        submit(running.port, big)  # smtplib announces the size at MAIL FROM
    assert refused.value.smtp_code == 552 and not running.spool.ids() and not graph.sent


def test_graphs_3_mb_is_advertised_even_when_the_sign_in_fails_at_start(
        relay: RelayFactory, graph: MicrosoftServer, tls: TLSFiles) -> None:
    """The transport states Graph's maximum without the network: a sign-in that fails at start (Entra down, a
    secret being rotated) must not leave the relay promising 35 MB, which Graph then refuses after the 250."""
    import smtplib

    from tests.support.relay_helpers import RELAY_PASSWORD, RELAY_USER
    from xoromail_cli.relay.upstream import learn_max_size
    from xoromail_cli.services.microsoft365.graph import MAX_MESSAGE_BYTES

    profile = app_only_profile(graph, tls)
    graph.fail(7000222)  # the client secret expired
    running = relay(profile)
    assert learn_max_size(profile, running.server, running.log) == MAX_MESSAGE_BYTES
    with smtplib.SMTP("127.0.0.1", running.port, timeout=20) as client:
        client.login(RELAY_USER, RELAY_PASSWORD)
        assert client.esmtp_features["size"] == str(MAX_MESSAGE_BYTES)

    from xoromail_cli.relay.sizes import SizeLimit

    limit = SizeLimit()
    graph.fail(7000222)
    limit.learn(profile, 10.0, running.log)  # a mailbox of several (relay users): the same, per mailbox
    assert limit.max_size == MAX_MESSAGE_BYTES and limit.refusal(MAX_MESSAGE_BYTES + 1) is not None


def test_an_expired_client_secret_met_by_the_relay_becomes_an_expiry_note(
        relay: RelayFactory, graph: MicrosoftServer, tls: TLSFiles) -> None:
    """AADSTS7000222 in the relay's sign-in is learnt as validate and send learn it: the next notes say so."""
    from xoromail_cli.services import expiry

    graph.secret_expired = True
    profile = app_only_profile(graph, tls)
    running = relay(profile, retries=1, retry_delay=0.3)
    submit(running.port, erp_message(3))
    wait_for(lambda: bool(running.logged("paused")), timeout=30, what="the paused line")
    assert "AADSTS7000222" in running.logged("paused")[0]
    [note] = expiry.notes_for(profile)
    assert note.kind == "microsoft-client-secret" and "expired on" in note.text()
