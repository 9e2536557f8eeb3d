"""The relay as a real process (the installed `xoromail relay`): kill -9, SIGTERM, load, the generated login."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import smtplib
import threading
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, accepting_authenticator, profile_for
from tests.support.relay_helpers import (
    RELAY_PASSWORD,
    RELAY_USER,
    erp_message,
    relay_process,
    spool_with_held,
    submit,
    wait_for,
)
from tests.support.samples import smtp_profile
from tests.support.servers import connections
from tests.support.terminal import Terminal
from xoromail_cli import config, credentials
from xoromail_cli.cli import app
from xoromail_cli.local.sink import CaptureHandler, SinkServer, free_port


def save_down_profile(config_path: Path, tls: TLSFiles, port: int) -> None:
    """A saved profile whose SMTP server (on `port`) is not running yet."""
    config.save_profile(config_path, smtp_profile(name="default", email=USER, host="127.0.0.1", port=port,
                                                  security="starttls", display_name="Company Billing",
                                                  ca_file=str(tls.ca_file), timeout=5.0))
    credentials.store_password("default", PASSWORD)


def upstream_on(port: int, tls: TLSFiles, handler: CaptureHandler | None = None) -> SinkServer:
    return SinkServer(port=port, handler=handler or CaptureHandler(), security="starttls",
                      tls_context=tls.server_context, authenticator=accepting_authenticator(),
                      auth_required=True).start()


def test_kill_9_after_250_then_a_restart_delivers_the_message_exactly_once(tls: TLSFiles, config_path: Path) -> None:
    port = free_port()
    save_down_profile(config_path, tls, port)
    first = relay_process(config_path)
    message = erp_message(1)
    try:
        submit(first.port, message)  # the 250 came back: from here on it must not be lost
        wait_for(lambda: bool(first.logged("paused")), what="the first delivery attempt to fail")
    finally:
        first.kill()
    assert first.process.returncode == -signal.SIGKILL
    upstream = upstream_on(port, tls)
    second = relay_process(config_path)
    try:
        assert "queued=1" in second.logged("listening")[0]
        wait_for(lambda: bool(second.logged("delivered")), timeout=30, what="the delivery after the restart")
        time.sleep(1.0)  # time enough for a second copy, were one coming
        assert [m.parsed()["Message-ID"] for m in upstream.messages] == [message["Message-ID"]]
        assert second.terminate() == 0
    finally:
        upstream.stop()
        if second.process.poll() is None:
            second.kill()


def test_listening_and_stopped_count_held_messages_apart_from_the_queued_ones(
        tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    """`queued=` stays the number the relay will try; the messages held for a person are `held=`."""
    save_down_profile(config_path, tls, free_port())
    spool_with_held(tmp_path / "spool", messages=4, held=3)
    process = relay_process(config_path, "--spool", str(tmp_path / "spool"))
    try:
        listening = process.logged("listening")[0]
        assert " queued=1 held=3 " in listening, listening
        wait_for(lambda: bool(process.logged("paused")), what="the one queued message's attempt")
        assert process.terminate() == 0
    finally:
        if process.process.poll() is None:
            process.kill()
    stopped = process.logged("stopped")[0]
    assert " queued=1 held=3 failed=0 " in stopped, stopped


def test_three_clients_of_a_hundred_messages_each_are_delivered_once_with_flat_memory(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    upstream = smtp_server()
    config.save_profile(config_path, profile_for(upstream, tls))
    credentials.store_password("default", PASSWORD)
    process = relay_process(config_path)
    sent: list[str] = []
    errors: list[BaseException] = []
    warm: list[int] = []

    def client(number: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", process.port, timeout=30) as session:
                session.login(RELAY_USER, RELAY_PASSWORD)
                for index in range(100):
                    message = erp_message(number * 1000 + index, attachment=b"%PDF-1.4 " + os.urandom(20_000))
                    session.send_message(message)
                    sent.append(str(message["Message-ID"]))
        except BaseException as exc:  # noqa: BLE001  # handed to the test thread below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=client, args=(number,)) for number in range(3)]
        for thread in threads:
            thread.start()
        wait_for(lambda: len(upstream.messages) >= 60, timeout=120, what="a warm relay")
        warm.append(process.rss_kib())
        for thread in threads:
            thread.join(180)
        assert not errors, errors
        wait_for(lambda: len(upstream.messages) >= 300, timeout=180, what="300 deliveries")
        time.sleep(1.0)
        after = process.rss_kib()
        assert process.terminate() == 0
    finally:
        if process.process.poll() is None:
            process.kill()
    assert connections(upstream.handler) <= 3, "a burst is one session with the service"
    received = [str(m.parsed()["Message-ID"]) for m in upstream.messages]
    assert len(received) == 300 and sorted(received) == sorted(sent)
    print(f"relay RSS: {warm[0]} KiB after 60 deliveries, {after} KiB after 300")
    assert after - warm[0] < 12 * 1024, f"RSS grew from {warm[0]} KiB to {after} KiB"


class SlowData(CaptureHandler):
    """Takes its time over DATA, so a SIGTERM lands while a delivery is in progress."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.started.set()
        await asyncio.sleep(1.5)
        return await super().handle_DATA(server, session, envelope)


