"""An app-only sign-in's PEM (private key + certificate), checked before msal ever signs with it.

Entra ID app certificate credentials are RSA (shared provider facts, 2026-12-07): any other key would end in a
traceback from the JWT library, so it is refused here with that reason. The key must be readable by its owner
only, must belong to the certificate, and the certificate must be valid today. `cryptography` is imported only
when a PEM is checked.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from xoromail_cli.errors import ConfigError, NoInputError

UPLOAD = "upload cert.pem to the app registration under Certificates & secrets"
NEW_CERTIFICATE = (
    "create a new RSA certificate (openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 365 "
    "-subj /CN=xoromail), " + UPLOAD + ", then `cat key.pem cert.pem > app.pem; chmod 600 app.pem` and run "
    "`xoromail setup --service microsoft365 --certificate app.pem`"
)


@dataclass(frozen=True)
class AppCertificate:
    """What msal needs, and the dates a warning needs."""

    private_key: str
    public_certificate: str
    not_before: datetime
    not_after: datetime

    def credential(self) -> dict[str, str]:
        return {"private_key": self.private_key, "public_certificate": self.public_certificate}


def read_pem(path: str) -> str:
    try:
        return Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise NoInputError(f"cannot read the certificate file {path}: {getattr(exc, 'strerror', None) or exc}",
                           "pass the PEM file with the private key and the certificate to --certificate") from None


def check_permissions(path: str) -> None:
    """A private key readable by the group or others is refused (as ssh refuses one)."""
    if os.name != "posix":
        return
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} holds a private key and is readable by others (mode {stat.S_IMODE(mode):o})",
                          f"chmod 600 {path} (and keep it owned by the user that runs xoromail)")


def load(path: str, now: datetime | None = None) -> AppCertificate:
    """Read and check the PEM; every problem is a ConfigError (78) or NoInputError (66) with its fix."""
    text = read_pem(path)
    check_permissions(path)
    if "PRIVATE KEY-----" not in text or "BEGIN CERTIFICATE-----" not in text:
        raise ConfigError(f"{path} must hold both the private key and the certificate (PEM)",
                          "concatenate them: cat key.pem cert.pem > xoromail.pem; " + UPLOAD)
    start = text.index("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", start) + len("-----END CERTIFICATE-----")
    certificate = text[start:end]
    not_before, not_after = _check_pair(path, text, certificate)
    now = now or datetime.now(UTC)
    if now < not_before:
        raise ConfigError(f"the certificate in {path} is not valid before {not_before:%Y-%m-%d %H:%M} UTC",
                          "check this machine's clock, or wait until then")
    if now >= not_after:
        raise ConfigError(f"the certificate in {path} expired on {not_after:%Y-%m-%d}", NEW_CERTIFICATE)
    return AppCertificate(text, certificate, not_before, not_after)


def _check_pair(path: str, text: str, certificate: str) -> tuple[datetime, datetime]:
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        cert = x509.load_pem_x509_certificate(certificate.encode("ascii"))
    except ValueError:
        raise ConfigError(f"the certificate in {path} cannot be read (not a PEM X.509 certificate)",
                          NEW_CERTIFICATE) from None
    try:
        key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
    except TypeError:
        raise ConfigError(f"the private key in {path} is encrypted with a passphrase",
                          f"store it without one (openssl pkey -in {path} -out plain.pem), chmod 600 it, and pass "
                          "that file to --certificate") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"the private key in {path} cannot be read: {type(exc).__name__}", NEW_CERTIFICATE) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "")
        raise ConfigError(f"the key in {path} is not RSA ({kind or 'another type'}): Entra ID app certificate "
                          "credentials are RSA", NEW_CERTIFICATE)
    if key.public_key().public_numbers() != _rsa_numbers(cert.public_key()):
        raise ConfigError(f"the private key and the certificate in {path} do not belong together",
                          "put the key and the certificate made with it in one file: cat key.pem cert.pem > app.pem")
    return cert.not_valid_before_utc, cert.not_valid_after_utc


def _rsa_numbers(public_key: object) -> object:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return public_key.public_numbers() if isinstance(public_key, rsa.RSAPublicKey) else None


def expires(path: str) -> datetime | None:
    """The certificate's not-after date, or None when the file cannot be read (validate reports that itself)."""
    try:
        return load(path).not_after
    except (ConfigError, NoInputError):
        return None
