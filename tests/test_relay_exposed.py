"""The relay facing attackers: guessing, connection floods and limits, over real TCP with smtplib.

The ERP submits from 127.0.0.1 while the attacker connects from 127.0.0.2. The relay's server runs in this
process with a stepped clock for the login throttle, so no test waits out a back-off or measures time.
"""

from __future__ import annotations

import base64
import re
import smtplib
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import USER, TLSFiles
from tests.support.exposed_relay import ATTACKER, ERP, RIGHT, Exposed, exposed, guess
from tests.support.relay_helpers import RELAY_PASSWORD, RELAY_USER, erp_message, relay_process, wait_for
from tests.support.samples import smtp_profile
from xoromail_cli import config, credentials
from xoromail_cli.cli import app
from xoromail_cli.local.sink import free_port
from xoromail_cli.relay.limits import parse_networks

__all__ = ["exposed"]  # the fixture, imported for pytest


def test_guessing_is_throttled_per_address_with_a_growing_back_off_while_the_erp_still_submits(
        exposed: Callable[..., Exposed]) -> None:
    relay = exposed()
    answers = []
    for _ in range(2):  # three AUTH a connection: the 4th ends it (aiosmtpd's command_call_limit)
        with relay.client(ATTACKER) as attacker:
            answers += [guess(attacker)[0] for _ in range(3)]
            assert guess(attacker)[0] == 421
    assert answers == [535] * 5 + [454], "five failures a minute, then 454 4.7.0"
    with relay.client(ATTACKER) as attacker:
        code, text = guess(attacker, RIGHT)
        assert (code, text[:5]) == (454, b"4.7.0"), "while throttled the password is not even looked at"
    with relay.client(ERP) as erp:
        erp.login(RELAY_USER, RELAY_PASSWORD)
        erp.send_message(erp_message(1))
    assert len(relay.spool.ids()) == 1
    refused, throttled = relay.logged("auth-refused"), relay.logged("auth-throttled")
    assert len(refused) == 5 and all("ip=127.0.0.2 " in line for line in refused)
    assert len(throttled) == 1 and "seconds=60 " in throttled[0]
    relay.clock.now += 61  # the window is over: the right password works again from there
    with relay.client(ATTACKER) as attacker:
        assert guess(attacker, RIGHT)[0] == 235
    relay.clock.now += 1
    for _ in range(2):
        with relay.client(ATTACKER) as attacker:
            for _ in range(3):
                guess(attacker)
    assert "seconds=60 " in relay.logged("auth-throttled")[-1], "a success cleared the address"
    relay.clock.now += 61
    with relay.client(ATTACKER) as attacker:
        for _ in range(3):
            guess(attacker)
    with relay.client(ATTACKER) as attacker:
        for _ in range(3):
            guess(attacker)
    assert "seconds=120 " in relay.logged("auth-throttled")[-1], "the second throttling lasts twice as long"
    assert len(relay.logged("auth-refused")) == 15, "one line per failure until throttled, none while throttled"


def test_only_allowed_addresses_connect_and_the_refusals_are_logged_once_an_interval(
        exposed: Callable[..., Exposed]) -> None:
    relay = exposed(allow=parse_networks(["127.0.0.1/32", "::1"]))
    for _ in range(3):
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", relay.port, timeout=10, source_address=(ATTACKER, 0))
        assert refused.value.smtp_code == 554 and b"5.7.1" in refused.value.smtp_error
    with relay.client(ERP) as erp:
        erp.login(RELAY_USER, RELAY_PASSWORD)
    assert len(relay.logged("refused-ip")) == 1 and "ip=127.0.0.2" in relay.logged("refused-ip")[0]


