"""The OS keyring through `keyring`: which backend holds the secrets, and whether we may use it.

keyring picks the backend with the highest priority. With `keyrings.alt` installed and no Secret Service, that
is a file in the home folder holding secrets in base64, chosen silently. So a backend keyring chose only by
priority is used only when it encrypts; the plain-text and unencrypted file backends are used when the user
chose them by name (`$PYTHON_KEYRING_BACKEND`, or `default-keyring` in keyring's `keyringrc.cfg`). The null and
fail backends hold nothing, chosen or not. Each entry is `(service "xoromail", PROFILE or PROFILE:KIND)`; long
values are split over numbered entries.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from xoromail_cli.errors import KeyringUnavailableError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

KEYRING_SERVICE = "xoromail"
BACKEND_ENV = "PYTHON_KEYRING_BACKEND"
CHUNK = 2000
"""Characters per keyring entry: Windows Credential Manager keeps at most 2,560 bytes a secret, and OAuth
token caches are larger, so a long secret is split over numbered entries."""
CHUNKED = "xoromail-chunks:"
NAMES = {
    "keyring.backends.SecretService.Keyring": "Secret Service",
    "keyring.backends.libsecret.Keyring": "Secret Service (libsecret)",
    "keyring.backends.kwallet.DBusKeyring": "KWallet",
    "keyring.backends.kwallet.DBusKeyringKWallet4": "KWallet",
    "keyring.backends.macOS.Keyring": "macOS Keychain",
    "keyring.backends.Windows.WinVaultKeyring": "Windows Credential Manager",
}
STORES = (
    "use a Secret Service (gnome-keyring or KeePassXC in your desktop session); on a server, the encrypted "
    "store: `xoromail secrets init-key ~/.config/xoromail/secrets.key` then XOROMAIL_SECRETS_KEY=that path for "
    "every run (or the systemd credential xoromail-secrets.key, see docs/credentials.md)"
)
ALTERNATIVES = (
    STORES + "; or give the password another way: setup --password-command CMD (password_command), or "
    "$XOROMAIL_PASSWORD at run time"
)
TOKEN_HINT = (
    STORES + "; then run setup again. A password command or $XOROMAIL_PASSWORD cannot hold tokens. Nothing was saved"
)
"""For a sign-in service (Google, Microsoft 365) with no store it may use: only a store can keep its tokens."""
CRON_HINT = (
    "give the password to this job another way: set `password_command` in the profile (setup "
    "--password-command CMD; a command that prints it, e.g. `cat ~/.config/xoromail/password` of a 0600 file), "
    "or put XOROMAIL_PASSWORD in the job's environment (e.g. from a 0600 file the crontab line sources), or use "
    "the encrypted store (XOROMAIL_SECRETS_KEY, see docs/credentials.md); "
    "`xoromail config show` run the same way shows where the password would come from"
)
NO_KEYRING_HINT = (
    ALTERNATIVES + "; keyrings.alt's plain file is used only when you choose it by name "
    f"({BACKEND_ENV}=keyrings.alt.file.PlaintextKeyring): it keeps secrets in base64, readable by anyone who can "
    "read your home folder"
)


def entry_name(profile_name: str, kind: str) -> str:
    """The keyring entry of one secret; the password keeps the profile's bare name (older releases)."""
    return profile_name if kind == "password" else f"{profile_name}:{kind}"  # a kind, not a secret


def explicitly_chosen() -> str | None:
    """How the user named the backend (`$PYTHON_KEYRING_BACKEND`, keyring's config file), or None."""
    if os.environ.get(BACKEND_ENV):
        return f"${BACKEND_ENV}"
    import configparser

    from keyring.util import platform_

    path = platform_.config_root() / "keyringrc.cfg"
    config = configparser.RawConfigParser()
    try:
        config.read(path, encoding="utf-8")
    except (OSError, configparser.Error):
        return None
    if config.has_option("backend", "default-keyring"):
        return str(path)
    return None


def writing_backend(backend: KeyringBackend) -> KeyringBackend | None:
    """The backend a write lands in: the chain's first, or the backend itself; None when there is none."""
    chainer = sys.modules.get("keyring.backends.chainer")  # not loaded: `backend` is no chain (no import for it)
    if chainer is not None and isinstance(backend, chainer.ChainerBackend):
        chain = list(backend.backends)
        return chain[0] if chain else None
    return backend


NULL_BACKEND = "keyring.backends.null.Keyring"


def _null_named(target: KeyringBackend | None) -> bool:
    """keyring's null backend, which it never picks by itself (its priority is below zero): so the user named it."""
    from keyring.backends import null

    return isinstance(target, null.Keyring)


def holds_nothing(backend: KeyringBackend | None) -> bool:
    from keyring.backends import fail, null

    return backend is None or isinstance(backend, fail.Keyring | null.Keyring)


