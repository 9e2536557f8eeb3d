"""The relay's logins: one process, several ERP logins, each delivering through its own profile.

A login lives in the settings file as `[relay.users.NAME]` (`profile = "billing"`, `from = ["sales@…"]`); its
password lives in the secret store (`credentials.write_secret`, entry `relay:login:NAME`), never in the file.
A login may send as its profile's address and as the `from` addresses; the relay refuses anything else at
MAIL FROM. Logins that share a profile share its mailbox: one spool, one pace, one quota.
"""

from __future__ import annotations

import hmac
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xoromail_cli.addresses import parse_address
from xoromail_cli.errors import ConfigError, NoInputError, UsageError
from xoromail_cli.stores import owners

SECRET_OWNER = "relay"  # noqa: S105  # the entry's name, not a secret
"""The secret store's first part of a login's entry (`relay:login:NAME`); a profile's kinds never begin with
`login:`, so no login's password can be mistaken for a profile's secret."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
_DUMMY = secrets.token_bytes(32)


@dataclass(frozen=True)
class RelayLogin:
    """One ERP login: its name, the profile it delivers through, the further From addresses it may use."""

    name: str
    profile: str
    senders: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "profile": self.profile, "from": list(self.senders)}


def check_login_name(name: str) -> str:
    """Refuse a login name the ERP could not type or the settings file could not hold plainly."""
    if not _NAME.fullmatch(name):
        raise UsageError(f"login name {name!r} is not allowed",
                         "use letters, digits, '_', '.', '@', '+' and '-' (starting with a letter or digit), "
                         "at most 64 characters")
    return name


def _secret_kind(name: str) -> str:
    return f"login:{name}"


def _document(path: Path) -> dict[str, Any]:
    from xoromail_cli import config

    config.load(path)  # refuse a file we cannot read correctly before touching it
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _login(path: Path, name: str, table: object) -> RelayLogin:
    where = f"{path}: [relay.users.{name}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table", 'write it as [relay.users.NAME] with profile = "…"')
    unknown = sorted(set(table) - {"profile", "from"})
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r}", "a login has `profile` and `from`")
    profile, senders = table.get("profile"), table.get("from", [])
    if not isinstance(profile, str) or not profile:
        raise ConfigError(f"{where} has no profile", 'add profile = "NAME" (a profile of this file)')
    if not isinstance(senders, list) or not all(isinstance(value, str) for value in senders):
        raise ConfigError(f"{where}: 'from' must be a list of addresses", 'e.g. from = ["sales@company.test"]')
    try:
        check_login_name(name)
        addresses = tuple(parse_address(value, "from") for value in senders)
    except UsageError as error:
        raise ConfigError(f"{where}: {error.message}", error.hint) from None
    return RelayLogin(name, profile, addresses)


def load_logins(path: Path) -> dict[str, RelayLogin]:
    """Every login of the settings file, by name (none when the file has no `[relay.users]`)."""
    relay = _document(path).get("relay", {})
    users = relay.get("users", {}) if isinstance(relay, dict) else None
    if not isinstance(users, dict):
        raise ConfigError(f"{path}: [relay.users] must be a table of logins",
                          "add logins with `xoromail relay users add NAME --profile P`")
    return {name: _login(path, name, table) for name, table in sorted(users.items())}


def _save(path: Path, logins: dict[str, RelayLogin]) -> None:
    import tomli_w

    from xoromail_cli.paths import atomic_write

    document = _document(path)
    relay = document.setdefault("relay", {})
    relay["users"] = {login.name: {"profile": login.profile, **({"from": list(login.senders)} if login.senders
                                                                   else {})}
                      for login in sorted(logins.values(), key=lambda login: login.name)}
    if not relay["users"]:
        del relay["users"]
    if not relay:
        del document["relay"]
    atomic_write(path.resolve(), tomli_w.dumps(document).encode("utf-8"))  # through a symlink, as config.save_profile


def add_login(path: Path, login: RelayLogin, password: str | None) -> tuple[str | None, list[RelayLogin]]:
    """Save the login and store its password (generated when None: returned, for the caller to show once).
    The first login also adopts the one-login relays' logins (see `_adopt_one_login_relays`), returned too;
    `left_out` names any it could not adopt (a name already taken)."""
    from xoromail_cli import config

    check_login_name(login.name)
    config.load_profile(path, login.profile)  # the profile must exist: ConfigError naming the known ones
    logins = load_logins(path)
    if login.name in logins:
        raise UsageError(f"the relay already has a login {login.name!r}",
                         f"remove it first (`xoromail relay users remove {login.name}`), or rotate its password "
                         f"with `xoromail relay users password {login.name}`")
    _refuse_if_owned_elsewhere(path, login.name)
    generated = set_password(login.name, password)
    _claim(path, login.name)
    adopted = _adopt_one_login_relays(path, login.name) if not logins else []
    logins.update({kept.name: kept for kept in adopted})
    logins[login.name] = login
    _save(path, logins)
    return generated, adopted


def one_login_relays(path: Path) -> list[tuple[RelayLogin, str]]:
    """The one-login relay's login of each profile that has one (`relay --user NAME --password-stdin`, kept
    beside the profile's secrets), with its password."""
    from xoromail_cli import config
    from xoromail_cli.credentials import read_secret
    from xoromail_cli.relay.credential import DEFAULT_USER, PASSWORD_KIND, USER_KIND

    found: list[tuple[RelayLogin, str]] = []
    for name in config.load(path).profiles:
        password = read_secret(name, PASSWORD_KIND)
        user = read_secret(name, USER_KIND) or DEFAULT_USER
        if password and _NAME.fullmatch(user):
            found.append((RelayLogin(user, name), password))
    return found