def test_connections_are_limited_per_address_and_in_all_and_the_erp_keeps_its_own(
        exposed: Callable[..., Exposed]) -> None:
    relay = exposed(per_address=3, max_connections=5)
    held = [relay.client(ATTACKER) for _ in range(3)]
    try:
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", relay.port, timeout=10, source_address=(ATTACKER, 0))
        assert refused.value.smtp_code == 421
        with relay.client(ERP) as erp:
            erp.login(RELAY_USER, RELAY_PASSWORD)
            erp.send_message(erp_message(2))
        held += [relay.client("127.0.0.3") for _ in range(2)]
        with pytest.raises(smtplib.SMTPConnectError) as full:
            smtplib.SMTP("127.0.0.1", relay.port, timeout=10, source_address=("127.0.0.4", 0))
        assert full.value.smtp_code == 421 and b"Too many connections" in full.value.smtp_error
    finally:
        for client in held:
            client.close()
    wait_for(lambda: relay.server.gate.total == 0, what="the closed connections to be counted out")
    with relay.client(ATTACKER) as again:
        assert again.noop()[0] == 250


def test_a_connection_that_does_not_log_in_in_time_is_closed_with_421(exposed: Callable[..., Exposed]) -> None:
    relay = exposed(login_within=1.0)
    with socket.create_connection(("127.0.0.1", relay.port), timeout=20, source_address=(ATTACKER, 0)) as idle:
        received = b""
        while not received.endswith(b"\r\n") or b"421" not in received:
            chunk = idle.recv(4096)
            if not chunk:
                break
            received += chunk
    assert b"421 4.4.2" in received and relay.logged("login-timeout")
    wait_for(lambda: relay.server.gate.total == 0, what="the connection to be counted out")


def test_rcpt_is_capped_and_what_is_not_an_address_is_refused_at_rcpt(exposed: Callable[..., Exposed]) -> None:
    relay = exposed(max_recipients=3)
    with relay.client(ERP) as erp:
        erp.login(RELAY_USER, RELAY_PASSWORD)
        assert erp.mail(USER)[0] == 250
        assert erp.rcpt("no-domain")[0] == 501
        assert erp.docmd("RCPT", "TO:<a\0b@client.test>")[0] == 501
        assert [erp.rcpt(f"r{n}@client.test")[0] for n in range(4)] == [250, 250, 250, 452]
        erp.rset()
        code, text = erp.mail("<>")
        assert code == 550 and b"bounces" in text and b"--allow-from" not in text
        assert erp.docmd("MAIL", "FROM:<billing\0@company.test>")[0] == 553


def test_a_short_relay_password_is_refused_at_start(config_path: Path, runner: CliRunner, tls: TLSFiles) -> None:
    config.save_profile(config_path, smtp_profile(name="default", email=USER, host="127.0.0.1", port=free_port(),
                                                  security="starttls", ca_file=str(tls.ca_file)))
    for weak in ("a", " ", "1234", "aaaaaaaaaaaaaaaaaaaa"):
        result = runner.invoke(app, ["--config", str(config_path), "relay", "--listen", "127.0.0.1:0",
                                     "--password-stdin"], input=weak + "\n")
        assert result.exit_code == 78 and "at least 16" in result.output, result.output
    assert credentials.read_secret("default", "relay_password") is None, "a weak password is never stored"


def test_at_the_descriptor_limit_clients_are_turned_away_with_one_line_and_no_traceback(
        config_path: Path, tls: TLSFiles) -> None:
    config.save_profile(config_path, smtp_profile(name="default", email=USER, host="127.0.0.1", port=free_port(),
                                                  security="starttls", ca_file=str(tls.ca_file), timeout=5.0))
    process = relay_process(config_path, "--max-connections", "1000", "--max-per-address", "1000", files=64)
    held: list[socket.socket] = []
    answers: list[bytes] = []
    try:
        for _ in range(90):  # more than the process may open
            conn = socket.create_connection(("127.0.0.1", process.port), timeout=10, source_address=(ATTACKER, 0))
            held.append(conn)
            answers.append(conn.recv(200))
        assert any(answer.startswith(b"421 4.3.2") for answer in answers), answers[-1]
        assert sum(answer.startswith(b"220") for answer in answers) < 64
        for conn in held:
            conn.close()
        held.clear()
        wait_for(lambda: _submits(process.port), what="the ERP to get in again")
        assert process.terminate() == 0
    finally:
        for conn in held:
            conn.close()
        if process.process.poll() is None:
            process.kill()
    assert not [line for line in process.lines if "Traceback" in line or line.startswith(" ")], process.lines[-5:]
    assert 1 <= len(process.logged("out-of-descriptors")) <= 2


