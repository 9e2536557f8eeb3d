"""STARTTLS for the relay's public name: the certificate checked at start, read again on SIGHUP.

`tls_context` refuses what would fail every client later (a key that is not the certificate's, a certificate
expired or not yet valid) with the reason, at start. `TLSFiles.reload` builds a new context from the same
files; the server hands it to new sessions only, so the queue and the listener stay. TLS 1.2 is the floor;
`--tls-min 1.0` lowers it (with OpenSSL's security level 0, which TLS 1.0 needs) for a trusted network only.
"""

from __future__ import annotations

import datetime
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xoromail_cli.errors import ConfigError
from xoromail_cli.services.network import is_loopback

if TYPE_CHECKING:
    from xoromail_cli.relay.limits import SessionLimits

VERSIONS = {"1.0": "TLSv1", "1.1": "TLSv1_1", "1.2": "TLSv1_2", "1.3": "TLSv1_3"}
"""--tls-min values → `ssl.TLSVersion` names (looked up when used: the old ones warn as deprecated)."""
OLD_TLS_WARNING = ("--tls-min {version} lets clients use TLS {version}, which is broken and which no public "
                   "server should accept; use it only on a network you trust, and fix the client instead "
                   "(.NET Framework 4.6+ or ServicePointManager.SecurityProtocol = Tls12)")
_OFFERED = {
    "UNSUPPORTED_PROTOCOL": "an older TLS than the relay's minimum (TLS 1.0 or 1.1)",
    "WRONG_VERSION_NUMBER": "no TLS (or SSL 2/3)",
    "NO_SHARED_CIPHER": "no cipher the relay accepts",
    "HTTP_REQUEST": "HTTP, not TLS",
    "TLSV1_ALERT_UNKNOWN_CA": "TLS, but it does not trust the relay's certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "TLS, but it refused the relay's certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "TLS, but it refused the relay's certificate",
}


def describe_handshake_failure(error: ssl.SSLError | None) -> tuple[str, str]:
    """(OpenSSL's reason, what the client offered as far as it tells) for the `tls-failed` log line."""
    if error is None:
        return "closed during the handshake", "unknown"
    reason = str(getattr(error, "reason", None) or type(error).__name__)
    return reason, _OFFERED.get(reason, "unknown")


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__)


def check_validity(cert: Path, now: datetime.datetime | None = None) -> None:
    """Refuse a certificate outside its validity period (the first of the file: the server's own)."""
    from cryptography import x509

    try:
        leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the certificate {cert}: {_reason(exc)}",
                          "give a PEM certificate (chain), the server's certificate first") from None
    moment = now or datetime.datetime.now(datetime.UTC)
    if moment > leaf.not_valid_after_utc:
        raise ConfigError(f"the certificate {cert} expired on {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
                          "renew it (e.g. `certbot renew`), then start the relay again or send it SIGHUP")
    if moment < leaf.not_valid_before_utc:
        raise ConfigError(f"the certificate {cert} is valid only from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
                          "check the server's clock, or use a certificate valid now")


@dataclass(frozen=True)
class TLSFiles:
    """The certificate and key files and the lowest TLS version; `load` makes a fresh context from them."""

    cert: Path
    key: Path
    minimum: str = "1.2"

    def load(self) -> ssl.SSLContext:
        check_validity(self.cert)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        if self.minimum in ("1.0", "1.1"):  # chosen, and warned about, by the user (--tls-min)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                context.minimum_version = getattr(ssl.TLSVersion, VERSIONS[self.minimum])
            context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses TLS 1.0/1.1 at its default level
        else:
            context.minimum_version = getattr(ssl.TLSVersion, VERSIONS[self.minimum])
        asked: list[bool] = []

        def no_passphrase() -> bytes:  # else OpenSSL asks on the terminal, and the relay waits there
            asked.append(True)
            return b""

        try:
            context.load_cert_chain(self.cert, self.key, password=no_passphrase)
        except (OSError, ssl.SSLError) as exc:
            reason = "the key is protected by a passphrase" if asked else _reason(exc)
            hint = ("the key is not this certificate's: give the key the certificate was issued for"
                    if "KEY_VALUES_MISMATCH" in reason else
                    "give the key without its passphrase (openssl pkey -in KEY -out relay.key), readable only by "
                    "the relay's user" if asked else
                    "give a PEM certificate (chain) and its unencrypted PEM private key")
            raise ConfigError(f"cannot use the certificate {self.cert} with the key {self.key}: {reason}",
                              hint) from None
        return context


def tls_files(host: str, cert: Path | None, key: Path | None, minimum: str = "1.2") -> TLSFiles | None:
    """The STARTTLS files; ConfigError (78) when off loopback without them, or half given."""
    if (cert is None) != (key is None):
        raise ConfigError("--tls-cert and --tls-key go together", "give both files (PEM), or neither on loopback")
    if minimum not in VERSIONS:
        raise ConfigError(f"--tls-min {minimum} is not a TLS version", "give 1.2 (the default), 1.3, or 1.0/1.1")
    if cert is None or key is None:
        if not is_loopback(host):
            raise ConfigError(f"listening on {host} without TLS would carry the relay's password in clear",
                              "listen on 127.0.0.1 (the default), or give --tls-cert and --tls-key (PEM) so that "
                              "clients must use STARTTLS before AUTH")
        return None
    return TLSFiles(cert, key, minimum)


def tls_context(host: str, cert: Path | None, key: Path | None, minimum: str = "1.2") -> ssl.SSLContext | None:
    """The STARTTLS context from the user's files, checked (see `TLSFiles.load`), or None on loopback."""
    files = tls_files(host, cert, key, minimum)
    return files.load() if files is not None else None


def start_warnings(host: str, files: TLSFiles | None, limits: SessionLimits) -> list[str]:
    """What the relay says at start about a choice that weakens it (each becomes a `warning` line)."""
    warnings_ = []
    if files is not None and files.minimum in ("1.0", "1.1"):
        warnings_.append(OLD_TLS_WARNING.format(version=files.minimum))
    if not is_loopback(host) and not limits.allow:
        warnings_.append(f"listening on {host} without --allow-ip: anyone who reaches the port may try to log in; "
                         "give the ERP's addresses with --allow-ip CIDR")
    return warnings_