def encrypts(backend: KeyringBackend) -> bool:
    """False for the backends that keep secrets readable: plain-text and unencrypted files, null, fail."""
    name = type(backend).__name__.lower()
    return not holds_nothing(backend) and "plaintext" not in name and "unencrypted" not in name


def describe(backend: KeyringBackend) -> str:
    """A person's name for the backend: "Secret Service", "plain file /home/…/keyring_pass.cfg", …"""
    qualified = class_path(backend)
    if qualified in NAMES:
        return NAMES[qualified]
    path = getattr(backend, "file_path", None)
    if isinstance(path, str):
        return f"{'encrypted' if encrypts(backend) else 'plain'} file {path}"
    return f"keyring backend {qualified}"


class KeyringStore:
    """Secrets in the keyring backend the policy allows; raise KeyringUnavailableError where it refuses."""

    def __init__(self, backend: KeyringBackend, chosen_by: str | None) -> None:
        self.backend = backend
        self.chosen_by = chosen_by
        self.target = writing_backend(backend)

    @property
    def label(self) -> str:
        return describe(self.target) if self.target is not None else "no keyring backend"

    @property
    def encrypts(self) -> bool:
        return self.target is not None and encrypts(self.target)

    def check(self, *, writing: bool = True) -> None:
        """Raise KeyringUnavailableError when this backend cannot or may not hold the secrets."""
        if holds_nothing(self.target):
            if self.chosen_by and _null_named(self.target):
                raise KeyringUnavailableError(  # not a missing D-Bus: the backend named keeps nothing by design
                    f"no usable OS keyring backend: the one chosen by {self.chosen_by} ({NULL_BACKEND}) keeps no "
                    "secrets", f"name another backend there, or remove the choice; or {ALTERNATIVES}")
            if writing:
                raise KeyringUnavailableError("no usable OS keyring backend was found to store the secrets",
                                              NO_KEYRING_HINT)
            raise keyring_unreachable()
        assert self.target is not None
        if not self.chosen_by and not encrypts(self.target):
            raise KeyringUnavailableError(
                f"the keyring backend found here is the {describe(self.target)}, which keeps secrets unencrypted "
                "(base64); xoromail uses such a backend only when you choose it by name", NO_KEYRING_HINT)

    def read(self, profile: str, kind: str) -> str | None:
        self.check(writing=False)
        name = entry_name(profile, kind)
        try:
            value = self.backend.get_password(KEYRING_SERVICE, name)
            if value is None or not value.startswith(CHUNKED):
                return value
            count = int(value.removeprefix(CHUNKED))
            parts = [self.backend.get_password(KEYRING_SERVICE, f"{name}#{number}") for number in range(count)]
        except Exception as exc:  # noqa: BLE001  # any backend failure; its text may quote the secret
            raise failure("read", exc) from None
        if any(part is None for part in parts):
            return None
        return "".join(part for part in parts if part is not None)

    def kinds(self, profile: str, candidates: tuple[str, ...]) -> list[str]:
        """keyring cannot list entries: which of `candidates` (and the password) are stored."""
        return [kind for kind in dict.fromkeys(("password", *candidates)) if self.read(profile, kind) is not None]

    def write(self, profile: str, kind: str, value: str) -> None:
        self.check()
        name = entry_name(profile, kind)
        self.delete(profile, kind)
        chunks = [value[i:i + CHUNK] for i in range(0, len(value), CHUNK)] or [""]
        try:
            if len(chunks) == 1 and not value.startswith(CHUNKED):
                self.backend.set_password(KEYRING_SERVICE, name, value)
                return
            for number, chunk in enumerate(chunks):
                self.backend.set_password(KEYRING_SERVICE, f"{name}#{number}", chunk)
            self.backend.set_password(KEYRING_SERVICE, name, f"{CHUNKED}{len(chunks)}")
        except Exception as exc:  # noqa: BLE001  # any backend failure; its text may quote the secret
            raise failure(f"store the {kind.replace('_', ' ')} in", exc) from None

    def delete(self, profile: str, kind: str) -> bool:
        """Remove one secret and its chunks; False when nothing was stored (or the backend failed)."""
        import contextlib

        name = entry_name(profile, kind)
        try:
            value = self.backend.get_password(KEYRING_SERVICE, name)
        except Exception:  # noqa: BLE001  # a broken backend: nothing we can remove
            return False
        if value is None:
            return False
        if value.startswith(CHUNKED):
            for number in range(int(value.removeprefix(CHUNKED))):
                with contextlib.suppress(Exception):
                    self.backend.delete_password(KEYRING_SERVICE, f"{name}#{number}")
        try:
            self.backend.delete_password(KEYRING_SERVICE, name)
        except Exception:  # noqa: BLE001  # gone already, or a broken backend: either way not removed by us
            return False
        return True