def _submits(port: int) -> bool:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as erp:
            erp.login(RELAY_USER, RELAY_PASSWORD)
            erp.send_message(erp_message(9))
    except (smtplib.SMTPException, OSError):
        return False
    return True


def test_the_documented_fail2ban_filter_reads_the_address_from_each_line_it_is_meant_for(
        exposed: Callable[..., Exposed]) -> None:
    relay = exposed(allow=parse_networks(["127.0.0.1/32", "127.0.0.2/32"]))
    for _ in range(2):
        with relay.client(ATTACKER) as attacker:
            for _ in range(3):
                guess(attacker)
    with pytest.raises(smtplib.SMTPConnectError):
        smtplib.SMTP("127.0.0.1", relay.port, timeout=10, source_address=("127.0.0.5", 0))
    text = (Path(__file__).parents[1] / "docs" / "relay.md").read_text(encoding="utf-8")
    block = text.split("failregex = ", 1)[1].split("journalmatch", 1)[0]
    patterns = [re.compile(line.strip().replace("<HOST>", r"(?P<host>[0-9A-Fa-f:.]+)")) for line in
                block.splitlines() if line.strip()]
    lines = relay.logged("auth-refused")[:1] + relay.logged("auth-throttled") + relay.logged("refused-ip")
    assert len(lines) == 3
    hosts = [next(match.group("host") for pattern in patterns if (match := pattern.search(line))) for line in lines]
    assert hosts == [ATTACKER, ATTACKER, "127.0.0.5"]


def test_sigterm_in_the_middle_of_a_large_message_exits_0_without_a_traceback(config_path: Path,
                                                                             tls: TLSFiles) -> None:
    config.save_profile(config_path, smtp_profile(name="default", email=USER, host="127.0.0.1", port=free_port(),
                                                  security="starttls", ca_file=str(tls.ca_file), timeout=5.0))
    process = relay_process(config_path)
    try:
        client = smtplib.SMTP("127.0.0.1", process.port, timeout=20, source_address=(ATTACKER, 0))
        client.login(RELAY_USER, RELAY_PASSWORD)
        assert client.mail(USER)[0] == 250 and client.rcpt("customer@client.test")[0] == 250
        assert client.docmd("DATA")[0] == 354
        client.send(f"From: {USER}\r\nTo: customer@client.test\r\n".encode() + b"\r\n".join(
            f" user{n}@client.test,".encode() for n in range(20_000)) + b"\r\n x@client.test\r\n\r\n"
            + b"x" * 76 * 50_000)  # half a message: the rest never comes
        assert process.terminate() == 0
        client.close()
    finally:
        if process.process.poll() is None:
            process.kill()
    assert not [line for line in process.lines if "Traceback" in line or line.startswith(" ")], process.lines[-5:]
    assert process.logged("stopped")


def test_a_data_beyond_the_messages_taken_in_at_once_waits_its_turn_then_gets_452(
        exposed: Callable[..., Exposed]) -> None:
    relay = exposed(in_data=1, data_wait=0.5)
    first = relay.client(ATTACKER)
    try:
        first.login(RELAY_USER, RELAY_PASSWORD)
        assert first.mail(USER)[0] == 250 and first.rcpt("a@client.test")[0] == 250
        assert first.docmd("DATA")[0] == 354  # and its data never ends: it holds the one slot
        with relay.client(ERP) as erp:
            erp.login(RELAY_USER, RELAY_PASSWORD)
            assert erp.mail(USER)[0] == 250 and erp.rcpt("b@client.test")[0] == 250
            code, text = erp.docmd("DATA")
            assert code == 452 and text.startswith(b"4.3.1")
        first.send(b"Subject: done\r\n\r\nbody\r\n.\r\n")
        assert first.getreply()[0] == 250
    finally:
        first.close()
    with relay.client(ERP) as erp:
        erp.login(RELAY_USER, RELAY_PASSWORD)
        erp.send_message(erp_message(8))
    assert len(relay.spool.ids()) == 2


