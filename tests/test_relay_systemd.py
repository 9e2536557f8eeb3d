"""The relay under systemd: `Type=notify` spoken to a datagram socket standing in for `$NOTIFY_SOCKET`, and the
unit in docs/relay.md parsed and checked (its options exist, its sandbox, its restart policy, its credential)."""

from __future__ import annotations

import configparser
import contextlib
import os
import re
import shlex
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.cli import SCRIPT
from tests.support.common import ServerFactory, TLSFiles, configure, profile_for
from tests.support.external import external_client
from tests.support.relay_helpers import (
    RelayFactory,
    RelayProcess,
    erp_message,
    relay,
    relay_process,
    submit,
)
from xoromail_cli.cli import app
from xoromail_cli.relay.notify import Notifier

__all__ = ["relay"]  # the fixture, imported for pytest
DOCS = Path(__file__).resolve().parents[1] / "docs" / "relay.md"


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """What systemd listens on: a Unix datagram socket (a short path: sun_path holds 108 bytes)."""
    folder = tempfile.mkdtemp(prefix="xn-", dir="/tmp")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    try:
        yield sock, path
    finally:
        sock.close()
        os.unlink(path)
        os.rmdir(folder)


def received(sock: socket.socket, until: str, timeout: float = 20.0) -> list[str]:
    """Datagrams until one holding `until` (each a list of KEY=value lines, joined by '|')."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(sock.recv(4096).decode().replace("\n", "|"))
        except TimeoutError:
            continue
        if until in seen[-1]:
            return seen
    raise AssertionError(f"no {until} in {seen}")


def test_ready_once_listening_watchdog_while_alive_and_stopping_on_sigterm(
        tls: TLSFiles, config_path: Path, notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    configure(config_path, None, tls)  # an upstream that is not running
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "300000"}
    process = RelayProcess(["--config", str(config_path), "relay", "--listen", "127.0.0.1:0", "--user", "erp",
                            "--password-stdin"], env)
    try:
        first = received(sock, "READY=1")
        assert first[-1].startswith("READY=1|STATUS=listening on 127.0.0.1:") and len(first) == 1
        submit(process.port, erp_message(1))  # it listens: READY came after the socket was open
        watchdog = received(sock, "WATCHDOG=1")
        watchdog += received(sock, "WATCHDOG=1")
        assert watchdog[-2:] == ["WATCHDOG=1", "WATCHDOG=1"]
        process.process.terminate()
        stopping = received(sock, "STOPPING=1")
        assert stopping[-1].startswith("STOPPING=1")
        assert process.process.wait(30) == 0
    finally:
        if process.process.poll() is None:
            process.kill()


def test_without_notify_socket_nothing_is_sent_and_nothing_fails(tls: TLSFiles, config_path: Path) -> None:
    configure(config_path, None, tls)  # an upstream that is not running
    process = relay_process(config_path)
    try:
        assert process.terminate() == 0
    finally:
        if process.process.poll() is None:
            process.kill()
    assert Notifier({}).ready("x") is False and Notifier({}).interval is None


def test_an_abstract_socket_name_and_a_watchdog_meant_for_another_process() -> None:
    name = f"xoromail-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "30000000",
                             "WATCHDOG_PID": str(os.getpid())})
        assert notifier.interval == 15.0
        assert notifier.stopping()
        assert sock.recv(4096).startswith(b"STOPPING=1\n")
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).interval is None
    assert Notifier({"NOTIFY_SOCKET": "/nonexistent/notify"}).watchdog() is False  # never an error


def unit_from_docs() -> tuple[str, configparser.ConfigParser]:
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```ini\n(.*?)```", text, flags=re.DOTALL)
    units = [block for block in blocks if block.startswith("[Unit]") and "[Service]" in block]
    assert len(units) == 1, "docs/relay.md shows one whole relay unit (and fragments of it)"
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd's keys are case-sensitive
    parser.read_string(units[0])
    return units[0], parser


def test_the_unit_in_the_docs_is_type_notify_sandboxed_and_restarts_on_failure(runner: CliRunner) -> None:
    text, unit = unit_from_docs()
    service = unit["Service"]
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert service["Restart"] == "on-failure" and int(service["WatchdogSec"].rstrip("s")) >= 10
    assert service["KillSignal"] == "SIGTERM" and int(service["TimeoutStopSec"]) >= 30
    for directive, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                             ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("ProtectKernelTunables", "yes"),
                             ("ProtectControlGroups", "yes"), ("RestrictSUIDSGID", "yes"),
                             ("LockPersonality", "yes"), ("UMask", "0077")):
        assert service.get(directive) == value, directive
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= set(service["RestrictAddressFamilies"].split())
    assert service["StateDirectory"] == "xoromail" and service["StateDirectoryMode"] == "0700"
    assert "xoromail-secrets.key" in service["LoadCredentialEncrypted"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "User=" in text and "DynamicUser" not in text  # the spool and settings outlive the service
    command = shlex.split(service["ExecStart"])
    assert command[0].endswith("/xoromail") and "relay" in command
    options = command[1:]
    assert runner.invoke(app, [*options, "--help"]).exit_code == 0, "every option of ExecStart exists"


def test_systemd_analyze_verify_finds_nothing_to_say_about_the_unit(tmp_path: Path) -> None:
    analyze = external_client("systemd-analyze", "apt-get install systemd",
                              "checked the unit's sections and ExecStart with Python only")
    text, _ = unit_from_docs()
    unit = tmp_path / "xoromail-relay.service"
    unit.write_text(text.replace("/usr/local/bin/xoromail", SCRIPT), encoding="utf-8")
    if analyze is None:
        parsed = configparser.ConfigParser(strict=False, interpolation=None)
        parsed.read_string(unit.read_text(encoding="utf-8"))
        assert {"Unit", "Service", "Install"} <= set(parsed.sections())
        assert os.access(shlex.split(parsed["Service"]["ExecStart"])[0], os.X_OK)
        return
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_watchdog_stops_when_a_delivery_worker_dies(
        relay: RelayFactory, smtp_server: ServerFactory, tls: TLSFiles,
        notify_socket: tuple[socket.socket, str]) -> None:
    """WATCHDOG=1 is systemd's only sign that the relay still delivers: once a worker's thread has ended, the
    pings stop (and systemd, after WatchdogSec, restarts the relay) although the SMTP server still listens."""
    from xoromail_cli.cli.relay_cmd import _run
    from xoromail_cli.relay.office import Mailbox, Office
    from xoromail_cli.relay.users import LoginTable

    sock, path = notify_socket
    running = relay(profile_for(smtp_server(), tls))
    office = Office(logins=LoginTable({}), routes={},
                    mailboxes=[Mailbox(running.profile, running.spool, running.worker)])
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})  # a ping every 0.1 s
    stop, reload = threading.Event(), threading.Event()
    loop = threading.Thread(target=_run, args=(office, running.server, notifier, stop, reload), daemon=True)
    loop.start()
    try:
        assert received(sock, "WATCHDOG=1")[-1] == "WATCHDOG=1"
        assert received(sock, "WATCHDOG=1")[-1] == "WATCHDOG=1"
        running.worker.stop(10)
        assert not running.worker.alive and running.server.alive
        time.sleep(0.6)  # a ping already on its way may still arrive
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while sock.recv(4096):
                pass
        sock.settimeout(1.5)  # fifteen intervals
        with pytest.raises(TimeoutError):
            sock.recv(4096)
    finally:
        stop.set()
        loop.join(10)
    assert not loop.is_alive()
