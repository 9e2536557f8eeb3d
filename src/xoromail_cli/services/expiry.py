"""Warnings before something a profile depends on expires, each with its date and the command that renews it.

One function, `notes_for`, gives them for a profile: `validate` shows them as notes (and in --json), `send` and
the relay log them once a day (`once_a_day`), and `xoromail queue status` can list them. Each service says what
its sign-in depends on (`Service.expiring`): Microsoft 365 its app certificate or client secret within 30 days
and a refresh token unused for 60 of its 90 days (`microsoft365/expiry.py`); Google a sign-in whose consent
screen is in Testing (7 days). This module adds the relay's own TLS certificate within 21 days.

Nothing here prints or fails: a file that cannot be read gives no note (validate reports it itself).
`cryptography` (for a PEM's dates) loads only for a profile that needs it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile

RELAY_TLS_WITHIN = timedelta(days=21)


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
              secrets: Any = None, config_path: Path | None = None) -> list[ExpiryNote]:
    """Everything of `profile` (and of the relay's certificate, when given) that expires soon, soonest first.
    `config_path`: the settings file the run uses; each renewing command then names it (`--config`) when it is
    not the default one, so the command, typed as shown, renews this profile of this file."""
    from xoromail_cli import services

    now = now or datetime.now(UTC)
    notes = list(services.for_profile(profile).expiring(profile, now, secrets))
    if relay_certificate is not None:
        not_after = pem_not_after(relay_certificate)
        if not_after is not None and not_after - now <= RELAY_TLS_WITHIN:
            notes.append(ExpiryNote(
                kind="relay-tls", subject=f"the relay's TLS certificate {relay_certificate}", expires=not_after,
                renew="renew it in place (your CA, or certbot renew) and send the relay SIGHUP (systemctl reload "
                      "xoromail-relay): new sessions get the new certificate; or start it with new files",
                command=f"{xoromail_for(profile)} relay --tls-cert NEW-CERT.pem --tls-key NEW-KEY.pem"))
    if config_path is not None:
        notes = [_in_file(note, profile, config_path) for note in notes]
    return sorted(notes, key=lambda note: note.expires)


def xoromail_for(profile: Profile, config_path: Path | None = None) -> str:
    """`xoromail` with `--profile NAME` when the profile is not the one used by default: a note in another
    profile's log must not renew the default profile (every note's renewing command starts with it); with
    `--config PATH` too when `config_path` is given and is not the default settings file."""
    from xoromail_cli import config, paths

    return config.setup_command(config_path or paths.config_file(None), profile.name).removesuffix(" setup")


def _in_file(note: ExpiryNote, profile: Profile, config_path: Path) -> ExpiryNote:
    """The note with its command naming the run's settings file (the services' hooks know only the profile)."""
    from dataclasses import replace

    plain, named = xoromail_for(profile), xoromail_for(profile, config_path)
    if plain == named or not note.command.startswith(plain + " "):
        return note
    return replace(note, command=named + note.command.removeprefix(plain))


def texts(notes: list[ExpiryNote], now: datetime | None = None) -> list[str]:
    return [note.text(now) for note in notes]


def learn_from_error(profile: Profile, text: str | None, now: datetime | None = None) -> None:
    """Let the profile's service remember an expiry a failure revealed (`Service.learn_from_failure`: Microsoft's
    AADSTS7000222 for an expired client secret). Never raises: it only adds a note."""
    if not text:
        return
    from xoromail_cli import services
    from xoromail_cli.errors import XoromailError

    with contextlib.suppress(XoromailError):
        services.for_profile(profile).learn_from_failure(profile, text, now or datetime.now(UTC))


def day_of(value: object) -> datetime | None:
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
