"""STARTTLS for the relay's public name, with a real `xoromail relay` process and trustme certificates:
checked at start, read again on SIGHUP, a failed handshake logged with who offered what."""

from __future__ import annotations

import datetime
import signal
import smtplib
import ssl
import warnings
from pathlib import Path

import trustme
from typer.testing import CliRunner

from tests.support.common import PASSWORD, USER, TLSFiles, client_context
from tests.support.relay_helpers import RELAY_PASSWORD, RELAY_USER, erp_message, relay_process, wait_for
from tests.support.samples import smtp_profile
from xoromail_cli import config, credentials
from xoromail_cli.cli import app
from xoromail_cli.local.sink import free_port


def write_cert(folder: Path, authority: trustme.CA, not_before: datetime.datetime | None = None,
               not_after: datetime.datetime | None = None) -> tuple[Path, Path]:
    issued = authority.issue_cert("127.0.0.1", "relay.company.test", not_before=not_before, not_after=not_after)
    cert, key = folder / "relay.pem", folder / "relay.key"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return cert, key


def saved_profile(config_path: Path, tls: TLSFiles) -> None:
    config.save_profile(config_path, smtp_profile(name="default", email=USER, host="127.0.0.1", port=free_port(),
                                                  security="starttls", ca_file=str(tls.ca_file), timeout=5.0))
    credentials.store_password("default", PASSWORD)


