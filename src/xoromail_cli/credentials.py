"""Where secrets come from and go: `$XOROMAIL_PASSWORD`, `password_command`, the secret store.

The secret store is the encrypted file when its key is given (`$XOROMAIL_SECRETS_KEY`, or the systemd credential
`xoromail-secrets.key`; see stores/encrypted.py), else the OS keyring through `keyring`, behind a policy: a backend
that keeps secrets unencrypted is used only when the user chose it by name (stores/keyrings.py). When no store
may be used we stop and say what to do; we never fall back to writing the secret elsewhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from xoromail_cli.errors import ConfigError, KeyringUnavailableError
from xoromail_cli.stores.keyrings import CHUNK as CHUNK  # re-exported: the names other modules import from here
from xoromail_cli.stores.keyrings import CRON_HINT as CRON_HINT
from xoromail_cli.stores.keyrings import KEYRING_SERVICE as KEYRING_SERVICE
from xoromail_cli.stores.keyrings import NO_KEYRING_HINT as NO_KEYRING_HINT
from xoromail_cli.stores.keyrings import entry_name as entry_name
from xoromail_cli.stores.keyrings import keyring_unreachable as keyring_unreachable

if TYPE_CHECKING:
    import subprocess

    from xoromail_cli.profile import Profile

ENV_PASSWORD = "XOROMAIL_PASSWORD"  # noqa: S105  # the variable's name, not a password
KEYRING_NOT_READ = ("the OS keyring is not read while a secrets key is given: a password setup stored there "
                    "before stays there; run setup with the key set to store it in the encrypted file")
NO_SIGN_IN = "no sign-in: the server accepts mail without one"
"""What setup and `config show` say of a profile whose server takes mail without a username (no password by
design, so never "unset")."""
_APP_PASSWORD = re.compile(r"^[a-z]{4}\s[a-z]{4}\s[a-z]{4}\s[a-z]{4}$")


class SecretBackend(Protocol):
    """Where secrets are kept, by profile and kind: the encrypted file or the OS keyring."""

    @property
    def label(self) -> str:
        """What holds the secrets, for people: "Secret Service", "encrypted file PATH (key: …)", …"""

    @property
    def encrypts(self) -> bool: ...

    def check(self, *, writing: bool = True) -> None:
        """Raise KeyringUnavailableError (exit 78) when the store cannot, or may not, be used."""

    def read(self, profile: str, kind: str) -> str | None: ...

    def write(self, profile: str, kind: str, value: str) -> None: ...

    def delete(self, profile: str, kind: str) -> bool: ...

    def kinds(self, profile: str, candidates: tuple[str, ...]) -> list[str]: ...


def current_store(recorded: str | None = None) -> SecretBackend:
    """The encrypted file when a key is given (no keyring import, no backend scan), else the OS keyring: the
    backend `recorded` in the profile by setup when it loads and is viable here and the user named none (no
    backend scan), else keyring's own choice or the user's."""
    from xoromail_cli.stores.encrypted import EncryptedFileStore, key_source

    source = key_source()
    if source is not None:
        return EncryptedFileStore(source)
    from xoromail_cli.stores.keyrings import current_keyring, recorded_keyring

    return (recorded_keyring(recorded) if recorded else None) or current_keyring()


def store_label() -> str:
    """What holds the secrets here; raises KeyringUnavailableError when nothing may."""
    store = current_store()
    store.check(writing=False)
    return store.label


def store_name() -> str:
    """What holds the secrets here, for a message saying where a secret is or was: `store_label()`, or "the
    secret store" when none can be named (nothing usable here); never raises."""
    try:
        return store_label()
    except KeyringUnavailableError:
        return "the secret store"


@dataclass(frozen=True)
class PasswordSource:
    """Where a profile's password would come from, without the password itself."""

    kind: str  # "environment", "password_command", "keyring", "encrypted_file" or "unset"
    detail: str
    unreachable: bool = False
    """No store can be reached here (cron, a service): a password setup stored may exist but cannot be read."""


