"""Large PDFs through Graph: a draft, an upload session per large attachment, then send, when the app has
Mail.ReadWrite; refused before any upload, with the permission named, when it has not. The Microsoft fake
answers the draft, createUploadSession and the ranged PUTs as Graph and Outlook do (tests/fakes/graph_drafts.py)."""

from __future__ import annotations

import itertools
import os
import re
import smtplib
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.support.common import USER, TLSFiles
from tests.support.fakes.microsoft_server import MicrosoftServer
from tests.support.m365_helpers import app_only_profile, graph
from tests.support.relay_helpers import RELAY_PASSWORD, RELAY_USER, RelayFactory, erp_message, relay, submit, wait_for
from xoromail_cli import credentials
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.profile import Profile
from xoromail_cli.relay.delivery import DeliveryOptions, DeliveryWorker
from xoromail_cli.relay.handler import RelayHandler, Route
from xoromail_cli.relay.message import SenderPolicy
from xoromail_cli.relay.server import RelayCredential, RelayServer
from xoromail_cli.relay.spool import Spool
from xoromail_cli.services.microsoft365.auth import TOKEN_CACHE
from xoromail_cli.services.microsoft365.drafts import CHUNK, granted, split_large
from xoromail_cli.services.microsoft365.graph import MAX_MESSAGE_BYTES
from xoromail_cli.services.microsoft365.transport import Microsoft365Transport

__all__ = ["graph", "relay"]  # the fixtures, imported for pytest
PDF = b"%PDF-1.7\n" + os.urandom(7 * 1024 * 1024)  # 7 MB: over sendMail's 4 MB, under 150 MB


def app_profile(server: MicrosoftServer, tls: TLSFiles) -> Profile:
    return app_only_profile(server, tls, timeout=20.0)


