"""Warnings before something a profile depends on expires, each with its date and the command that renews it.

One function, `notes_for`, gives them for a profile: `validate` shows them as notes (and in --json), `send` and
the relay log them once a day (`once_a_day`), and `xoromail queue status` can list them. What is watched:

- a Microsoft app certificate (the PEM's not-after) or client secret (`--client-secret-expires`, or learnt from an
  AADSTS7000222 answer: `learn_from_error`) within 30 days;
- a Microsoft refresh token not used for 60 of its 90 days (AADSTS700082 after 90);
- a Google sign-in whose consent screen is in Testing (refresh tokens die after 7 days);
- the relay's own TLS certificate within 21 days.

Nothing here prints or fails: a file that cannot be read gives no note (validate reports it itself).
`cryptography` (for a PEM's dates) and msal (for the token cache) load only for profiles that need them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile

MICROSOFT_WITHIN = timedelta(days=30)
RELAY_TLS_WITHIN = timedelta(days=21)
REFRESH_LIFETIME = timedelta(days=90)
REFRESH_UNUSED = timedelta(days=60)


@dataclass(frozen=True, kw_only=True)
class ExpiryNote:
    """One thing about to expire: what, when, and the command that renews it."""

    kind: str
    """microsoft-certificate, microsoft-client-secret, microsoft-refresh-token, google-testing or relay-tls."""
    subject: str
    expires: datetime
    renew: str
    command: str

    def text(self, now: datetime | None = None) -> str:
        left = self.expires - (now or datetime.now(UTC))
        if left.total_seconds() <= 0:
            state = f"expired on {self.expires:%Y-%m-%d}"
        else:
            days = left.days
            state = (f"expires on {self.expires:%Y-%m-%d} (in {days} day{'s' if days != 1 else ''})" if days
                     else f"expires on {self.expires:%Y-%m-%d %H:%M} UTC (within a day)")
        return f"{self.subject} {state}: {self.renew}; run `{self.command}`"

    def to_json(self, now: datetime | None = None) -> dict[str, str]:
        return {"kind": self.kind, "expires": self.expires.isoformat(), "command": self.command,
                "note": self.text(now)}


def notes_for(profile: Profile, *, relay_certificate: str | Path | None = None, now: datetime | None = None,
              secrets: Any = None) -> list[ExpiryNote]:
    """Everything of `profile` (and of the relay's certificate, when given) that expires soon, soonest first."""
    now = now or datetime.now(UTC)
    notes: list[ExpiryNote] = []
    if profile.service == "microsoft365":
        notes += _microsoft365(profile, now, secrets)
    elif profile.service == "google":
        notes += _google(profile)
    if relay_certificate is not None:
        not_after = pem_not_after(relay_certificate)
        if not_after is not None and not_after - now <= RELAY_TLS_WITHIN:
            notes.append(ExpiryNote(
                kind="relay-tls", subject=f"the relay's TLS certificate {relay_certificate}", expires=not_after,
                renew="renew it in place (your CA, or certbot renew) and send the relay SIGHUP (systemctl reload "
                      "xoromail-relay): new sessions get the new certificate; or start it with new files",
                command=f"{_xoromail(profile)} relay --tls-cert NEW-CERT.pem --tls-key NEW-KEY.pem"))
    return sorted(notes, key=lambda note: note.expires)


def _xoromail(profile: Profile) -> str:
    """`xoromail` with `--profile NAME` when the profile is not the one used by default: a note in another
    profile's log must not renew the default profile."""
    from xoromail_cli import paths

    return "xoromail" if profile.name == paths.profile_name(None) else f"xoromail --profile {profile.name}"


def texts(notes: list[ExpiryNote], now: datetime | None = None) -> list[str]:
    return [note.text(now) for note in notes]


def _microsoft365(profile: Profile, now: datetime, secrets: Any) -> list[ExpiryNote]:
    settings = profile.settings
    setup = f"{_xoromail(profile)} setup --service microsoft365"
    notes: list[ExpiryNote] = []
    certificate = getattr(settings, "certificate", None)
    not_after = pem_not_after(certificate) if certificate else None
    if not_after is not None and not_after - now <= MICROSOFT_WITHIN:
        notes.append(ExpiryNote(
            kind="microsoft-certificate", subject=f"the Microsoft app certificate {certificate}", expires=not_after,
            renew="make a new RSA certificate, upload it under the app registration's Certificates & secrets",
            command=f"{setup} --certificate NEW.pem"))
    secret_expires = _day(getattr(settings, "client_secret_expires", None))
    learnt = _learnt_secret_expiry(profile.name) if getattr(settings, "mode", None) == "app" else None
    if learnt is not None and (secret_expires is None or learnt < secret_expires):
        secret_expires = learnt
    if secret_expires is not None and secret_expires - now <= MICROSOFT_WITHIN:
        notes.append(ExpiryNote(
            kind="microsoft-client-secret", subject="the Microsoft app's client secret", expires=secret_expires,
            renew="create a new secret under the app registration's Certificates & secrets and store its Value",
            command=f"{setup} --client-secret-stdin --client-secret-expires YYYY-MM-DD"))
    if getattr(settings, "mode", None) == "delegated":
        refreshed = _last_refreshed(profile, secrets)
        if refreshed is not None and now - refreshed >= REFRESH_UNUSED:
            notes.append(ExpiryNote(
                kind="microsoft-refresh-token",
                subject=f"the Microsoft sign-in (unused since {refreshed:%Y-%m-%d})",
                expires=refreshed + REFRESH_LIFETIME,
                renew="a validate or send renews it (refresh tokens expire after 90 days unused)",
                command=f"{_xoromail(profile)} validate --no-send"))
    return notes


SECRET_EXPIRED = "AADSTS7000222"  # noqa: S105  # an error code, not a secret


def _secret_stamp(profile_name: str) -> Path:
    from xoromail_cli.paths import state_dir

    return state_dir() / f"{profile_name}.client-secret-expired"


def learn_from_error(profile: Profile, text: str | None, now: datetime | None = None) -> None:
    """Remember the day Microsoft said the client secret had expired (AADSTS7000222), so the notes say so until a
    new secret is stored (`forget_secret_expiry`). Never raises: it only adds a note."""
    if profile.service != "microsoft365" or not text or SECRET_EXPIRED not in text:
        return
    from xoromail_cli.paths import atomic_write

    stamp = _secret_stamp(profile.name)
    if stamp.exists():
        return
    with contextlib.suppress(OSError):
        atomic_write(stamp, (now or datetime.now(UTC)).date().isoformat().encode("ascii"))


def forget_secret_expiry(profile_name: str) -> None:
    with contextlib.suppress(OSError):
        _secret_stamp(profile_name).unlink()


def _learnt_secret_expiry(profile_name: str) -> datetime | None:
    try:
        text = _secret_stamp(profile_name).read_text(encoding="ascii").strip()
    except OSError:
        return None
    day = _day(text)
    return day.replace(hour=0, minute=0, second=0) if day is not None else None


def _google(profile: Profile) -> list[ExpiryNote]:
    settings = profile.settings
    expires = _day(getattr(settings, "sign_in_expires", None))
    if expires is None or getattr(settings, "service_account", None):
        return []
    return [ExpiryNote(
        kind="google-testing", subject="the Google sign-in (consent screen in \"Testing\": 7 days)", expires=expires,
        renew="publish the app (OAuth consent screen → Publish app, or Internal for a Workspace domain), or use a "
              "Workspace service account that needs no sign-in, then sign in again",
        command=f"{_xoromail(profile)} setup --service google")]


def _last_refreshed(profile: Profile, secrets: Any) -> datetime | None:
    from xoromail_cli.errors import XoromailError
    from xoromail_cli.services.microsoft365.auth import TokenSource

    try:
        if secrets is None:
            from xoromail_cli.credentials import Secrets

            secrets = Secrets(profile)
        return TokenSource(profile.settings, secrets, mailbox=profile.email).last_refreshed()
    except (XoromailError, ValueError):
        return None


def _day(value: object) -> datetime | None:
    """An ISO date or time from the settings, as an aware datetime (a bare date means its end, UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str | date) or not value:
        return None
    text = value.isoformat() if isinstance(value, date) else value
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def pem_not_after(path: str | Path) -> datetime | None:
    """The first certificate's not-after in a PEM file, or None when there is none or it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(data).not_valid_after_utc
    except ValueError:
        return None


def once_a_day(profile_name: str, notes: list[ExpiryNote], *, now: datetime | None = None,
               stamp_dir: Path | None = None) -> list[ExpiryNote]:
    """`notes` the first time they are asked for on a day (per profile), else []: send and the relay log them
    once a day, not once a message. The day is kept in a small stamp file in the state folder."""
    if not notes:
        return []
    from xoromail_cli.paths import atomic_write, state_dir

    today = (now or datetime.now(UTC)).date().isoformat()
    stamp = (stamp_dir or state_dir()) / f"{profile_name}.expiry-noted"
    with contextlib.suppress(OSError):
        if stamp.read_text(encoding="ascii").strip() == today:
            return []
    with contextlib.suppress(OSError):  # a read-only state folder must not stop a send: the notes still go out
        stamp.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(stamp, today.encode("ascii"))
    return notes