def _adopt_one_login_relays(path: Path, taken: str) -> list[RelayLogin]:
    """The one-login relays' logins as logins of the settings file: once the file has logins, `xoromail relay`
    serves only those, and the ERP already using such a login would be refused after the relay's next start."""
    adopted: list[RelayLogin] = []
    for login, password in one_login_relays(path):
        if login.name not in (taken, *(kept.name for kept in adopted)) and not _owned_elsewhere(path, login.name):
            set_password(login.name, password)
            _claim(path, login.name)
            adopted.append(login)
    return adopted


def set_password(name: str, password: str | None) -> str | None:
    """Store the login's password in the secret store; a new random one when None (returned, to be shown
    once: the relay compares what the ERP sends with it, so it is kept, never printed again)."""
    from xoromail_cli.credentials import write_secret

    if password is not None and not password:
        raise UsageError("the password read from stdin is empty", "pipe the password in: … --password-stdin")
    if password is not None:
        _check_strength(password)
    generated = secrets.token_urlsafe(18) if password is None else None
    write_secret(SECRET_OWNER, _secret_kind(name), password if password is not None else generated or "")
    return generated


def _check_strength(password: str) -> None:
    """A login's password faces the same guessers as the one-login relay's: as long, refused where it is given."""
    from xoromail_cli.relay.auth_limits import check_password_strength

    try:
        check_password_strength(password)
    except ConfigError as error:
        raise UsageError(error.message, "leave out --password-stdin to have one generated (24 characters), or "
                                        "pipe in a long random one: "
                                        "python3 -c 'import secrets; print(secrets.token_urlsafe(18))'") from None


def rotate_password(path: Path, name: str, password: str | None) -> str | None:
    """A new password for an existing login (generated when None, returned to be shown once)."""
    known(path, name)
    _refuse_if_owned_elsewhere(path, name)
    generated = set_password(name, password)
    _claim(path, name)
    return generated


def known(path: Path, name: str) -> RelayLogin:
    logins = load_logins(path)
    if name not in logins:
        raise NoInputError(f"the relay has no login {name!r} (logins: {', '.join(logins) or 'none'})",
                           "see `xoromail relay users list`")
    return logins[name]


def remove_login(path: Path, name: str) -> RelayLogin:
    """Forget a login: its table in the settings file, then its password."""
    from xoromail_cli.credentials import delete_secret

    login = known(path, name)
    _refuse_if_owned_elsewhere(path, name)
    logins = load_logins(path)
    del logins[name]
    _save(path, logins)
    delete_secret(SECRET_OWNER, _secret_kind(name))
    owners.release(_owner_scope(name))
    return login


