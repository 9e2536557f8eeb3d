"""A queue people can steer: one sender's refusal holds that sender only, a refusal of the account pauses the
mailbox, hold and release across a restart, `queue status` with the upstream down and back, and messages in
doubt held for a person under --no-retry-in-doubt. Real aiosmtpd upstreams; the relay in this process."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, accepting_authenticator, profile_for
from tests.support.relay_helpers import RelayFactory, erp_message, relay, spool_with_held, submit, wait_for
from tests.support.samples import smtp_profile
from tests.support.servers import DropNth
from xoromail_cli import credentials
from xoromail_cli.cli import app
from xoromail_cli.local.sink import CaptureHandler, SinkServer, free_port

__all__ = ["relay"]  # the fixture, imported for pytest
SALES = "sales@company.test"


class RefuseSender(CaptureHandler):
    """Postfix with `reject_sender_login_mismatch`: MAIL FROM an address the login does not own is refused."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.lower() == self.refused:
            return f"553 5.7.1 <{address}>: Sender address rejected: not owned by user {USER}"
        envelope.mail_from = address
        return "250 2.1.0 OK"


def queue(runner: CliRunner, spool: Path, *args: str) -> Any:
    return runner.invoke(app, ["queue", *args, "--spool", str(spool)])


def status(runner: CliRunner, spool: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = queue(runner, spool, "status", "--json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_a_refused_from_holds_its_own_messages_while_the_mailbox_s_own_go_out(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles, runner: CliRunner) -> None:
    upstream = smtp_server(handler=RefuseSender(SALES))
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls), allow=frozenset({SALES}), quota_pause=600.0, retries=0)
    submit(running.port, erp_message(1, sender=SALES))
    wait_for(lambda: bool(running.logged("sender-held")), what="the sender's hold")
    for number in (2, 3):
        submit(running.port, erp_message(number))
    submit(running.port, erp_message(4, sender=SALES))  # waits with its sender, never tried meanwhile
    # the relay takes a message off its spool (then logs `delivered`) only after the upstream's 250
    wait_for(lambda: len(running.logged("delivered")) == 2, what="the mailbox's own messages")
    assert {m.parsed()["X-ERP-Document"] for m in upstream.messages} == {"INV-2", "INV-3"}
    held = running.logged("sender-held")
    assert len(held) == 1 and f"sender={SALES}" in held[0] and "553 5.7.1" in held[0]
    assert "re-run" not in held[0] and "queue retry" in held[0]
    assert not running.logged("paused")
    code, report = status(runner, running.spool.root)
    assert code == 0 and report["paused"] is False and report["queued"] == 2 and report["schema"] == 1
    assert [s["sender"] for s in report["held_senders"]] == [SALES]
    assert any(SALES in note for note in report["notes"])
    listing = queue(runner, running.spool.root, "list").output
    assert f"Messages from {SALES} wait until" in listing
    ended = queue(runner, running.spool.root, "retry")
    assert ended.exit_code == 0 and f"messages from {SALES} may go again" in ended.output
    assert "pause ended" not in ended.output  # the mailbox was never paused
    wait_for(lambda: len(running.logged("sender-held")) == 2, what="the try the ended hold allows")
    assert len(upstream.messages) == 2


def test_a_refusal_of_the_whole_account_pauses_the_mailbox_with_the_relay_s_advice(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles, runner: CliRunner) -> None:
    upstream = smtp_server(handler=RefuseSender(USER))
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls), quota_pause=600.0, retries=0)
    submit(running.port, erp_message(1))
    wait_for(lambda: bool(running.logged("paused")), what="the pause")
    paused = running.logged("paused")[0]
    assert "553 5.7.1" in paused and "re-run" not in paused and "queue retry" in paused
    assert not running.logged("sender-held")
    code, report = status(runner, running.spool.root)
    assert code == 75 and report["paused"] is True and "553 5.7.1" in report["pause_reason"]
    assert report["resumes_at"].endswith("Z") and report["eta_s"] > 500
    assert "Delivery is paused until" in queue(runner, running.spool.root, "list").output
    ended = queue(runner, running.spool.root, "retry")
    assert ended.exit_code == 0 and "the pause ended" in ended.output
    wait_for(lambda: len(running.logged("paused")) == 2, what="the retry the ended pause allows")


