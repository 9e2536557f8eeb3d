"""The relay in this process: a real smtplib client submits, a local aiosmtpd (or the Graph fake) receives."""

from __future__ import annotations

import email
import json
import smtplib
import subprocess
import time
from email import policy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, accepting_authenticator, profile_for
from tests.support.external import MissingClientWarning, external_client
from tests.support.relay_helpers import RELAY_PASSWORD, RELAY_USER, RelayFactory, erp_message, relay, submit, wait_for
from tests.support.samples import smtp_profile
from tests.support.servers import DropNth, FailNth, RefuseRecipient
from xoromail_cli import config, credentials
from xoromail_cli.cli import app
from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.local.sink import CaptureHandler, SinkServer, free_port
from xoromail_cli.profile import Profile
from xoromail_cli.relay.server import RelayCredential, RelayHandler, RelayServer
from xoromail_cli.relay.spool import Spool

__all__ = ["relay"]  # the fixture, imported for pytest


def down_profile(tls: TLSFiles, port: int | None = None) -> Profile:
    """A profile whose SMTP server is not running (a free port nothing listens on)."""
    return smtp_profile(name="default", email=USER, host="127.0.0.1", port=port or free_port(), security="starttls",
                        display_name="Company Billing", ca_file=str(tls.ca_file), timeout=5.0)


