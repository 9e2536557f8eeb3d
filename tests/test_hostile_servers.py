"""Servers that never finish a reply, drip it, flood it or refuse EHLO: every command ends, with the right code.

No wall-clock assertion: the scripts drip far faster than the timeout, so only a deadline on the whole reply
(or handshake, or stage) can end them; a run that hangs is stopped by the subprocess timeout and fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, ServerFactory, TLSFiles, configure, profile_for, secrets
from tests.support.external import private_namespaces
from tests.support.misbehaving import (
    Peer,
    Script,
    dripped_banner,
    dripped_data_reply,
    dripped_ehlo,
    endless_banner,
    endless_ehlo,
    escape_reply,
    refuses_ehlo,
    scripted,
)
from tests.support.samples import OVERDUE, csv_batch, smtp_profile
from tests.support.servers import DataReply
from xoromail_cli import config, validate
from xoromail_cli.cli import app
from xoromail_cli.errors import ExitCode
from xoromail_cli.profile import Profile
from xoromail_cli.sending.batch import SendJob

SCRIPT = str(Path(sys.executable).with_name("xoromail"))
TIMEOUT = 0.5


def plain_profile(port: int, **overrides: object) -> Profile:
    values: dict[str, object] = {"name": "default", "email": USER, "host": "127.0.0.1", "port": port,
                                 "security": "none", "display_name": "Company Billing", "timeout": TIMEOUT}
    values.update(overrides)
    return smtp_profile(**values)


@pytest.mark.parametrize(("script", "stage", "code", "words"), [
    (endless_banner, "ehlo", ExitCode.PROTOCOL, "more than 100 lines"),
    (endless_ehlo, "ehlo", ExitCode.PROTOCOL, "more than 100 lines"),
    (dripped_banner, "ehlo", ExitCode.TEMPFAIL, "too slow"),
    (dripped_ehlo, "ehlo", ExitCode.TEMPFAIL, "too slow"),
    (refuses_ehlo, "ehlo", ExitCode.TEMPFAIL, "421"),
])
def test_validate_ends_against_a_misbehaving_server(script: Script, stage: str, code: ExitCode, words: str) -> None:
    with scripted(script) as server:
        report = validate.run(plain_profile(server.port), secrets(PASSWORD), check_domain=False)
    assert report.failed is not None and report.failed.name == stage
    assert report.exit_code == code, report.failed.detail
    assert words in report.failed.detail
    assert "SSL" not in (report.failed.hint or ""), "a server that answers is not a TLS mismatch"


def test_a_silent_server_is_still_read_as_no_greeting(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    def silent(peer: Peer) -> None:
        peer.stop.wait(30)

    with scripted(silent) as server:
        report = validate.run(plain_profile(server.port), secrets(PASSWORD), check_domain=False)
    assert report.failed is not None and "no SMTP greeting" in report.failed.detail
    assert report.exit_code == ExitCode.PROTOCOL


def test_a_dripped_tls_handshake_ends_at_its_deadline(tls: TLSFiles) -> None:
    def dripped_handshake(peer: Peer) -> None:
        peer.drip(b"\x16\x03\x03\x40\x00" + b"\x02" * 4000)  # a ServerHello record that never completes

    with scripted(dripped_handshake) as server:
        profile = plain_profile(server.port, security="ssl", ca_file=str(tls.ca_file))
        report = validate.run(profile, secrets(PASSWORD), check_domain=False)
    assert report.failed is not None and report.failed.name == "tls"
    assert report.exit_code == ExitCode.TEMPFAIL
    assert "TLS handshake" in report.failed.detail


def test_data_slipped_in_behind_the_starttls_reply_is_refused(tls: TLSFiles) -> None:
    def injects(peer: Peer) -> None:
        peer.say(b"220 mx.test ESMTP\r\n")
        peer.dialog(until=b"STARTTLS", ehlo=b"250-mx.test\r\n250 STARTTLS\r\n")
        peer.say(b"220 2.0.0 Ready to start TLS\r\n250 2.1.0 injected\r\n")

    with scripted(injects) as server:
        profile = plain_profile(server.port, security="starttls", ca_file=str(tls.ca_file))
        report = validate.run(profile, secrets(PASSWORD), check_domain=False)
    assert report.failed is not None and report.failed.name == "tls"
    assert report.exit_code == ExitCode.PROTOCOL
    assert "before TLS began" in report.failed.detail


def test_a_fifo_as_ca_file_is_refused_not_waited_on(tmp_path: Path, smtp_server: ServerFactory,
                                                     tls: TLSFiles) -> None:
    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    report = validate.run(profile_for(smtp_server(), tls, ca_file=str(fifo)), secrets(PASSWORD),
                          check_domain=False)
    assert report.exit_code == ExitCode.CONFIG
    assert report.failed is not None and "not a regular file" in report.failed.detail


def run_send(config_path: Path, batch: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ.copy()
    env.update(XOROMAIL_CONFIG=str(config_path), XOROMAIL_PASSWORD=PASSWORD)
    command = [SCRIPT, "send", "--event", "overdue-invoice", "--batch", str(batch), "--retry-delay", "0"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_send_against_a_dripped_data_reply_ends_and_frees_the_account(
        config_path: Path, tmp_path: Path, smtp_server: ServerFactory, tls: TLSFiles) -> None:
    batch = csv_batch(tmp_path / "rows.csv", 2)
    with scripted(dripped_data_reply) as server:
        config.save_profile(config_path, plain_profile(server.port))
        first = run_send(config_path, batch)
        assert first.returncode == ExitCode.TEMPFAIL, first.stdout + first.stderr
        assert "too slow" in first.stderr or "did not finish" in first.stderr
        second = run_send(config_path, batch)
    assert "another xoromail run" not in second.stderr, "the first run's lock outlived it"
    assert second.returncode == ExitCode.TEMPFAIL, second.stdout + second.stderr


def test_send_against_an_endless_ehlo_ends_with_76(config_path: Path, tmp_path: Path) -> None:
    batch = csv_batch(tmp_path / "rows.csv", 2)
    with scripted(endless_ehlo) as server:
        config.save_profile(config_path, plain_profile(server.port))
        result = run_send(config_path, batch)
    assert result.returncode == ExitCode.PROTOCOL, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


ESCAPES = ("\x1b", "\x07", "\x9b")


def test_escape_sequences_in_a_servers_reply_reach_the_terminal_escaped(
        runner: CliRunner, config_path: Path) -> None:
    with scripted(escape_reply) as server:
        config.save_profile(config_path, plain_profile(server.port, username=USER))
        result = runner.invoke(app, ["--config", str(config_path), "validate", "--no-send", "--trace"],
                               env={"XOROMAIL_PASSWORD": PASSWORD})
    assert result.exit_code == ExitCode.NOPERM, result.output
    assert not any(code in result.output for code in ESCAPES)
    assert "\\x1b]0;owned\\x07" in result.output and "credentials" in result.output


def test_escape_sequences_in_a_refusal_are_escaped_in_send_and_log(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    server = smtp_server(handler=DataReply("554 5.7.1 \x1b[2J\x1b]0;owned\x07 rejected as spam"))
    base = configure(config_path, server, tls)
    sent = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--batch",
                               str(csv_batch(tmp_path / "r.csv", 1))])
    assert sent.exit_code != 0 and "rejected as spam" in sent.output
    shown = runner.invoke(app, [*base, "log"])
    assert "rejected as spam" in shown.output
    for output in (sent.output, shown.output):
        assert not any(code in output for code in ESCAPES) and "\\x1b[2J" in output


def test_escape_sequences_in_data_are_escaped_in_a_dry_run(runner: CliRunner, tls: TLSFiles,
                                                           config_path: Path) -> None:
    base = configure(config_path, None, tls)
    result = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "c@client.test", "--dry-run",
                                 *OVERDUE[:-4], "--var", "amount_due=\x1b[31m99\x9b2J", "--var",
                                 "due_date=2026-11-01"])
    assert result.exit_code == 0, result.output
    assert not any(code in result.output for code in ESCAPES) and "\\x1b[31m99\\x9b2J" in result.output


def test_an_unexpected_error_mid_batch_ends_the_run_with_70_and_counts_the_rows_not_sent(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    from tests.support.engine import sender
    from tests.support.samples import jobs

    server = smtp_server()

    def a_batch_that_breaks() -> Iterator[SendJob]:
        yield from jobs(2)
        raise RuntimeError("a bug quoting customer data: ann@client.test")

    run, _ = sender(profile_for(server, tls))
    summary = run.run(a_batch_that_breaks(), total=5)
    assert summary.exit_code == ExitCode.SOFTWARE and summary.aborted is not None
    assert "RuntimeError" in summary.aborted.message and "ann@" not in summary.aborted.message
    assert summary.count("sent") == 2 and summary.not_attempted == 3 and len(server.messages) == 2


def test_an_https_reply_dripped_a_byte_at_a_time_ends_at_the_requests_deadline(tls: TLSFiles) -> None:
    import requests

    from xoromail_cli.services import http

    def dripped_http(peer: Peer) -> None:
        secure = Peer(tls.server_context.wrap_socket(peer.conn, server_side=True), peer.stop)
        while secure.line():  # the request head, up to its empty line
            pass
        secure.drip(b"HTTP/1.1 200 OK\r\n" + b"X-Filler: still coming\r\n" * 20 + b"Content-Length: 0\r\n\r\n")

    with scripted(dripped_http) as server, pytest.raises(requests.exceptions.ReadTimeout) as caught:
        http.session(str(tls.ca_file), timeout=0.3).get(f"https://127.0.0.1:{server.port}/token")
    failure = http.failure("send", caught.value, "https://127.0.0.1/token", 0.3, http.Hints(
        where="check the address", tls="check the port", name="check the name"))
    assert failure.exit_code == ExitCode.TEMPFAIL


def test_an_https_body_dripped_after_a_quick_head_ends_at_the_requests_deadline(tls: TLSFiles) -> None:
    """requests reads a body after the adapter returns: the deadline must cover it too, not just the head."""
    import requests

    from xoromail_cli.services import http

    def dripped_body(peer: Peer) -> None:
        secure = Peer(tls.server_context.wrap_socket(peer.conn, server_side=True), peer.stop)
        while secure.line():  # the request head, up to its empty line
            pass
        secure.say(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        secure.drip(b"{" + b" " * 99_999)

    with scripted(dripped_body) as server, pytest.raises(requests.exceptions.ReadTimeout):
        http.session(str(tls.ca_file), timeout=0.3).get(f"https://127.0.0.1:{server.port}/token")


SILENT_RESOLVER = """
ip link set lo up
mount --bind "$RESOLV_CONF" /etc/resolv.conf
"$PYTHON" -c "
import socket, time
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(('127.0.0.1', 53))
tcp = socket.socket(); tcp.bind(('127.0.0.1', 53)); tcp.listen(5)
print('listening', flush=True); time.sleep(120)" > "$READY" 2>&1 &
while [ ! -s "$READY" ]; do sleep 0.05; done
"$@"
status=$?
kill $!
exit $status
"""


def test_a_resolver_that_never_answers_ends_validate_at_its_deadline(config_path: Path, tmp_path: Path) -> None:
    """The system resolver (getaddrinfo) has no deadline of its own: with resolv.conf naming a silent server it
    waits attempts x timeout (here 5 x 30 s), and a SIGTERM waits with it. Run in a private network and mount
    namespace (unshare: a real resolv.conf, a real silent name server on 127.0.0.1:53, nothing of the host's)."""
    if not private_namespaces(instead="could not build a private resolver and checked nothing"):
        return  # outside CI only: in CI a missing command or namespace support fails the test
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:30 attempts:5\n", encoding="utf-8")
    config.save_profile(config_path, plain_profile(25, host="mx.company.test"))
    env = {**os.environ, "XOROMAIL_CONFIG": str(config_path), "XOROMAIL_PASSWORD": PASSWORD,
           "RESOLV_CONF": str(resolv), "PYTHON": sys.executable, "READY": str(tmp_path / "ready")}
    with subprocess.Popen(["unshare", "--user", "--map-root-user", "--mount", "--net", "sh", "-c", SILENT_RESOLVER,
                           "sh", SCRIPT, "validate", "--no-send"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as run:
        try:
            out, err = run.communicate(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(run.pid, signal.SIGKILL)  # a run that hung leaves nothing behind
    assert run.returncode == ExitCode.TEMPFAIL, out + err
    assert "looking up 'mx.company.test' did not finish within 0.5 s" in " ".join(out.split())
    assert "Traceback" not in err


def test_an_exchange_head_dripped_past_the_deadline_is_75_not_an_empty_answer(tls: TLSFiles) -> None:
    """Shut down mid-head, http.client takes what came for a whole head and an empty body: exchangelib then
    read a 200 with no document ('Bad SOAP response', 69). A request the watchdog cut short is a timeout."""
    from tests.support.keyring_store import KeyringStore
    from xoromail_cli.credentials import write_secret
    from xoromail_cli.errors import StageFailedError
    from xoromail_cli.services.exchange.settings import ExchangeSettings
    from xoromail_cli.services.exchange.transport import ExchangeTransport

    def dripped_head(peer: Peer) -> None:
        secure = Peer(tls.server_context.wrap_socket(peer.conn, server_side=True), peer.stop)
        while secure.line():
            pass
        secure.drip(b"HTTP/1.1 200 OK\r\n" + b"X-Filler: still coming\r\n" * 2000)

    write_secret("default", "password", PASSWORD)
    with scripted(dripped_head) as server:
        settings = ExchangeSettings(url=f"https://127.0.0.1:{server.port}/EWS/Exchange.asmx", domain="company.test",
                                    username="billing", auth="basic")
        transport = ExchangeTransport(settings, USER, KeyringStore(deletes=False), timeout=TIMEOUT,
                                      ca_file=str(tls.ca_file))
        with pytest.raises(StageFailedError) as caught:
            transport.open()
    assert caught.value.exit_code == ExitCode.TEMPFAIL, caught.value.message
    assert "SOAP" not in caught.value.message