_last: list[KeyringStore] = []
"""The store of the last call: a chain's writing backend is found once (each look asks D-Bus again)."""


def current_keyring() -> KeyringStore:
    """keyring's backend (its own choice, or the user's) behind the policy."""
    import keyring

    named = os.environ.get(BACKEND_ENV)
    if named is not None and not named.strip():
        raise KeyringUnavailableError(
            f"${BACKEND_ENV} is set but empty, so keyring cannot load any backend",
            f"unset it (`unset {BACKEND_ENV}`, or remove it from the job's environment) to let keyring choose, or "
            f"name a backend, e.g. {BACKEND_ENV}=keyring.backends.SecretService.Keyring")
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # noqa: BLE001  # any backend failure; its text may quote the secret
        if named:  # the name is the user's own setting, not a secret: say which one failed
            raise KeyringUnavailableError(
                f"the keyring backend named by ${BACKEND_ENV} ({named!r}) could not be loaded "
                f"({type(exc).__name__})", "write its full name (module.Class, e.g. "
                "keyring.backends.SecretService.Keyring) or unset it; " + NO_KEYRING_HINT) from None
        raise failure("load", exc) from None
    chosen_by = explicitly_chosen()
    if _last and _last[0].backend is backend and _last[0].chosen_by == chosen_by:
        return _last[0]
    _last[:] = [KeyringStore(backend, chosen_by)]
    return _last[0]


def class_path(backend: KeyringBackend) -> str:
    kind = type(backend)
    return f"{kind.__module__}.{kind.__name__}"


RECORDABLE = ("keyring.backends.", "keyrings.")
"""Where a recorded backend may live: keyring's own backends and the `keyrings.*` namespace third-party backends
use. The settings file names a module to import, so nothing else is ever imported from it (another backend still
works, found by keyring's scan as before)."""


def recordable(name: str) -> bool:
    return name.startswith(RECORDABLE)


def backend_to_record(store: object) -> str | None:
    """What setup records in the profile (`keyring_backend`) after storing secrets in `store`: the class path of
    the keyring backend that holds them when it encrypts; None for the encrypted file, or a backend the policy
    admits only by name (a plain file): that one is never to be loaded without the user naming it."""
    if not isinstance(store, KeyringStore) or store.target is None or not store.encrypts:
        return None
    name = class_path(store.target)
    return name if recordable(name) else None


_recorded: dict[str, KeyringStore] = {}


def recorded_keyring(name: str) -> KeyringStore | None:
    """The backend setup recorded, loaded by its class path without keyring's scan of every installed backend
    (`keyring.backend.get_all_keyring`). None, so that keyring's full resolution and the policy decide with their
    own messages, when the user chose a backend ($PYTHON_KEYRING_BACKEND, even empty, or keyringrc.cfg: theirs
    wins), or when the recorded one cannot be loaded, is not viable here (no D-Bus session under cron) or does
    not encrypt."""
    if BACKEND_ENV in os.environ or explicitly_chosen() is not None:
        return None
    if name not in _recorded:
        backend = _load_viable(name)
        if backend is None:
            return None
        store = KeyringStore(backend, None)
        if not store.encrypts:
            return None
        _recorded[name] = store
    return _recorded[name]


def _load_viable(name: str) -> KeyringBackend | None:
    """An instance of the backend class `name` if it loads and is viable here (priority above 0), else None."""
    import importlib

    from keyring.backend import KeyringBackend

    if not recordable(name):  # a hand-edited settings file never makes xoromail import an arbitrary module
        return None
    module_name, _, class_name = name.rpartition(".")
    try:
        kind = getattr(importlib.import_module(module_name), class_name)
        if not (isinstance(kind, type) and issubclass(kind, KeyringBackend)) or not kind.priority > 0:
            return None
        return kind()
    except Exception:  # noqa: BLE001  # not installed, not viable (its priority raises), or broken: decide as before
        return None


def keyring_unreachable() -> KeyringUnavailableError:
    """The keyring cannot be reached in this environment: say why (cron has no D-Bus session) and what to do."""
    reason = "no keyring backend is usable here"
    if sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        reason = ("there is no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set), as under cron, systemd "
                  "services and SSH logins without a desktop session")
    return KeyringUnavailableError(f"the OS keyring cannot be reached in this environment ({reason}), so a "
                                   "password stored by setup cannot be read", CRON_HINT)


def failure(action: str, exc: BaseException) -> KeyringUnavailableError:
    """Name the failure by its type only: backends put stored lines, even secrets, into their messages."""
    return KeyringUnavailableError(f"could not {action} the OS keyring ({type(exc).__name__})",
                                   "check or repair the keyring backend; " + NO_KEYRING_HINT)