def test_sigterm_finishes_the_delivery_in_progress_and_exits_0_with_the_rest_kept(
        tls: TLSFiles, config_path: Path, runner: CliRunner) -> None:
    port = free_port()
    save_down_profile(config_path, tls, port)
    handler = SlowData()
    upstream = upstream_on(port, tls, handler)
    process = relay_process(config_path, "--rate", "1/min")
    idle = smtplib.SMTP("127.0.0.1", process.port, timeout=20)
    try:
        idle.login(RELAY_USER, RELAY_PASSWORD)
        for number in range(3):
            submit(process.port, erp_message(number))
        assert handler.started.wait(20)
        assert process.terminate(30) == 0
        assert idle.getreply()[0] == 421, "a client still connected is told the relay is going away"
    finally:
        idle.close()
        upstream.stop()
        if process.process.poll() is None:
            process.kill()
    assert len(handler.messages) == 1, "the delivery in progress was finished"
    assert all(re.fullmatch(r"[a-z-]+ \S.*", line) for line in process.lines), process.lines  # journald: one line each
    assert "queued=2" in process.logged("stopped")[0]
    listed = runner.invoke(app, ["--config", str(config_path), "queue", "list", "--json"])
    assert [json.loads(line)["where"] for line in listed.stdout.splitlines()] == ["queue", "queue"]


def test_a_generated_relay_login_is_shown_once_at_a_terminal_and_never_without_one(
        tls: TLSFiles, config_path: Path, runner: CliRunner) -> None:
    save_down_profile(config_path, tls, free_port())
    without = runner.invoke(app, ["--config", str(config_path), "relay", "--listen", "127.0.0.1:0"])
    assert without.exit_code == 78 and "no relay password yet" in without.output
    args = ["--config", str(config_path), "relay", "--listen", "127.0.0.1:0"]
    first = Terminal(args, dict(os.environ))
    first.expect("shown this once: user erp password ")
    first.expect("listening ")
    shown = first.text.split("password ", 1)[1].split()[0]
    os.kill(first.pid, signal.SIGTERM)
    assert first.wait() == 0
    assert credentials.read_secret("default", "relay_password") == shown
    assert f"relay login created and stored in {credentials.store_label()}; shown this once" in first.text
    again = Terminal(args, dict(os.environ))
    again.expect("listening ")
    os.kill(again.pid, signal.SIGTERM)
    assert again.wait() == 0 and "shown this once" not in again.text and shown not in again.text


def test_a_relay_killed_during_an_upload_holds_the_message_after_restart_under_no_retry_in_doubt(
        tls: TLSFiles, config_path: Path, runner: CliRunner) -> None:
    port = free_port()
    save_down_profile(config_path, tls, port)
    handler = SlowData()
    upstream = upstream_on(port, tls, handler)
    first = relay_process(config_path, "--no-retry-in-doubt")
    message = erp_message(1)
    try:
        submit(first.port, message)
        assert handler.started.wait(20), "the upload began"
    finally:
        first.kill()  # during the upload: the relay never heard the answer
    second = relay_process(config_path, "--no-retry-in-doubt")
    try:
        wait_for(lambda: bool(second.logged("held")), what="the message held in doubt")
        held = second.logged("held")[0]
        assert message["Message-ID"] in held and "queue release" in held
        assert "sent again if still due" not in held, "the relay's line says what it does: hold, not resend"
        time.sleep(1.0)  # time enough for a resend, were one coming
        assert len(handler.messages) <= 1, "not sent again"
        listed = runner.invoke(app, ["--config", str(config_path), "queue", "list", "--json"])
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        assert len(rows) == 1 and rows[0]["in_doubt"] and rows[0]["held"] and rows[0]["attempts"] == 1
        assert "stopped while" in rows[0]["last_reply"]  # killed during the upload, not a lost answer
        assert "held (in doubt)" in runner.invoke(app, ["--config", str(config_path), "queue", "list"]).output
        assert second.terminate() == 0
    finally:
        upstream.stop()
        if second.process.poll() is None:
            second.kill()