def test_queue_status_with_the_upstream_down_and_back(relay: RelayFactory, tls: TLSFiles, runner: CliRunner) -> None:
    port = free_port()
    credentials.store_password("default", PASSWORD)
    profile = smtp_profile(name="default", email=USER, host="127.0.0.1", port=port, security="starttls",
                           ca_file=str(tls.ca_file), timeout=5.0)  # nothing listens on the port yet
    running = relay(profile, retry_delay=0.5)
    code, report = status(runner, running.spool.root)
    assert code == 0 and report["queued"] == 0 and report["oldest_age_s"] is None
    submit(running.port, erp_message(1))
    wait_for(lambda: bool(running.logged("paused")), what="the pause")
    code, report = status(runner, running.spool.root)
    assert code == 75 and report["paused"] and "refused the connection" in report["pause_reason"]
    assert report["queued"] == 1 and report["oldest_age_s"] >= 0
    assert status(runner, running.spool.root, "--max-age", "0s")[0] == 75
    upstream = SinkServer(port=port, handler=CaptureHandler(), security="starttls", tls_context=tls.server_context,
                          authenticator=accepting_authenticator(), auth_required=True).start()
    try:
        wait_for(lambda: not running.spool.ids(), timeout=30, what="the delivery once the upstream is back")
        wait_for(lambda: status(runner, running.spool.root)[0] == 0, what="a healthy status")
        code, report = status(runner, running.spool.root)
        assert report == {**report, "queued": 0, "held": 0, "failed": 0, "in_doubt": 0, "paused": False}
    finally:
        upstream.stop()
    human = queue(runner, running.spool.root, "status")
    assert human.exit_code == 0 and "queued 0, held 0, failed 0, in doubt 0" in human.output


def test_a_pause_counts_held_messages_apart_from_the_queued_ones_it_will_try(
        relay: RelayFactory, tls: TLSFiles, tmp_path: Path) -> None:
    """`queued=` is what will be tried; a message held for a person is `held=`, never counted as queued."""
    credentials.store_password("default", PASSWORD)
    spool = spool_with_held(tmp_path / "spool", messages=3, held=2)
    assert spool.backlog() == (1, 2)
    profile = smtp_profile(name="default", email=USER, host="127.0.0.1", port=free_port(), security="starttls",
                           ca_file=str(tls.ca_file), timeout=5.0)  # nothing listens: the one queued pauses
    running = relay(profile, retry_delay=30.0)
    wait_for(lambda: bool(running.logged("paused")), what="the pause")
    paused = running.logged("paused")[0]
    assert " queued=1 held=2" in paused and "queued=3" not in paused, paused


def test_a_held_message_waits_across_a_restart_until_it_is_released(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles, runner: CliRunner, tmp_path: Path) -> None:
    upstream = smtp_server()
    credentials.store_password("default", PASSWORD)
    profile = profile_for(upstream, tls)
    spool = tmp_path / "spool"
    first = relay(profile, rate="60/min")
    first.worker.stop(10)  # accept only, for now
    submit(first.port, erp_message(1))
    held_id = first.spool.ids()[0]
    assert "held 1 message(s)" in queue(runner, spool, "hold", held_id).output
    assert queue(runner, spool, "hold", "--all").output.startswith("held 0")  # already held
    first.stop()
    second = relay(profile)
    submit(second.port, erp_message(2))
    wait_for(lambda: len(upstream.messages) == 1 and len(second.spool.ids()) == 1, what="the message not held")
    time.sleep(0.5)
    assert [m.parsed()["X-ERP-Document"] for m in upstream.messages] == ["INV-2"]
    code, report = status(runner, spool)
    assert code == 0 and report["held"] == 1 and report["queued"] == 0
    rows = [json.loads(line) for line in queue(runner, spool, "list", "--json").stdout.splitlines()]
    assert rows[0]["held"] == "held by a person" and rows[0]["due_at"] is None
    assert "held" in queue(runner, spool, "list").output
    second.stop()
    third = relay(profile)  # a second restart: still held
    time.sleep(0.5)
    assert len(upstream.messages) == 1 and third.spool.ids() == [held_id]
    assert "released 1" in queue(runner, spool, "release", "--all").output
    wait_for(lambda: len(upstream.messages) == 2 and not third.spool.ids(), what="the released message")
    assert queue(runner, spool, "hold").exit_code == 2  # an id or --all
    assert queue(runner, spool, "release", "0000000000-abcdef").exit_code == 66