def test_a_message_with_an_attachment_arrives_with_its_headers_and_bcc_stays_out_of_them(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    pdf = bytes(range(256)) * 400
    message = erp_message(1, cc="accounts@client.test", attachment=pdf)
    submit(running.port, message, recipients=["customer@client.test", "accounts@client.test", "audit@company.test"])
    wait_for(lambda: len(upstream.messages) == 1, what="the delivery")
    got = upstream.messages[0]
    assert got.sender == USER and got.login == USER
    assert sorted(got.recipients) == ["accounts@client.test", "audit@company.test", "customer@client.test"]
    parsed = got.parsed()
    assert parsed["Message-ID"] == message["Message-ID"] and parsed["X-ERP-Document"] == "INV-1"
    assert parsed["Bcc"] is None and b"audit@company.test" not in got.data
    attachment = next(part for part in parsed.iter_attachments())
    assert attachment.get_filename() == "INV-1.pdf" and attachment.get_content() == pdf
    wait_for(lambda: bool(running.logged("delivered")), what="the delivery's log line")  # logged after the 250
    assert not running.spool.ids()
    delivered = running.logged("delivered")
    assert len(delivered) == 1 and message["Message-ID"] in delivered[0] and "250" in delivered[0]


def test_a_wrong_relay_password_and_mail_without_auth_are_refused(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server()
    running = relay(profile_for(upstream, tls))
    with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
        submit(running.port, erp_message(), password=PASSWORD)
    assert wrong.value.smtp_code == 535
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        client.ehlo()
        assert "PLAIN" in client.esmtp_features["auth"]
        code, reply = client.mail(USER)
        assert code == 530 and b"Authentication required" in reply
    assert not running.spool.ids() and not upstream.messages
    assert running.logged("auth-refused") and all(PASSWORD not in line for line in running.lines)


def test_a_from_the_mailbox_may_not_send_as_is_refused_at_mail_from_with_the_send_as_hint(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    running = relay(profile_for(smtp_server(), tls), allow=frozenset({"sales@company.test"}))
    with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
        client.login(RELAY_USER, RELAY_PASSWORD)
        code, reply = client.mail("ceo@company.test")
        assert code == 550 and b"5.7.60" in reply and b"Send As" in reply and b"--rewrite-from" in reply
        client.rset()
        assert client.mail("sales@company.test")[0] == 250
    header_only = erp_message(2, sender="ceo@company.test")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        submit(running.port, header_only, sender=USER)
    assert refused.value.smtp_code == 550 and b"ceo@company.test" in refused.value.smtp_error


def test_rewrite_from_sends_as_the_mailbox_with_the_original_in_reply_to(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls), rewrite=True)
    submit(running.port, erp_message(3, sender="warehouse@erp.local"))
    wait_for(lambda: len(upstream.messages) == 1, what="the delivery")
    parsed = upstream.messages[0].parsed()
    assert upstream.messages[0].sender == USER
    assert parsed["From"].addresses[0].addr_spec == USER
    assert "warehouse@erp.local" in str(parsed["Reply-To"]) and len(parsed.get_all("From") or []) == 1


def test_upstream_down_keeps_the_message_queued_and_it_goes_when_the_upstream_is_back(
        relay: RelayFactory, tls: TLSFiles) -> None:
    port = free_port()
    credentials.store_password("default", PASSWORD)
    running = relay(down_profile(tls, port), retry_delay=0.3)
    message = erp_message(4)
    submit(running.port, message)
    wait_for(lambda: bool(running.logged("paused")), what="a paused queue")
    assert len(running.spool.ids()) == 1
    assert "refused the connection" in running.logged("paused")[0]
    handler = CaptureHandler()
    upstream = SinkServer(port=port, handler=handler, security="starttls", tls_context=tls.server_context,
                          authenticator=accepting_authenticator(), auth_required=True).start()
    try:
        wait_for(lambda: len(handler.messages) == 1, timeout=30, what="the delivery once the upstream is back")
        wait_for(lambda: not running.spool.ids(), what="the spool to empty")
    finally:
        upstream.stop()
    assert handler.messages[0].parsed()["Message-ID"] == message["Message-ID"]


def test_a_permanent_refusal_is_failed_in_the_ledger_shown_by_log_failed_and_reported(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, runner: CliRunner) -> None:
    upstream = smtp_server(handler=RefuseRecipient("gone@client.test"))
    profile = profile_for(upstream, tls)
    config.save_profile(config_path, profile)
    credentials.store_password("default", PASSWORD)
    running = relay(profile, bounce_to="it@company.test")
    message = erp_message(5, to="gone@client.test")
    submit(running.port, message)
    wait_for(lambda: len(upstream.messages) == 1, what="the failure report")
    report = upstream.messages[0]
    assert report.recipients == ["it@company.test"]
    body = report.parsed().get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "550 5.1.1" in text and message["Message-ID"] in text and "Subject: Invoice INV-5" in text
    assert report.parsed()["Auto-Submitted"] == "auto-generated"
    wait_for(lambda: bool(running.logged("reported")), what="the report's log line")  # logged after its 250
    assert running.spool.ids("failed") and running.logged("failed") and running.logged("reported")
    failed = runner.invoke(app, ["--config", str(config_path), "log", "--failed", "--json"])
    rows = [json.loads(line) for line in failed.stdout.splitlines()]
    assert [(row["event"], row["message_id"], row["status"]) for row in rows] == [
        ("relay", message["Message-ID"], "failed")]
    assert "550 5.1.1" in rows[0]["reply"]
    only_relayed = runner.invoke(app, ["--config", str(config_path), "log", "--event", "relay", "--json"])
    assert only_relayed.exit_code == 0 and message["Message-ID"] in only_relayed.stdout


def test_a_message_delivered_before_a_crash_is_not_sent_again_when_its_spool_file_survives(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    submit(running.port, erp_message(6), recipients=["customer@client.test", "hidden@company.test"])
    wait_for(lambda: len(upstream.messages) == 1 and not running.spool.ids(), what="the delivery")
    got = upstream.messages[0]
    survivor = Envelope(sender=got.sender, to=("customer@client.test",), data=got.data,
                        message_id=str(got.parsed()["Message-ID"]),
                        bcc=("hidden@company.test",))
    running.spool.put(survivor)  # as if the relay died between the service's 250 and removing the file
    running.worker.wake()
    wait_for(lambda: bool(running.logged("already-delivered")), what="the survivor to be recognised")
    assert len(upstream.messages) == 1 and not running.spool.ids()


def test_a_message_the_spool_cannot_keep_gets_a_4xx_never_a_250(smtp_server: ServerFactory, tls: TLSFiles,
                                                                tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the spool should be")
    lines: list[str] = []
    from xoromail_cli.relay.message import SenderPolicy

    handler = RelayHandler(Spool(blocked), SenderPolicy(mailbox=USER), lines.append, lambda: None)
    server = RelayServer(handler, RelayCredential(RELAY_USER, RELAY_PASSWORD), "127.0.0.1", 0, tls=None).start()
    try:
        with pytest.raises(smtplib.SMTPDataError) as caught:
            submit(server.port, erp_message(7))
    finally:
        server.stop()
    assert caught.value.smtp_code == 451 and any(line.startswith("not-kept ") for line in lines)


def test_with_a_certificate_auth_waits_for_starttls(smtp_server: ServerFactory, tls: TLSFiles, tmp_path: Path) -> None:
    from xoromail_cli.relay.message import SenderPolicy
    from xoromail_cli.relay.server import tls_context

    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    issued = tls.ca.issue_cert("127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    context = tls_context("127.0.0.1", cert, key)
    handler = RelayHandler(Spool(tmp_path / "spool"), SenderPolicy(mailbox=USER), lambda line: None, lambda: None)
    server = RelayServer(handler, RelayCredential(RELAY_USER, RELAY_PASSWORD), "127.0.0.1", 0, tls=context).start()
    try:
        with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
            client.ehlo()
            assert "auth" not in client.esmtp_features
            assert client.docmd("AUTH", "PLAIN AGVycABy")[0] == 530
            client.starttls(context=tls.client_context())
            client.login(RELAY_USER, RELAY_PASSWORD)
            client.send_message(erp_message(8))
    finally:
        server.stop()
    assert len(Spool(tmp_path / "spool").ids()) == 1


def test_listening_off_loopback_without_tls_is_refused_at_start_with_exit_78(runner: CliRunner) -> None:
    result = runner.invoke(app, ["relay", "--listen", "0.0.0.0:2525"])
    assert result.exit_code == 78
    assert "without TLS" in result.output and "--tls-cert" in result.output


def test_the_spool_file_holds_the_envelope_beside_the_bytes_and_nothing_is_left_half_written(
        relay: RelayFactory, tls: TLSFiles) -> None:
    running = relay(down_profile(tls), retry_delay=60)
    message = erp_message(9)
    submit(running.port, message, recipients=["customer@client.test", "hidden@company.test"])
    [spool_id] = running.spool.ids()
    raw = (running.spool.root / "queue" / f"{spool_id}.msg").read_bytes()
    head = json.loads(raw.partition(b"\n")[0])
    assert head["to"] == ["customer@client.test"] and head["bcc"] == ["hidden@company.test"]
    assert head["message_id"] == message["Message-ID"]
    body = email.message_from_bytes(raw.partition(b"\n")[2], policy=policy.default)
    assert body["Subject"] == "Invoice INV-9"
    assert not list((running.spool.root / "tmp").iterdir())


def test_a_connection_lost_after_the_data_is_reported_in_doubt_and_sent_again_as_send_does(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, runner: CliRunner) -> None:
    handler = DropNth(1)
    upstream = smtp_server(handler=handler)
    profile = profile_for(upstream, tls)
    config.save_profile(config_path, profile)
    credentials.store_password("default", PASSWORD)
    running = relay(profile, retries=0)
    message = erp_message(10)
    submit(running.port, message)
    wait_for(lambda: len(upstream.messages) == 1 and not running.spool.ids(), timeout=30, what="the second try")
    in_doubt = running.logged("in-doubt")  # when it happened, and when the next burst resends it
    assert len(in_doubt) == 2 and all(message["Message-ID"] in line for line in in_doubt)
    assert "lost after the message was sent" in in_doubt[0] and "may have been delivered" in in_doubt[1]
    rows = [json.loads(line) for line in runner.invoke(app, ["--config", str(config_path), "log", "--json"]).stdout
            .splitlines()]
    assert [row["status"] for row in rows] == ["interrupted", "sent"]


def test_swaks_submits_with_auth_login_and_the_message_is_delivered(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    swaks = external_client("swaks", "apt-get install swaks")
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    if swaks is None:
        submit_with_auth_login(running.port, "from swaks")
    else:
        done = subprocess.run([swaks, "--server", f"127.0.0.1:{running.port}", "--auth", "LOGIN",
                               "--auth-user", RELAY_USER, "--auth-password", RELAY_PASSWORD, "--from", USER,
                               "--to", "customer@client.test", "--header", "Subject: from swaks"],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: len(upstream.messages) == 1, what="the delivery")
    assert upstream.messages[0].parsed()["Subject"] == "from swaks"


def submit_with_auth_login(port: int, subject: str) -> None:
    """What swaks does above, with smtplib: AUTH LOGIN (not PLAIN), MAIL, RCPT, DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.ehlo()
        client.user, client.password = RELAY_USER, RELAY_PASSWORD
        code, reply = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        assert code == 235, reply
        client.sendmail(USER, ["customer@client.test"], f"Subject: {subject}\r\nFrom: {USER}\r\n\r\nhello\r\n")


def test_without_swaks_outside_ci_the_test_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.warns(MissingClientWarning, match="apt-get install swaks"):
        assert external_client("swaks", "apt-get install swaks") is None
    monkeypatch.setenv("CI", "true")
    with pytest.raises(AssertionError, match=r"swaks is missing: \.ci/run installs it"):
        external_client("swaks", "apt-get install swaks")


def test_a_damaged_spool_file_is_set_aside_and_the_queue_goes_on(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls))
    (running.spool.root / "queue").mkdir(parents=True, exist_ok=True)
    (running.spool.root / "queue" / "100000000000-aaaaaa.msg").write_bytes(b"not an envelope\r\nSubject: x\r\n")
    submit(running.port, erp_message(11))
    wait_for(lambda: len(upstream.messages) == 1 and not running.spool.ids(), what="the good message")
    assert running.spool.ids("failed") == ["100000000000-aaaaaa"]
    assert "damaged" in running.spool.state("100000000000-aaaaaa", "failed").last_reply


def test_a_daily_quota_keeps_the_message_and_pauses_the_whole_queue(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    upstream = smtp_server(handler=FailNth(1, "550 5.4.5 Daily user sending quota exceeded."))
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls), quota_pause=1.5, retries=0)
    submitted_at = time.monotonic()  # before the pause began: the test may see its line late on a loaded machine
    submit(running.port, erp_message(12))
    wait_for(lambda: bool(running.logged("deferred")), what="the quota refusal")
    assert "daily sending limit" in running.logged("deferred")[0] and running.spool.ids()
    submit(running.port, erp_message(13))
    time.sleep(0.5)
    assert not upstream.messages, "nothing is tried while the quota pause lasts"
    wait_for(lambda: len(upstream.messages) == 2 and not running.spool.ids(), what="both after the pause")
    assert time.monotonic() - submitted_at >= 1.5


def test_with_a_postgresql_ledger_the_relayed_message_is_recorded_there(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles, pg_url: str) -> None:
    from xoromail_cli.ledger.postgres import PostgresLedger

    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls, ledger=pg_url))
    message = erp_message(14)
    submit(running.port, message)
    wait_for(lambda: len(upstream.messages) == 1 and not running.spool.ids(), what="the delivery")
    wait_for(lambda: bool(running.logged("delivered")), what="the delivered line")
    ledger = PostgresLedger(pg_url)
    try:
        rows = list(ledger.entries(account=USER))
    finally:
        ledger.close()
    assert [(row.event, row.message_id, row.status, row.service) for row in rows] == [
        ("relay", message["Message-ID"], "sent", "smtp")]
    assert rows[0].reply is not None and rows[0].reply.startswith("250")
