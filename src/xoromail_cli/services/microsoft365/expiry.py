"""What a Microsoft 365 profile depends on that expires: the app's certificate or client secret within 30 days,
a delegated sign-in's refresh token unused for 60 of its 90 days. `services.expiry` gathers them as notes.

A client secret's end is its `--client-secret-expires`, or the day Microsoft answered AADSTS7000222 (kept in a
small stamp file until a new secret is stored). `cryptography` (for a PEM's dates) and msal (for the token
cache) load only when a profile needs them.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from xoromail_cli.services.expiry import ExpiryNote, day_of, pem_not_after, xoromail_for

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile
    from xoromail_cli.services.base import SecretStore

WITHIN = timedelta(days=30)
REFRESH_LIFETIME = timedelta(days=90)
REFRESH_UNUSED = timedelta(days=60)
SECRET_EXPIRED = "AADSTS7000222"  # noqa: S105  # an error code, not a secret


def notes(profile: Profile, now: datetime, secrets: SecretStore | None) -> list[ExpiryNote]:
    settings = profile.settings
    setup = f"{xoromail_for(profile)} setup --service microsoft365"
    found: list[ExpiryNote] = []
    certificate = getattr(settings, "certificate", None)
    not_after = pem_not_after(certificate) if certificate else None
    if not_after is not None and not_after - now <= WITHIN:
        found.append(ExpiryNote(
            kind="microsoft-certificate", subject=f"the Microsoft app certificate {certificate}", expires=not_after,
            renew="make a new RSA certificate, upload it under the app registration's Certificates & secrets",
            command=f"{setup} --certificate NEW.pem"))
    secret_expires = day_of(getattr(settings, "client_secret_expires", None))
    learnt = _learnt_secret_expiry(profile.name) if getattr(settings, "mode", None) == "app" else None
    if learnt is not None and (secret_expires is None or learnt < secret_expires):
        secret_expires = learnt
    if secret_expires is not None and secret_expires - now <= WITHIN:
        found.append(ExpiryNote(
            kind="microsoft-client-secret", subject="the Microsoft app's client secret", expires=secret_expires,
            renew="create a new secret under the app registration's Certificates & secrets and store its Value",
            command=f"{setup} --client-secret-stdin --client-secret-expires YYYY-MM-DD"))
    if getattr(settings, "mode", None) == "delegated":
        refreshed = _last_refreshed(profile, secrets)
        if refreshed is not None and now - refreshed >= REFRESH_UNUSED:
            found.append(ExpiryNote(
                kind="microsoft-refresh-token",
                subject=f"the Microsoft sign-in (unused since {refreshed:%Y-%m-%d})",
                expires=refreshed + REFRESH_LIFETIME,
                renew="a validate or send renews it (refresh tokens expire after 90 days unused)",
                command=f"{xoromail_for(profile)} validate --no-send"))
    return found


def _secret_stamp(profile_name: str) -> Path:
    from xoromail_cli.paths import state_dir

    return state_dir() / f"{profile_name}.client-secret-expired"


def learn_from_error(profile: Profile, text: str, now: datetime) -> None:
    """Remember the day Microsoft said the client secret had expired (AADSTS7000222), so the notes say so until a
    new secret is stored (`forget_secret_expiry`). Never raises: it only adds a note."""
    if SECRET_EXPIRED not in text:
        return
    from xoromail_cli.paths import atomic_write

    stamp = _secret_stamp(profile.name)
    if stamp.exists():
        return
    with contextlib.suppress(OSError):
        atomic_write(stamp, now.date().isoformat().encode("ascii"))


def forget_secret_expiry(profile_name: str) -> None:
    with contextlib.suppress(OSError):
        _secret_stamp(profile_name).unlink()


def _learnt_secret_expiry(profile_name: str) -> datetime | None:
    try:
        text = _secret_stamp(profile_name).read_text(encoding="ascii").strip()
    except OSError:
        return None
    day = day_of(text)
    return day.replace(hour=0, minute=0, second=0) if day is not None else None


def _last_refreshed(profile: Profile, secrets: SecretStore | None) -> datetime | None:
    from xoromail_cli.errors import XoromailError
    from xoromail_cli.services.microsoft365.auth import TokenSource

    try:
        if secrets is None:
            from xoromail_cli.credentials import Secrets

            secrets = Secrets(profile)
        return TokenSource(profile.settings, secrets, mailbox=profile.email).last_refreshed()
    except (XoromailError, ValueError):
        return None
