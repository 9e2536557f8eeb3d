"""Where the account's password comes from: `$XOROMAIL_PASSWORD`, `password_command`, or the OS keyring.

The password is only ever stored through `keyring` (service "xoromail", one entry per profile). When no
usable backend exists we stop and say what to do; we never fall back to writing the secret elsewhere.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from xoromail_cli.errors import ConfigError, KeyringUnavailableError

if TYPE_CHECKING:
    import subprocess

    from xoromail_cli.profile import Profile

KEYRING_SERVICE = "xoromail"
ENV_PASSWORD = "XOROMAIL_PASSWORD"  # noqa: S105  # the variable's name, not a password
NO_KEYRING_HINT = (
    "install a keyring backend (a Secret Service daemon such as gnome-keyring or KeePassXC, or "
    "`pip install keyrings.alt`, which keeps it in a file of your home folder), or set `password_command` "
    "in the profile (setup --password-command), or provide the password at run time in $XOROMAIL_PASSWORD"
)
CRON_HINT = (
    "give the password to this job another way: set `password_command` in the profile (setup "
    "--password-command CMD; a command that prints it, e.g. `cat ~/.config/xoromail/password` of a 0600 file), "
    "or put XOROMAIL_PASSWORD in the job's environment (e.g. from a 0600 file the crontab line sources); "
    "`xoromail config show` run the same way shows where the password would come from"
)
_APP_PASSWORD = re.compile(r"^[a-z]{4}\s[a-z]{4}\s[a-z]{4}\s[a-z]{4}$")


@dataclass(frozen=True)
class PasswordSource:
    """Where a profile's password would come from, without the password itself."""

    kind: str  # "environment", "password_command", "keyring" or "unset"
    detail: str
    unreachable: bool = False
    """No keyring can be reached here (cron, a service): a password setup stored may exist but cannot be read."""


def keyring_unreachable() -> KeyringUnavailableError:
    """The keyring cannot be reached in this environment: say why (cron has no D-Bus session) and what to do."""
    reason = "no keyring backend is usable here"
    if sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        reason = ("there is no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set), as under cron, systemd "
                  "services and SSH logins without a desktop session")
    return KeyringUnavailableError(f"the OS keyring cannot be reached in this environment ({reason}), so a "
                                   "password stored by setup cannot be read", CRON_HINT)


def ensure_keyring_usable() -> None:
    """Raise KeyringUnavailableError if `keyring` would only fail (e.g. a headless server)."""
    import keyring
    from keyring.backends import chainer, fail

    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # noqa: BLE001  # any backend failure; its text may quote the secret
        raise _keyring_failure("load", exc) from None
    empty_chain = isinstance(backend, chainer.ChainerBackend) and not backend.backends
    if isinstance(backend, fail.Keyring) or empty_chain:
        raise KeyringUnavailableError("no usable OS keyring backend was found to store the password",
                                      NO_KEYRING_HINT)


def store_password(profile_name: str, password: str) -> None:
    import keyring

    ensure_keyring_usable()
    try:
        keyring.set_password(KEYRING_SERVICE, profile_name, password)
    except Exception as exc:  # noqa: BLE001  # any backend failure; its text may quote the secret
        raise _keyring_failure("store the password in", exc) from None


def _keyring_failure(action: str, exc: BaseException) -> KeyringUnavailableError:
    """Name the failure by its type only: backends put stored lines, even secrets, into their messages."""
    return KeyringUnavailableError(f"could not {action} the OS keyring ({type(exc).__name__})",
                                   "check or repair the keyring backend; " + NO_KEYRING_HINT)


def password_source(profile: Profile) -> PasswordSource:
    if os.environ.get(ENV_PASSWORD):
        return PasswordSource("environment", f"${ENV_PASSWORD}")
    if profile.password_command:
        return PasswordSource("password_command", "password_command in the profile")
    try:
        stored = _keyring_password(profile.name)
    except KeyringUnavailableError as error:
        return PasswordSource("unset", error.message, unreachable=True)
    if stored is not None:
        return PasswordSource("keyring", f"OS keyring (service {KEYRING_SERVICE!r}, entry {profile.name!r})")
    return PasswordSource("unset", "no password stored")