def test_with_mail_readwrite_a_7_mb_pdf_goes_as_a_draft_with_an_upload_session(
        relay: RelayFactory, graph: MicrosoftServer, tls: TLSFiles) -> None:
    graph.app_roles = ["Mail.Send", "Mail.ReadWrite"]
    running = relay(app_profile(graph, tls))
    message = erp_message(1, attachment=PDF)
    submit(running.port, message)
    wait_for(lambda: len(graph.drafts.sent) == 1, timeout=60, what="the draft sent")
    sent = graph.drafts.sent[0]
    assert sent.attachments == [("INV-1.pdf", "application/pdf", PDF)]
    draft = message_from_bytes(sent.mime, policy=policy.default)
    assert draft["Message-ID"] == message["Message-ID"] and draft["X-ERP-Document"] == "INV-1"
    assert "please find invoice INV-1" in draft.get_body(("plain",)).get_content()  # type: ignore[union-attr]  # it has one
    assert len(sent.mime) < MAX_MESSAGE_BYTES and not list(draft.iter_attachments())
    calls = [call for call in graph.requests_seen if "/token" not in call and "openid" not in call]
    assert calls[0] == f"POST /v1.0/users/{USER}/messages"
    assert calls[1].endswith("/attachments/createUploadSession") and calls[-1].endswith("/send")
    puts = graph.drafts.upload_puts
    assert len(puts) == -(-len(PDF) // CHUNK) and not any(authorized for _, authorized in puts)
    ends = [int(re.match(r"bytes (\d+)-(\d+)/", header).group(2)) for header, _ in puts]  # type: ignore[union-attr]  # checked by the fake
    assert ends[-1] == len(PDF) - 1 and all(b - a == CHUNK for a, b in itertools.pairwise(ends[:-1]))
    assert not graph.sent and not graph.drafts.drafts  # no sendMail; the draft became the sent message
    wait_for(lambda: bool(running.logged("delivered")), what="the delivered line")


def test_without_mail_readwrite_a_large_message_is_refused_before_any_upload_with_the_permission_named(
        relay: RelayFactory, graph: MicrosoftServer, tls: TLSFiles) -> None:
    running = relay(app_profile(graph, tls))
    submit(running.port, erp_message(2, attachment=PDF))
    wait_for(lambda: bool(running.logged("failed")), timeout=30, what="the refusal")
    failed = running.logged("failed")[0]
    assert "Mail.ReadWrite" in failed and "upload session" in failed
    assert not any(call.startswith("PUT") or call.endswith("/messages") for call in graph.requests_seen)
    assert not graph.sent and not graph.drafts.sent


def test_the_transport_states_its_limit_from_the_token_and_a_small_message_still_uses_sendmail(
        graph: MicrosoftServer, tls: TLSFiles) -> None:
    profile = app_profile(graph, tls)
    transport = Microsoft365Transport(profile.settings, credentials.Secrets(profile), mailbox=USER,
                                      ca_file=str(tls.ca_file), timeout=10.0)
    transport.open()
    try:
        assert transport.max_message_size == MAX_MESSAGE_BYTES and "Mail.ReadWrite" in (transport.size_hint or "")
        data = bytes(erp_message(3).as_bytes())
        small = Envelope(sender=USER, to=("a@client.test",), data=data, message_id="<m3@company.test>")
        assert transport.send(small).ok
        assert len(graph.sent) == 1 and not graph.drafts.sent
    finally:
        transport.close()
    graph.app_roles = ["Mail.Send", "Mail.ReadWrite"]  # the admin grants it; a token issued later carries it
    credentials.delete_secret("default", TOKEN_CACHE)
    again = Microsoft365Transport(profile.settings, credentials.Secrets(profile), mailbox=USER,
                                  ca_file=str(tls.ca_file), timeout=10.0)
    again.open()
    try:
        assert again.max_message_size is not None and again.max_message_size > 100 * 1024 * 1024
        assert again.size_hint is None
    finally:
        again.close()


def test_reading_the_permissions_of_a_token_and_splitting_the_large_files_off() -> None:
    assert granted("not-a-jwt") is None and granted("a.%%%.c") is None
    message = erp_message(4, attachment=b"x" * 100)
    kept, large = split_large(message.as_bytes(), threshold=50)
    assert [(f.name, f.content_type, f.data) for f in large] == [("INV-4.pdf", "application/pdf", b"x" * 100)]
    assert b"INV-4.pdf" not in kept and b"please find invoice" in kept
    unchanged, none = split_large(message.as_bytes(), threshold=1000)
    assert none == [] and b"INV-4.pdf" in unchanged


def test_the_relay_refuses_a_large_message_at_data_with_552_naming_the_permission(
        graph: MicrosoftServer, tls: TLSFiles, tmp_path: Path) -> None:
    profile = app_profile(graph, tls)
    lines: list[str] = []
    spool = Spool(tmp_path / "spool")
    worker = DeliveryWorker(profile, spool, lines.append, DeliveryOptions(retry_delay=0.2, idle=0.2, timeout=10.0))
    policy = SenderPolicy(mailbox=USER, display_name="Company Billing")
    route = Route(policy, spool, worker.wake, worker.refuse_size)
    handler = RelayHandler(spool, policy, lines.append, worker.wake, routes={RELAY_USER: route})
    server = RelayServer(handler, RelayCredential(RELAY_USER, RELAY_PASSWORD), "127.0.0.1", 0, tls=None).start()
    worker.start()
    try:
        worker.size.learn(profile, 10.0, lines.append)  # as `relay` does for each mailbox of several
        with pytest.raises(smtplib.SMTPDataError) as refused:
            submit(server.port, erp_message(5, attachment=PDF))
        assert refused.value.smtp_code == 552 and b"Mail.ReadWrite" in refused.value.smtp_error
        assert not spool.ids() and not any(call.startswith("PUT") for call in graph.requests_seen)
        submit(server.port, erp_message(6))  # a small one still goes
        wait_for(lambda: len(graph.sent) == 1, what="the small message")
    finally:
        server.stop()
        worker.stop(30)


@pytest.mark.parametrize("sizes", [[1536 * 1024] * 3, [3_050_000]], ids=["three-1.5-MB-files", "one-3.05-MB-file"])
def test_files_under_3_mb_too_large_together_for_one_request_still_go_with_mail_readwrite(
        relay: RelayFactory, graph: MicrosoftServer, tls: TLSFiles, sizes: list[int]) -> None:
    """An invoice with three 1.5 MB PDFs (no file over 3 MB, the message over what one request carries), or one
    PDF of 3.05 MB (under 3 MiB, over 3,000,000 bytes): the draft must fit one 4 MB request, so files go up apart
    (a fileAttachment each, or an upload session), and every file arrives."""
    graph.app_roles = ["Mail.Send", "Mail.ReadWrite"]
    running = relay(app_profile(graph, tls))
    files = [b"%PDF-1.7\n" + os.urandom(size - 9) for size in sizes]
    message = erp_message(7, attachment=files[0])
    for number, data in enumerate(files[1:], start=2):
        message.add_attachment(data, maintype="application", subtype="pdf", filename=f"INV-7-{number}.pdf")
    submit(running.port, message)
    wait_for(lambda: len(graph.drafts.sent) == 1 or bool(running.logged("failed")), timeout=60,
             what="the draft sent, or a failure")
    assert not running.logged("failed"), running.logged("failed")
    sent = graph.drafts.sent[0]
    in_draft = [part.get_content() for part in message_from_bytes(sent.mime, policy=policy.default).iter_attachments()]
    assert sorted([data for _, _, data in sent.attachments] + in_draft) == sorted(files)
    assert len(sent.mime) < MAX_MESSAGE_BYTES


def test_mail_readwrite_granted_while_the_relay_runs_lifts_its_size_without_a_restart(
        relay: RelayFactory, graph: MicrosoftServer, tls: TLSFiles, capsys: pytest.CaptureFixture[str]) -> None:
    """The relay learns 3 MB at start (no Mail.ReadWrite) and says so in SIZE; the admin grants the permission;
    the next burst's token carries it, and the relay's SIZE follows: a 7 MB PDF is taken without a restart."""
    import threading

    from xoromail_cli.cli.relay_cmd import _run
    from xoromail_cli.relay.notify import Notifier
    from xoromail_cli.relay.office import Mailbox, Office
    from xoromail_cli.relay.upstream import MAX_ACCEPTED, learn_max_size
    from xoromail_cli.relay.users import LoginTable

    running = relay(app_profile(graph, tls))
    assert learn_max_size(running.profile, running.server, running.log) == MAX_MESSAGE_BYTES
    office = Office(logins=LoginTable({}), routes={}, mailboxes=[Mailbox(running.profile, running.spool,
                                                                         running.worker)])
    stop = threading.Event()
    loop = threading.Thread(target=_run, args=(office, running.server, Notifier({}), stop, threading.Event()),
                            daemon=True)
    loop.start()
    try:
        with pytest.raises(smtplib.SMTPException):
            submit(running.port, erp_message(8, attachment=PDF))
        graph.app_roles = ["Mail.Send", "Mail.ReadWrite"]  # granted, with admin consent
        credentials.delete_secret("default", TOKEN_CACHE)  # the cached token expired meanwhile
        submit(running.port, erp_message(9))  # a small one: its burst meets the new token
        wait_for(lambda: len(graph.sent) == 1, what="the small message")
        wait_for(lambda: running.server.limits.max_size > MAX_MESSAGE_BYTES, what="the relay's SIZE to follow")
        assert running.server.limits.max_size == MAX_ACCEPTED  # 150 MB, as much as the relay holds
        submit(running.port, erp_message(10, attachment=PDF))
        wait_for(lambda: len(graph.drafts.sent) == 1, timeout=60, what="the large message, through a draft")
        assert f"size max={MAX_ACCEPTED} service=microsoft365 reason=" in capsys.readouterr().err
    finally:
        stop.set()
        loop.join(10)
