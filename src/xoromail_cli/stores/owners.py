"""Which settings file a profile's secrets belong to: a guard, not a key.

Secrets are kept by profile name (service "xoromail", entry PROFILE or PROFILE:KIND), so two settings files on one
account that both have a profile `default` (`--config prod.toml` for cron, `--config test.toml` for trying things)
would share one password: setup from the second would overwrite the first's, disconnect would delete it. So the
store keeps one more entry beside them, kind `settings_file`: the resolved path of the settings file whose setup
stored them. `setup`, `disconnect` and `relay users` check it before they write or remove anything (`check`), and
refuse (exit 78) while that other file still exists and still has the profile; once it is gone, or no longer has
the profile, this file takes them over. Where no owner is recorded (secrets an older release stored), the file that
writes next takes them over silently. `send`, `validate` and the relay's start never look at this entry.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xoromail_cli.errors import KeyringUnavailableError, SecretsOwnedElsewhereError, XoromailError

OWNER_KIND = "settings_file"  # a secret-store kind, not a secret
"""The entry that names the settings file a profile's secrets belong to."""


@dataclass(frozen=True)
class Scope:
    """Secrets that belong to one thing of a settings file: a profile, or a relay login."""

    entry: str
    """The secret store's entry the owner is kept under (the profile's name, or the relay logins' owner)."""
    kind: str
    what: str
    """For people: "profile 'default'", "relay login 'erp'"."""
    held_by: Callable[[Path], bool]
    """Whether a settings file still has it (a file that cannot be read counts as having it)."""


def profile_scope(name: str) -> Scope:
    return Scope(name, OWNER_KIND, f"profile {name!r}", lambda path: _has_profile(path, name))


def resolved(settings_file: Path) -> Path:
    return settings_file.expanduser().resolve()


def recorded_owner(scope: Scope) -> Path | None:
    """The settings file recorded as the owner; None when none is recorded or no store can be reached here."""
    from xoromail_cli.credentials import read_secret

    try:
        value = read_secret(scope.entry, scope.kind)
    except KeyringUnavailableError:  # no store here: no secret of it this process could change either
        return None
    return Path(value) if value else None


def check(settings_file: Path, scope: Scope, hint: Callable[[str], str]) -> Path | None:
    """Raise SecretsOwnedElsewhereError when the secrets belong to another settings file that still exists and
    still has the scope's profile (or login); `hint(owner)` says what to do (the owner's path, shell-quoted).
    Returns the former owner this file takes them over from (gone, or without the profile), else None."""
    owner = recorded_owner(scope)
    if owner is None or owner == resolved(settings_file):
        return None
    if owner.is_file() and scope.held_by(owner):
        raise SecretsOwnedElsewhereError(
            f"the secrets of {scope.what} in the secret store belong to {owner}, which has {scope.what} too",
            hint(shlex.quote(str(owner))), owner=str(owner))
    return owner


def claim(settings_file: Path, scope: Scope) -> None:
    """Record this settings file as the owner of the scope's secrets."""
    from xoromail_cli.credentials import write_secret

    write_secret(scope.entry, scope.kind, str(resolved(settings_file)))


def release(scope: Scope) -> None:
    """Forget the owner (its secrets were removed); nothing recorded is not an error."""
    from xoromail_cli.credentials import delete_secret

    delete_secret(scope.entry, scope.kind)


def adopted_note(scope: Scope, former: Path) -> str:
    """What setup says when this file takes the secrets over from a file that is gone or lost the profile."""
    why = "no longer has it" if former.exists() else "no longer exists"
    return (f"the secrets of {scope.what} were kept for {former}, which {why}; "
            "this settings file takes them over")


def _has_profile(path: Path, name: str) -> bool:
    from xoromail_cli import config

    try:
        return name in config.load(path).profiles
    except XoromailError:  # unreadable now (a typo, a permission): it may well have the profile still
        return True
