"""What every service shares when the network or TLS fails: DNS, TCP and certificate problems, one way.

Each service adds its own wording for "where" (the outgoing server and port, the Exchange URI, an API URL);
the cause, the exit code and the certificate advice are the same everywhere.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Sequence
from typing import Any

from xoromail_cli.errors import ConfigError, ExitCode, NoInputError, StageFailedError

UNTRUSTED_HINT = ("the server's certificate is not trusted: fix the host name so it matches the certificate, "
                  "or pass the issuing CA with --ca-file")
TEMPORARY_HINT = "a temporary failure on the server: try again later"


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store (or SSL_CERT_FILE), plus the profile's own CA file if it has one."""
    context = ssl.create_default_context()
    try:
        if ca_file:
            _check_regular(ca_file)
            context.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:
        raise ConfigError(f"CA file {ca_file} holds no usable PEM certificate ({exc.reason or exc})",
                          "pass a PEM file with the CA certificate(s) to --ca-file") from None
    except OSError as exc:
        raise NoInputError(f"cannot read CA file {ca_file}: {exc.strerror}",
                           "check the path and permissions of the profile's ca_file") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _check_regular(ca_file: str) -> None:
    """A FIFO or a device as the CA file would make the read wait for ever (or never end): refused first."""
    import os
    import stat

    mode = os.stat(ca_file).st_mode
    if not stat.S_ISREG(mode):
        raise ConfigError(f"CA file {ca_file} is not a regular file",
                          "pass a PEM file with the CA certificate(s) to --ca-file (not a pipe, device or folder)")


def network_failure(stage: str, exc: BaseException, host: str, port: int, timeout: float, *,
                    where_hint: str, tls_hint: str, name_hint: str, untrusted_hint: str = UNTRUSTED_HINT,
                    connect_stages: tuple[str, ...] = ("connect",)) -> StageFailedError | None:
    """Explain a DNS, TCP or TLS failure; None when `exc` is none of those (the service explains it).

    Any other OSError is a failure to connect only in `connect_stages`; later, the service says what it means
    (SMTP: a lost session; HTTPS: a lost request). `services.http.failure` unwraps requests' errors to here."""
    if isinstance(exc, socket.gaierror):
        return StageFailedError(stage, f"cannot resolve {host!r}: {exc.strerror or exc}", name_hint,
                                ExitCode.UNAVAILABLE)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return StageFailedError(stage, f"certificate of {host} not trusted: {exc.verify_message or exc}",
                                untrusted_hint, ExitCode.PROTOCOL)
    if isinstance(exc, ssl.SSLError):
        return StageFailedError(stage, f"TLS handshake with {host}:{port} failed: {exc.reason or exc}",
                                tls_hint, ExitCode.PROTOCOL)
    if stage in connect_stages and isinstance(exc, OSError):
        if isinstance(exc, ConnectionRefusedError):
            cause = f"{host}:{port} refused the connection"
        elif is_timeout(exc):
            cause = f"no answer from {host}:{port} within {timeout:g} s"
        else:
            cause = f"cannot connect to {host}:{port}: {os_text(exc)}"
        return StageFailedError(stage, cause, where_hint, ExitCode.UNAVAILABLE)
    return None


def is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or "timed out" in str(exc)


def os_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine (localhost, 127.0.0.0/8, ::1): where a password may travel without TLS,
    and where a relay may listen without a certificate."""
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


Addresses = Sequence[tuple[Any, ...]]
"""What getaddrinfo answers: family, type, protocol, canonical name, socket address."""

RESOLVER_HINT = ("this machine's resolver did not answer: check its DNS settings (/etc/resolv.conf, "
                 "systemd-resolved) and network, then try again")


def resolve(host: str, port: int, seconds: float) -> Addresses:
    """`getaddrinfo` within `seconds`: the system resolver has no deadline of its own (a silent name server
    holds it for attempts times the timeout of resolv.conf, and a signal waits for it), so it runs in a thread of its
    own that is left behind when the time is up. A name that does not exist raises socket.gaierror as ever."""
    import threading

    answer: list[Addresses] = []
    failure: list[BaseException] = []

    def lookup() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except BaseException as exc:  # noqa: BLE001  # handed to the waiting thread, which raises it
            failure.append(exc)

    worker = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(seconds)
    if failure:
        raise failure[0]
    if not answer:
        raise StageFailedError("dns", f"looking up {host!r} did not finish within {seconds:g} s", RESOLVER_HINT,
                               ExitCode.TEMPFAIL)
    return answer[0]


def open_connection(addresses: Addresses, timeout: float) -> socket.socket:
    """A TCP connection to the first of `addresses` that takes it (what socket.create_connection does, without
    looking the name up a second time, and so without a second wait on the resolver)."""
    last: OSError = OSError("no address to connect to")
    for family, kind, protocol, _, address in addresses:
        sock = socket.socket(family, kind, protocol)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            last = exc
            continue
        return sock
    raise last