def test_swaks_guessing_from_another_address_meets_the_throttle(exposed: Callable[..., Exposed]) -> None:
    import subprocess

    from tests.support.external import external_client

    swaks = external_client("swaks", "apt-get install swaks")
    relay = exposed()
    outputs = []
    for attempt in range(6):
        if swaks is None:
            outputs.append(_guess_with_smtplib(relay.port, f"guess-{attempt}"))
            continue
        done = subprocess.run([swaks, "--server", f"127.0.0.1:{relay.port}", "--local-interface", ATTACKER,
                               "--auth", "LOGIN", "--auth-user", RELAY_USER, "--auth-password", f"guess-{attempt}",
                               "--from", USER, "--to", "customer@client.test", "--quit-after", "AUTH"],
                              capture_output=True, text=True, timeout=60, check=False)
        outputs.append(done.stdout)
    assert all("535 5.7.8" in output for output in outputs[:5])
    assert "454 4.7.0 Too many failed logins from 127.0.0.2" in outputs[5]
    assert len(relay.logged("auth-refused")) == 5 and "mechanism=LOGIN" in relay.logged("auth-refused")[0]


def _guess_with_smtplib(port: int, password: str) -> str:
    """What swaks does above, with smtplib: AUTH LOGIN from the attacker's address; the reply as text."""
    import smtplib

    with smtplib.SMTP("127.0.0.1", port, timeout=20, source_address=(ATTACKER, 0)) as client:
        client.ehlo()
        client.user, client.password = RELAY_USER, password
        try:
            code, answer = client.auth("LOGIN", client.auth_login, initial_response_ok=False)
            reply: bytes | str = answer
        except smtplib.SMTPResponseException as refused:
            code, reply = refused.smtp_code, refused.smtp_error
        return f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"


def test_logins_begun_on_many_connections_before_the_throttle_are_not_checked_once_it_holds(
        exposed: Callable[..., Exposed]) -> None:
    """AUTH LOGIN asks for the password after the throttle was looked at: an attacker who starts it on every
    connection he may open, then sends the passwords, must not have them checked once the address is throttled."""
    relay = exposed()
    pending = []
    for _ in range(8):
        attacker = relay.client(ATTACKER)
        assert attacker.docmd("AUTH", "LOGIN")[0] == 334
        assert attacker.docmd(base64.b64encode(RELAY_USER.encode()).decode())[0] == 334
        pending.append(attacker)
    answers = []
    for number, attacker in enumerate(pending):
        password = RELAY_PASSWORD if number == len(pending) - 1 else f"guess-{number}"
        answers.append(attacker.docmd(base64.b64encode(password.encode()).decode())[0])
        attacker.close()
    assert answers == [535] * 5 + [454] * 3, "the right password, sent while throttled, is not looked at"
    assert len(relay.logged("auth-refused")) == 5 and len(relay.logged("auth-throttled")) == 1


def test_a_logged_in_connection_that_says_nothing_for_the_idle_time_is_closed_and_counted_out(
        exposed: Callable[..., Exposed]) -> None:
    """--idle-timeout: a session forgotten after AUTH (an ERP that never quits) does not keep its place for good;
    the login timeout, longer here, no longer applies once logged in."""
    relay = exposed(idle=1.0, login_within=300.0, per_address=1)
    forgotten = relay.client(ERP)
    try:
        forgotten.login(RELAY_USER, RELAY_PASSWORD)
        assert forgotten.sock is not None
        forgotten.sock.settimeout(20)
        assert forgotten.sock.recv(100) == b"", "the relay closed the idle session"
    finally:
        forgotten.close()
    wait_for(lambda: relay.server.gate.total == 0, what="the idle session to be counted out")
    with relay.client(ERP) as erp:  # its place (one an address here) is free again
        erp.login(RELAY_USER, RELAY_PASSWORD)
        erp.send_message(erp_message(7))
    assert len(relay.spool.ids()) == 1 and not relay.logged("login-timeout")