def ensure_store_usable() -> None:
    """Raise KeyringUnavailableError (exit 78) if secrets cannot, or may not, be stored here."""
    current_store().check()


ensure_keyring_usable = ensure_store_usable  # the first releases' name


def store_password(profile_name: str, password: str) -> None:
    write_secret(profile_name, "password", password)


def password_source(profile: Profile) -> PasswordSource:
    if os.environ.get(ENV_PASSWORD):
        return PasswordSource("environment", f"${ENV_PASSWORD}")
    if profile.password_command:
        return PasswordSource("password_command", "password_command in the profile")
    try:
        store = current_store(profile.keyring_backend)
        stored = store.read(profile.name, "password")
    except KeyringUnavailableError as error:
        return PasswordSource("unset", error.message, unreachable=True)
    from xoromail_cli.stores.keyrings import KeyringStore

    if stored is None:
        return PasswordSource("unset", "no password stored" if isinstance(store, KeyringStore) else
                              f"no password in the encrypted file; {KEYRING_NOT_READ}")
    if isinstance(store, KeyringStore):
        return PasswordSource("keyring", f"{store.label} (service {KEYRING_SERVICE!r}, entry {profile.name!r})")
    return PasswordSource("encrypted_file", store.label)


def resolve_password(profile: Profile) -> str:
    """The password to sign in with; raises ConfigError if there is none."""
    value = os.environ.get(ENV_PASSWORD)
    if not value and profile.password_command:
        value = run_password_command(profile.password_command)
    if not value:
        value = read_secret(profile.name, "password", profile.keyring_backend)
    if not value:
        raise missing_password(profile.name)
    return value


def missing_password(profile_name: str) -> ConfigError:
    """No password from any source; with a secrets key given, say that the keyring was not looked at."""
    from xoromail_cli.stores.encrypted import key_source

    beside = f" ({KEYRING_NOT_READ})" if key_source() is not None else ""
    return ConfigError(f"no password for profile {profile_name!r}",
                       f"run `xoromail --profile {profile_name} setup`{beside}, or set ${ENV_PASSWORD} "
                       "or password_command")


def normalize_password(host: str, password: str) -> str:
    """Google shows app passwords as `abcd efgh ijkl mnop`; the spaces are not part of it."""
    if host.lower().endswith(("gmail.com", "googlemail.com")) and _APP_PASSWORD.match(password.strip()):
        return "".join(password.split())
    return password


def run_password_command(command: str, timeout: float = 60.0) -> str:
    """Run the profile's command like msmtp's passwordeval; its first stdout line is the password.

    The command runs in a session of its own, so that on a timeout its whole process group is killed:
    `subprocess.run` kills only the shell, and a child still holding the pipe (`gpg` waiting for a
    pinentry, `sleep`) would keep us waiting for ever.
    """
    import signal
    import subprocess

    process = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,  # noqa: S602  # a user-written command line, by design
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process, signal.SIGKILL)
        raise ConfigError(f"password_command did not finish within {timeout:.0f} s (it was stopped, with the "
                          "processes it started)", "make sure it runs without asking for input") from None
    except BaseException:  # Ctrl-C or SIGTERM while waiting: leave nothing behind
        _kill_group(process, signal.SIGKILL)
        raise
    if process.returncode != 0:
        raise ConfigError(f"password_command failed with exit status {process.returncode}",
                          "run the command yourself to see why; its output is not shown here")
    password = stdout.split("\n", 1)[0].rstrip("\r")
    if not password:
        raise ConfigError("password_command printed nothing", "it must print the password on stdout")
    return password


def _kill_group(process: subprocess.Popen[str], signal_number: int) -> None:
    """Kill the command's whole process group, then reap the shell and close its pipes."""
    import contextlib

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal_number)
    process.kill()
    process.communicate()