def _owner_scope(name: str) -> owners.Scope:
    """A login's password is kept by its name alone (`relay:login:NAME`): the settings file it belongs to is
    recorded beside it (stores/owners.py), so another file's login of the same name cannot replace or remove it."""
    return owners.Scope(SECRET_OWNER, f"{owners.OWNER_KIND}:{_secret_kind(name)}", f"relay login {name!r}",
                        lambda path: _has_login(path, name))


def _has_login(path: Path, name: str) -> bool:
    from xoromail_cli.errors import XoromailError

    try:
        return name in load_logins(path)
    except XoromailError:  # unreadable now: it may well have the login still
        return True


def _refuse_if_owned_elsewhere(path: Path, name: str) -> None:
    """Before anything is written: the login's password belongs to another settings file that still has it."""
    owners.check(path, _owner_scope(name), lambda owner: (
        f"choose another login name, or remove it there first: xoromail --config {owner} relay users remove {name}"))


def _owned_elsewhere(path: Path, name: str) -> bool:
    from xoromail_cli.errors import SecretsOwnedElsewhereError

    try:
        _refuse_if_owned_elsewhere(path, name)
    except SecretsOwnedElsewhereError:
        return True
    return False


def _claim(path: Path, name: str) -> None:
    owners.claim(path, _owner_scope(name))


def read_password(name: str) -> str:
    from xoromail_cli.credentials import read_secret
    from xoromail_cli.relay.auth_limits import check_password_strength

    password = read_secret(SECRET_OWNER, _secret_kind(name))
    if not password:
        raise ConfigError(f"the relay login {name!r} has no password in the secret store",
                          f"set one with `xoromail relay users password {name}`")
    try:
        check_password_strength(password)  # one stored by hand or by an older release may be short
    except ConfigError as error:
        raise ConfigError(f"the relay login {name!r}: {error.message}",
                          f"give it a new one with `xoromail relay users password {name}` (generated and shown "
                          "once), and that one to its ERP") from None
    return password


ONE_LOGIN_KINDS = ("relay_user", "relay_password")
"""Where the one-login relay (`relay --user`) keeps its login, per profile (relay.credential's kinds)."""


def left_out(path: Path, logins: dict[str, RelayLogin]) -> list[str]:
    """The one-login relay's stored logins that `xoromail relay` without --user no longer serves once the
    settings file has logins (an office upgrading: its ERP would get 535), each with the command that keeps it."""
    from xoromail_cli import config
    from xoromail_cli.credentials import read_secret
    from xoromail_cli.errors import XoromailError

    notes: list[str] = []
    for name in sorted(config.load(path).profiles):
        try:
            user, password = (read_secret(name, kind) for kind in ONE_LOGIN_KINDS)
        except XoromailError:
            return notes  # no secret store here: the relay's own start says so
        if user is None or password is None or (user in logins and logins[user].profile == name):
            continue
        notes.append(f"the one-login relay's login {user!r} (profile {name}) is not served by `xoromail relay` "
                     f"without --user now that the settings file has logins: keep its ERP working with "
                     f"`xoromail relay users add {user} --profile {name} --password-stdin` (the same password, "
                     f"and its --allow-from addresses as --from), or start that relay with --user {user}")
    return notes


class LoginTable:
    """The logins a relay accepts: the user name picks the login, its password is compared in constant time
    (an unknown name is compared against a random value, so timing tells nothing of which names exist)."""

    def __init__(self, passwords: dict[str, str]) -> None:
        self._passwords = {name.encode("utf-8"): password.encode("utf-8") for name, password in passwords.items()}

    def login(self, user: bytes, password: bytes) -> str | None:
        """The login's name when the pair matches one, else None."""
        expected = self._passwords.get(user)
        matches = hmac.compare_digest(password, expected if expected is not None else _DUMMY)
        return user.decode("utf-8") if matches and expected is not None else None