def served_serial(port: int, ca: trustme.CA) -> int:
    """The serial number of the certificate a client gets after STARTTLS (it must also be trusted)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
        client.starttls(context=client_context(ca))
        sock = client.sock
        assert isinstance(sock, ssl.SSLSocket)
        der = sock.getpeercert(binary_form=True)
        assert der is not None
    from cryptography import x509

    return int(x509.load_der_x509_certificate(der).serial_number)


def test_an_expired_certificate_or_a_key_that_is_not_its_own_is_refused_at_start(
        runner: CliRunner, tmp_path: Path, tls: TLSFiles) -> None:
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    cert, key = write_cert(tmp_path, tls.ca, not_before=past, not_after=past + datetime.timedelta(days=90))
    expired = runner.invoke(app, ["relay", "--tls-cert", str(cert), "--tls-key", str(key)])
    assert expired.exit_code == 78 and "expired on 2020-03-31" in expired.output and "renew" in expired.output
    write_cert(tmp_path, tls.ca)
    other = tmp_path / "other"
    other.mkdir()
    _, other_key = write_cert(other, tls.ca)
    mismatched = runner.invoke(app, ["relay", "--tls-cert", str(cert), "--tls-key", str(other_key)])
    assert mismatched.exit_code == 78 and "not this certificate's" in mismatched.output
    wrong_min = runner.invoke(app, ["relay", "--tls-cert", str(cert), "--tls-key", str(key), "--tls-min", "0.9"])
    assert wrong_min.exit_code == 78


def test_sighup_serves_the_renewed_certificate_to_new_sessions_and_keeps_the_old_ones(
        config_path: Path, tmp_path: Path, tls: TLSFiles) -> None:
    saved_profile(config_path, tls)
    cert, key = write_cert(tmp_path, tls.ca)
    process = relay_process(config_path, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        before = served_serial(process.port, tls.ca)
        kept = smtplib.SMTP("127.0.0.1", process.port, timeout=20)
        kept.starttls(context=tls.client_context())
        kept.login(RELAY_USER, RELAY_PASSWORD)
        write_cert(tmp_path, tls.ca)  # the renewal (certbot's deploy hook) replaces both files
        process.process.send_signal(signal.SIGHUP)
        wait_for(lambda: bool(process.logged("tls-reloaded")), what="the reload")
        after = served_serial(process.port, tls.ca)
        kept.send_message(erp_message(1))  # the session from before the reload goes on
        kept.quit()
        assert before != after
        past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
        write_cert(tmp_path, tls.ca, not_before=past, not_after=past + datetime.timedelta(days=90))
        process.process.send_signal(signal.SIGHUP)
        wait_for(lambda: bool(process.logged("tls-reload-failed")), what="the refused reload")
        assert "expired" in process.logged("tls-reload-failed")[0]
        assert served_serial(process.port, tls.ca) == after, "a bad renewal leaves the working certificate"
        assert process.process.poll() is None and process.terminate() == 0
    finally:
        if process.process.poll() is None:
            process.kill()
    assert "queued=1" in process.logged("stopped")[0]


def tls10_client() -> ssl.SSLContext:
    """What Mono's SmtpClient or .NET Framework before 4.6 offers: TLS 1.0 only."""
    context = ssl.create_default_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_a_tls_1_0_client_is_refused_and_logged_and_tls_min_1_0_is_an_explicit_warned_choice(
        config_path: Path, tmp_path: Path, tls: TLSFiles) -> None:
    saved_profile(config_path, tls)
    cert, key = write_cert(tmp_path, tls.ca)
    process = relay_process(config_path, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        with smtplib.SMTP("127.0.0.1", process.port, timeout=20) as client:
            try:
                client.starttls(context=tls10_client())
                raise AssertionError("a TLS 1.0 handshake succeeded")
            except (ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionError):
                pass
        wait_for(lambda: bool(process.logged("tls-failed")), what="the failed handshake's log line")
        [line] = process.logged("tls-failed")
        assert "ip=127.0.0.1" in line and "UNSUPPORTED_PROTOCOL" in line and "TLS 1.0 or 1.1" in line
        assert not process.logged("warning")
    finally:
        process.terminate()
    lowered = relay_process(config_path, "--tls-cert", str(cert), "--tls-key", str(key), "--tls-min", "1.0")
    try:
        assert "a network you trust" in lowered.logged("warning")[0]
        with smtplib.SMTP("127.0.0.1", lowered.port, timeout=20) as client:
            client.starttls(context=tls10_client())
            client.login(RELAY_USER, RELAY_PASSWORD)
    finally:
        lowered.terminate()


def test_the_start_warns_of_old_tls_and_of_a_public_listener_open_to_every_address(tmp_path: Path) -> None:
    from xoromail_cli.relay.limits import SessionLimits, parse_networks
    from xoromail_cli.relay.tls import TLSFiles, start_warnings

    files = TLSFiles(tmp_path / "c.pem", tmp_path / "k.pem")
    assert start_warnings("127.0.0.1", files, SessionLimits()) == []
    [public] = start_warnings("203.0.113.7", files, SessionLimits())
    assert "--allow-ip" in public
    assert start_warnings("203.0.113.7", files, SessionLimits(allow=parse_networks(["203.0.113.0/24"]))) == []
    [old] = start_warnings("127.0.0.1", TLSFiles(files.cert, files.key, "1.0"), SessionLimits())
    assert "TLS 1.0" in old and "trust" in old


def test_a_command_sent_behind_starttls_in_the_same_packet_is_not_run_after_the_handshake(
        config_path: Path, tmp_path: Path, tls: TLSFiles) -> None:
    import socket

    saved_profile(config_path, tls)
    cert, key = write_cert(tmp_path, tls.ca)
    process = relay_process(config_path, "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        with socket.create_connection(("127.0.0.1", process.port), timeout=20) as raw:
            reader = raw.makefile("rb")
            assert reader.readline().startswith(b"220")
            raw.sendall(b"EHLO attacker.test\r\n")
            while not reader.readline().startswith(b"250 "):
                pass
            raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")  # CVE-2024-34083's injection
            assert reader.readline().startswith(b"220")
            with tls.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as secure:
                secure.sendall(b"NOOP\r\n")
                first = secure.recv(1000)
        assert first.startswith(b"250"), f"the injected MAIL FROM was answered after the handshake: {first!r}"
    finally:
        process.terminate()


def test_a_key_with_a_passphrase_is_refused_at_start_without_a_prompt(tmp_path: Path, tls: TLSFiles) -> None:
    """OpenSSL would ask for the passphrase on standard input (and block the relay there, again at each SIGHUP):
    the relay started with its stdin open, as a terminal or a pipe leaves it, must stop with exit 78 instead."""
    import os
    import subprocess

    from cryptography.hazmat.primitives import serialization

    from tests.support.cli import SCRIPT

    cert, key = write_cert(tmp_path, tls.ca)
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.BestAvailableEncryption(b"secret-passphrase")))
    process = subprocess.Popen([SCRIPT, "relay", "--tls-cert", str(cert), "--tls-key", str(key)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=dict(os.environ), text=True)
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the relay waits for a passphrase") from None
    finally:
        if process.stdin is not None:
            process.stdin.close()
    assert process.stdout is not None
    output = process.stdout.read()
    process.stdout.close()
    assert code == 78 and "passphrase" in output, output