def test_a_line_of_up_to_256_kib_is_taken_and_a_longer_one_refused_550_with_the_session_going_on(
        exposed: Callable[..., Exposed]) -> None:
    """Lines over 1,000 octets are taken (as Postfix and Exim take them) up to the relay's 256 KiB, which bounds
    what one line holds in memory; a longer one is a content refusal (5.6.0), not a command error."""
    relay = exposed()
    head = f"From: {USER}\r\nTo: customer@client.test\r\nSubject: long\r\n\r\n".encode()
    with relay.client(ERP) as erp:
        erp.login(RELAY_USER, RELAY_PASSWORD)
        for length, expected in ((256 * 1024, 250), (256 * 1024 + 1, 550), (1_000_000, 550)):
            assert erp.mail(USER)[0] == 250 and erp.rcpt("customer@client.test")[0] == 250
            assert erp.docmd("DATA")[0] == 354
            erp.send(head + b"x" * length + b"\r\nend\r\n.\r\n")
            code, text = erp.getreply()
            assert code == expected, (length, code, text)
            if expected == 550:
                assert text.startswith(b"5.6.0") and b"262,144" in text
        assert erp.noop()[0] == 250, "the session goes on"
    assert len(relay.spool.ids()) == 1


def test_a_message_still_arriving_after_the_idle_time_is_taken(exposed: Callable[..., Exposed]) -> None:
    """The idle timeout is for a client that says nothing; one whose data keeps coming (a large message over a
    slow line) is not cut off in the middle of it."""
    import time

    relay = exposed(idle=2.0)  # four times the pause between lines: a loaded machine may stretch one
    with relay.client(ERP) as erp:
        erp.login(RELAY_USER, RELAY_PASSWORD)
        assert erp.mail(USER)[0] == 250 and erp.rcpt("customer@client.test")[0] == 250
        assert erp.docmd("DATA")[0] == 354
        erp.send(f"From: {USER}\r\nTo: customer@client.test\r\nSubject: slow\r\n\r\n".encode())
        for _ in range(8):  # four seconds of data (twice the idle time), a line every half second
            erp.send(b"x" * 76 + b"\r\n")
            time.sleep(0.5)
        erp.send(b".\r\n")
        assert erp.getreply()[0] == 250
    assert len(relay.spool.ids()) == 1


def test_a_pooled_client_may_noop_before_each_message_while_auth_and_a_bare_noop_flood_stay_limited(
        exposed: Callable[..., Exposed]) -> None:
    """A connection pool (JavaMail's, Spring's) checks its connection with NOOP (or RSET) before each message:
    the budget is per message, not per connection; AUTH's (three a connection) is not refilled by messages."""
    relay = exposed()
    with relay.client(ERP) as pooled:
        pooled.login(RELAY_USER, RELAY_PASSWORD)
        for number in range(150):
            assert pooled.noop()[0] == 250, f"the NOOP before message {number + 1}"
            assert pooled.rset()[0] == 250
            pooled.send_message(erp_message(number))
        assert [pooled.docmd("AUTH", f"PLAIN {RIGHT}")[0] for _ in range(3)] == [503, 503, 421]
    assert len(relay.spool.ids()) == 150
    with relay.client(ERP) as flooding:
        flooding.login(RELAY_USER, RELAY_PASSWORD)
        answers = [flooding.docmd("NOOP")[0] for _ in range(101)]
    assert answers == [250] * 100 + [421], "without a message in between, a hundred NOOPs"
    [cut] = relay.logged("too-many-commands")
    assert "command=NOOP" in cut and "ip=127.0.0.1" in cut