def test_no_retry_in_doubt_holds_the_message_for_a_person_and_release_sends_it(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles, runner: CliRunner) -> None:
    upstream = smtp_server(handler=DropNth(1))
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls), retries=0, retry_in_doubt=False)
    message = erp_message(1)
    submit(running.port, message)
    wait_for(lambda: bool(running.logged("held")), what="the hold")
    assert message["Message-ID"] in running.logged("held")[0] and "queue release" in running.logged("held")[0]
    time.sleep(0.5)
    assert not upstream.messages and running.spool.ids()
    code, report = status(runner, running.spool.root)
    assert report["held"] == 1 and report["in_doubt"] == 1 and report["queued"] == 0 and code == 0
    assert "held (in doubt)" in queue(runner, running.spool.root, "list").output
    queue(runner, running.spool.root, "release", running.spool.ids()[0])
    wait_for(lambda: len(upstream.messages) == 1 and not running.spool.ids(), what="the released message")


def test_queue_status_lists_what_expires_soon_among_its_notes_without_failing(
        runner: CliRunner, config_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from xoromail_cli import config
    from xoromail_cli.profile import Profile
    from xoromail_cli.services.microsoft365.settings import Microsoft365Settings

    soon = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    settings = Microsoft365Settings(tenant="company.test", client_id="5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f",
                                    mode="app", client_secret_expires=soon)
    config.save_profile(config_path, Profile(name="default", email=USER, service="microsoft365", settings=settings))
    result = runner.invoke(app, ["--config", str(config_path), "queue", "status", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and [item["kind"] for item in report["expiring"]] == ["microsoft-client-secret"]
    assert any(soon in note and "--client-secret-expires" in note for note in report["notes"])
    human = runner.invoke(app, ["--config", str(config_path), "queue", "status"])
    assert human.exit_code == 0 and f"note: the Microsoft app's client secret expires on {soon}" in human.output


def test_a_spool_that_cannot_be_written_during_a_pause_leaves_the_worker_delivering_once_it_can(
        relay: RelayFactory, tls: TLSFiles) -> None:
    """A full disk while the upstream is down: the pause cannot be written to control.json. The worker says
    so in one line, waits, and delivers once both are back; it never dies (a relay that accepts and never
    delivers, with a traceback on stderr)."""
    import shutil

    port = free_port()
    credentials.store_password("default", PASSWORD)
    profile = smtp_profile(name="default", email=USER, host="127.0.0.1", port=port, security="starttls",
                           ca_file=str(tls.ca_file), timeout=5.0)  # nothing listens on the port yet
    running = relay(profile, retry_delay=0.2, max_delay=0.5)
    submit(running.port, erp_message(1))
    wait_for(lambda: bool(running.logged("paused")), what="the pause")
    scratch = running.spool.root / "tmp"
    shutil.rmtree(scratch)
    scratch.write_text("a file where the spool's scratch folder belongs")  # every write of the spool fails
    (running.spool.root / "control.json").write_text("{}")  # the pause ended (`queue retry`)
    wait_for(lambda: any("cannot be written" in line for line in running.logged("paused")), what="the line")
    time.sleep(1.0)
    assert running.worker.alive
    scratch.unlink()
    upstream = SinkServer(port=port, handler=CaptureHandler(), security="starttls", tls_context=tls.server_context,
                          authenticator=accepting_authenticator(), auth_required=True).start()
    try:
        wait_for(lambda: len(upstream.messages) == 1 and not running.spool.ids(), timeout=30,
                 what="the delivery once the spool and the upstream are back")
    finally:
        upstream.stop()


def test_queue_retry_during_a_burst_ends_a_sender_s_hold_for_the_next_message_at_once(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles, runner: CliRunner) -> None:
    """An ERP trickling messages keeps one burst (one session) open. The admin grants Send As and runs `queue
    retry` meanwhile: the burst's next message from that address goes at once, and the hold is not written
    back by the burst's stale copy of it."""
    handler = RefuseSender(SALES)
    upstream = smtp_server(handler=handler)
    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(upstream, tls), allow=frozenset({SALES}), quota_pause=600.0, retries=0,
                    linger=30.0)  # the burst stays open for the next message
    submit(running.port, erp_message(1, sender=SALES))
    wait_for(lambda: bool(running.logged("sender-held")), what="the sender's hold")
    handler.refused = "nobody"  # Send As granted
    assert queue(runner, running.spool.root, "retry").exit_code == 0
    submit(running.port, erp_message(2, sender=SALES))  # within the burst still open
    wait_for(lambda: len(upstream.messages) == 2 and not running.spool.ids(),
             what="both messages from the address once held")
    code, report = status(runner, running.spool.root)
    assert code == 0 and report["held_senders"] == [] and report["queued"] == 0


def test_queue_status_is_75_for_a_message_older_than_max_age_and_gives_the_backlog_at_the_mailbox_s_pace(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles, runner: CliRunner) -> None:
    """Not paused, yet a message waits too long (a worker stuck, a pace too slow): monitoring must hear of it.
    The backlog is the queued messages at the relay's pace (60 a minute: a second each), plus a pause; held
    messages are neither backlog nor old."""
    from xoromail_cli.relay.control import SpoolControl, read_control, write_control

    credentials.store_password("default", PASSWORD)
    running = relay(profile_for(smtp_server(), tls), rate="60/min")
    running.worker.stop(10)  # accept only: three messages stay queued, delivery is not paused
    for number in (1, 2, 3):
        submit(running.port, erp_message(number))
    time.sleep(0.2)  # the oldest is then at least 0.2 s old
    code, report = status(runner, running.spool.root)
    assert code == 0 and report["queued"] == 3 and report["paused"] is False and report["eta_s"] == 3.0
    assert {"queued", "held", "failed", "in_doubt", "oldest_age_s", "paused", "pause_reason", "resumes_at", "eta_s",
            "schema"} <= set(report), "the keys issue 20 names for monitoring"
    code, report = status(runner, running.spool.root, "--max-age", "0s")
    assert code == 75 and report["oldest_age_s"] > 0 and report["paused"] is False
    queue(runner, running.spool.root, "hold", "--all")
    code, report = status(runner, running.spool.root, "--max-age", "0s")
    assert code == 0 and report["held"] == 3 and report["queued"] == 0 and report["oldest_age_s"] is None
    write_control(running.spool.root, SpoolControl(paused_until=time.time() + 600, pause_reason="421 4.3.2 busy",
                                                   per_second=read_control(running.spool.root).per_second))
    code, report = status(runner, running.spool.root)
    assert code == 75 and report["paused"] and report["eta_s"] == 0.0, "nothing queued: no backlog to wait for"
    queue(runner, running.spool.root, "release", "--all")
    code, report = status(runner, running.spool.root)
    assert code == 75 and 600 < report["eta_s"] <= 603.0, "the pause, then three messages a second apart"