class Secrets:
    """A profile's secrets by kind ("password", "refresh_token", "token_cache", "client_secret", …).

    `get("password")` follows the password chain ($XOROMAIL_PASSWORD, password_command, the store); other kinds
    live in the secret store only (`current_store()`). With `staged=True` writes are kept in memory until
    `commit()` (setup stores nothing until the profile is saved).
    """

    def __init__(self, profile: Profile, *, staged: bool = False) -> None:
        self.profile = profile
        self._staged = staged
        self._pending: dict[str, str | None] = {}

    def get(self, kind: str) -> str | None:
        if kind in self._pending and (self._pending[kind] is not None or kind != "password"):
            return self._pending[kind]
        if kind in self._pending:  # the stored password is being dropped: only the environment or a command count
            value = os.environ.get(ENV_PASSWORD)
            if not value and self.profile.password_command:
                value = run_password_command(self.profile.password_command)
            return value or None
        if kind == "password":
            try:
                return resolve_password(self.profile)
            except KeyringUnavailableError:
                raise
            except ConfigError:
                return None
        return read_secret(self.profile.name, kind, self.profile.keyring_backend)

    def set(self, kind: str, value: str) -> None:
        if self._staged:
            self._pending[kind] = value
        else:
            write_secret(self.profile.name, kind, value, self.profile.keyring_backend)

    def delete(self, kind: str) -> None:
        if self._staged:
            self._pending[kind] = None
        else:
            delete_secret(self.profile.name, kind, self.profile.keyring_backend)

    def staged_kinds(self) -> list[str]:
        """The kinds `commit()` will store (not those it will remove)."""
        return [kind for kind, value in self._pending.items() if value is not None]

    def commit(self, profile_name: str | None = None) -> None:
        """Write what was staged (to `profile_name`, default the profile's own) and stop staging."""
        name = profile_name or self.profile.name
        for kind, value in self._pending.items():
            if value is None:
                delete_secret(name, kind)
            else:
                write_secret(name, kind, value)
        self._pending.clear()
        self._staged = False


def write_secret(profile_name: str, kind: str, value: str, recorded: str | None = None) -> None:
    """Store one secret; `recorded`: the profile's `keyring_backend` (see `current_store`)."""
    current_store(recorded).write(profile_name, kind, value)


def read_secret(profile_name: str, kind: str, recorded: str | None = None) -> str | None:
    """The stored secret, None when none is stored; KeyringUnavailableError when no store can be reached (not
    "none stored": setup may well have stored one, in a session this job cannot see)."""
    return current_store(recorded).read(profile_name, kind)


def delete_secret(profile_name: str, kind: str, recorded: str | None = None) -> bool:
    """Remove one secret (and its chunks); nothing stored is not an error. True when something was removed."""
    try:
        return current_store(recorded).delete(profile_name, kind)
    except KeyringUnavailableError:  # no store here: nothing this process could remove
        return False


def list_secrets(profile_name: str, candidates: Iterable[str] = ()) -> list[str]:
    """The kinds of secret stored for a profile. The encrypted file lists all of them; keyring cannot list its
    entries, so there only `candidates` (and the password) are looked up."""
    return current_store().kinds(profile_name, tuple(candidates))


def remove_secrets(profile_name: str, candidates: Iterable[str] = ()) -> list[str]:
    """Remove every secret of a profile (see `list_secrets` for what keyring can find); the kinds removed."""
    store = current_store()
    return [kind for kind in store.kinds(profile_name, tuple(candidates)) if store.delete(profile_name, kind)]


class MemorySecrets:
    """Secrets held in memory only: the demo's throwaway login, and tests."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = dict(values or {})

    def get(self, kind: str) -> str | None:
        return self.values.get(kind)

    def set(self, kind: str, value: str) -> None:
        self.values[kind] = value

    def delete(self, kind: str) -> None:
        self.values.pop(kind, None)