def resolve_password(profile: Profile) -> str:
    """The password to sign in with; raises ConfigError if there is none."""
    value = os.environ.get(ENV_PASSWORD)
    if not value and profile.password_command:
        value = run_password_command(profile.password_command)
    if not value:
        value = _keyring_password(profile.name)
    if not value:
        raise ConfigError(f"no password for profile {profile.name!r}",
                          f"run `xoromail --profile {profile.name} setup`, or set ${ENV_PASSWORD} "
                          "or password_command")
    return value


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


def _keyring_password(profile_name: str) -> str | None:
    """The stored password, None when none is stored; KeyringUnavailableError when no keyring can be
    reached (not "no password": setup may well have stored one, in a session this job cannot see)."""
    import keyring
    from keyring.errors import NoKeyringError

    try:
        return keyring.get_password(KEYRING_SERVICE, profile_name)
    except NoKeyringError:
        raise keyring_unreachable() from None
    except Exception as exc:  # noqa: BLE001  # any backend failure; its text may quote the secret
        raise _keyring_failure("read", exc) from None


CHUNK = 2000
"""Characters per keyring entry: Windows Credential Manager keeps at most 2,560 bytes a secret, and OAuth
token caches are larger, so a long secret is split over numbered entries."""
_CHUNKED = "xoromail-chunks:"


def entry_name(profile_name: str, kind: str) -> str:
    """The keyring entry of one secret; the password keeps the profile's bare name (older releases)."""
    return profile_name if kind == "password" else f"{profile_name}:{kind}"  # a kind, not a secret


class Secrets:
    """A profile's secrets by kind ("password", "refresh_token", "token_cache", "client_secret", …).

    `get("password")` follows the password chain ($XOROMAIL_PASSWORD, password_command, keyring); other kinds
    live in the keyring only. Long values are split into chunks. With `staged=True` writes are kept in memory
    until `commit()` (setup stores nothing until the profile is saved).
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
        return read_secret(self.profile.name, kind)

    def set(self, kind: str, value: str) -> None:
        if self._staged:
            self._pending[kind] = value
        else:
            write_secret(self.profile.name, kind, value)

    def delete(self, kind: str) -> None:
        if self._staged:
            self._pending[kind] = None
        else:
            delete_secret(self.profile.name, kind)

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


def write_secret(profile_name: str, kind: str, value: str) -> None:
    import keyring

    ensure_keyring_usable()
    name = entry_name(profile_name, kind)
    delete_secret(profile_name, kind)
    chunks = [value[i:i + CHUNK] for i in range(0, len(value), CHUNK)] or [""]
    try:
        if len(chunks) == 1 and not value.startswith(_CHUNKED):
            keyring.set_password(KEYRING_SERVICE, name, value)
            return
        for number, chunk in enumerate(chunks):
            keyring.set_password(KEYRING_SERVICE, f"{name}#{number}", chunk)
        keyring.set_password(KEYRING_SERVICE, name, f"{_CHUNKED}{len(chunks)}")
    except Exception as exc:  # noqa: BLE001  # any backend failure; its text may quote the secret
        raise _keyring_failure(f"store the {kind.replace('_', ' ')} in", exc) from None


def read_secret(profile_name: str, kind: str) -> str | None:
    import keyring
    from keyring.errors import NoKeyringError

    name = entry_name(profile_name, kind)
    try:
        value = keyring.get_password(KEYRING_SERVICE, name)
        if value is None or not value.startswith(_CHUNKED):
            return value
        count = int(value.removeprefix(_CHUNKED))
        parts = [keyring.get_password(KEYRING_SERVICE, f"{name}#{number}") for number in range(count)]
    except NoKeyringError:
        raise keyring_unreachable() from None
    except Exception as exc:  # noqa: BLE001  # any backend failure; its text may quote the secret
        raise _keyring_failure("read", exc) from None
    if any(part is None for part in parts):
        return None
    return "".join(part for part in parts if part is not None)


def delete_secret(profile_name: str, kind: str) -> None:
    """Remove one secret (and its chunks); nothing stored is not an error."""
    import contextlib

    import keyring

    name = entry_name(profile_name, kind)
    with contextlib.suppress(Exception):  # nothing stored, or a broken backend: either way nothing to remove
        value = keyring.get_password(KEYRING_SERVICE, name)
        if value is not None and value.startswith(_CHUNKED):
            for number in range(int(value.removeprefix(_CHUNKED))):
                with contextlib.suppress(Exception):
                    keyring.delete_password(KEYRING_SERVICE, f"{name}#{number}")
        keyring.delete_password(KEYRING_SERVICE, name)


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
