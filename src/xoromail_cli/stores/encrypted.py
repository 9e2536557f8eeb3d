"""The encrypted secrets file for hosts without a desktop: AES-256-GCM (`cryptography`), one key, one file.

The key comes from a systemd credential (`LoadCredentialEncrypted=xoromail-secrets.key` puts it in
`$CREDENTIALS_DIRECTORY`) or from an owner-only key file named by `$XOROMAIL_SECRETS_KEY`; it is 32 random bytes,
base64-encoded on one line (`xoromail secrets init-key PATH` writes one). The file holds every secret of every
profile as one sealed JSON document: each write decrypts, changes one entry and seals it again under a fresh
nonce, under a lock (a relay and a cron job may both rotate tokens), into a temporary file that is synced and
renamed over the old one (0600). Nothing in it, names included, is readable without the key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from xoromail_cli.errors import CannotWriteError, SecretsFileError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_ENV = "XOROMAIL_SECRETS_KEY"
FILE_ENV = "XOROMAIL_SECRETS_FILE"
CREDENTIAL_NAME = "xoromail-secrets.key"
MAGIC = b"XOROMAIL-SECRETS\x00\x01"
"""The file's first bytes: what it is and the format's version (also authenticated with the contents)."""
NONCE_BYTES = 12
KEY_BYTES = 32
INIT_KEY_HINT = ("create one with `xoromail secrets init-key PATH` (32 random bytes, base64, mode 0600) and set "
                 f"{KEY_ENV}=PATH, or give it to the service as the systemd credential {CREDENTIAL_NAME}")


@dataclass(frozen=True)
class KeySource:
    """Where the key is: the file, and how it was found ("systemd credential" or "key file")."""

    path: Path
    origin: str

    def describe(self) -> str:
        if self.origin == "systemd credential":
            return f"systemd credential {CREDENTIAL_NAME}"
        return f"key file {self.path}"


def key_source() -> KeySource | None:
    """`$XOROMAIL_SECRETS_KEY` (chosen by name), else the systemd credential; None when neither is given."""
    named = os.environ.get(KEY_ENV)
    if named:
        return KeySource(Path(named).expanduser(), "key file")
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if directory and (Path(directory) / CREDENTIAL_NAME).is_file():
        return KeySource(Path(directory) / CREDENTIAL_NAME, "systemd credential")
    return None


def store_path() -> Path:
    """`$XOROMAIL_SECRETS_FILE`, else `secrets.enc` in the state folder (`StateDirectory=` under systemd)."""
    named = os.environ.get(FILE_ENV)
    if named:
        return Path(named).expanduser()
    from xoromail_cli.paths import state_dir

    return state_dir() / "secrets.enc"


def read_key(source: KeySource) -> bytes:
    """The 32-byte key; a key readable by anyone but its owner is refused, as ssh refuses such a private key."""
    try:
        fd = os.open(source.path, os.O_RDONLY)  # a symlink is followed: owner and mode are checked on the file
    except FileNotFoundError:
        raise SecretsFileError(f"the secrets key {source.path} does not exist ({_named_by(source)})",
                          INIT_KEY_HINT) from None
    except OSError as exc:
        raise SecretsFileError(f"cannot read the secrets key {source.path}: {exc.strerror}",
                          "it must be a regular file readable by the user xoromail runs as") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SecretsFileError(f"the secrets key {source.path} is not a regular file", INIT_KEY_HINT)
        _refuse_shared(source, info)
        raw = handle.read(4096)
    return _decode_key(source, raw)


def _named_by(source: KeySource) -> str:
    return f"named by ${KEY_ENV}" if source.origin == "key file" else "in $CREDENTIALS_DIRECTORY"


def _refuse_shared(source: KeySource, info: os.stat_result) -> None:
    """Owner-only: mode 0600 or 0400, owned by us (systemd hands a credential over 0400 to the service's user)."""
    path = source.path
    if source.origin == "key file" and info.st_uid != os.geteuid():
        raise SecretsFileError(f"the secrets key {path} belongs to user id {info.st_uid}, not to the user xoromail "
                          f"runs as ({os.geteuid()})", f"`chown` it to that user and `chmod 600 {path}`")
    if info.st_mode & 0o077:
        raise SecretsFileError(f"the secrets key {path} can be read by others (mode {stat.S_IMODE(info.st_mode):04o})",
                          f"make it owner-only: `chmod 600 {path}`; then consider the key seen and make a new one")


def _decode_key(source: KeySource, raw: bytes) -> bytes:
    text = raw.strip()
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        with contextlib.suppress(binascii.Error, ValueError):
            key = decode(text)
            if len(key) == KEY_BYTES:
                return key
    if len(raw) == KEY_BYTES:  # 32 raw bytes, as `head -c 32 /dev/urandom` writes them
        return raw
    raise SecretsFileError(f"the secrets key {source.path} is not a key xoromail can use (it must be 32 random "
                      "bytes, base64-encoded on one line, or the 32 bytes themselves)", INIT_KEY_HINT)


def new_key_text() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii") + "\n"


def init_key(path: Path) -> None:
    """Create a new key file, owner-only; an existing file is never overwritten (its secrets would be lost)."""
    from xoromail_cli.paths import private_dir

    if path.parent != path and not path.parent.exists():
        private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise CannotWriteError(f"{path} already exists; it was left as it is",
                               "a secrets file sealed with that key cannot be read without it: choose another "
                               "path, or remove the old key yourself once nothing uses it") from None
    except OSError as exc:
        raise CannotWriteError(f"cannot create {path}: {exc.strerror}", "choose a folder you can write") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(new_key_text())
        handle.flush()
        os.fsync(handle.fileno())


class EncryptedFileStore:
    """Secrets by profile and kind in one AES-256-GCM sealed file."""

    def __init__(self, source: KeySource, path: Path | None = None) -> None:
        self.source = source
        self.path = path or store_path()
        self._key: bytes | None = None

    @property
    def label(self) -> str:
        return f"encrypted file {self.path} (key: {self.source.describe()})"

    @property
    def encrypts(self) -> bool:
        return True

    def check(self, *, writing: bool = True) -> None:
        """The key can be read, and the file (if any) opens with it: raises SecretsFileError otherwise."""
        self._load()

    def read(self, profile: str, kind: str) -> str | None:
        return self._load().get(profile, {}).get(kind)

    def kinds(self, profile: str, candidates: tuple[str, ...] = ()) -> list[str]:
        """Every kind stored for the profile (the file lists them all; `candidates` are not needed)."""
        return sorted(self._load().get(profile, {}))

    def write(self, profile: str, kind: str, value: str) -> None:
        with self._locked():
            data = self._load()
            data.setdefault(profile, {})[kind] = value
            self._save(data)

    def delete(self, profile: str, kind: str) -> bool:
        """Remove one secret; False when there was none."""
        with self._locked():
            data = self._load()
            entries = data.get(profile, {})
            if kind not in entries:
                return False
            del entries[kind]
            if not entries:
                del data[profile]
            self._save(data)
            return True

    def _cipher(self) -> AESGCM:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if self._key is None:
            self._key = read_key(self.source)
        return AESGCM(self._key)

    def _load(self) -> dict[str, dict[str, str]]:
        from cryptography.exceptions import InvalidTag

        cipher = self._cipher()
        try:
            sealed = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecretsFileError(f"cannot read the secrets file {self.path}: {exc.strerror}",
                              "it must be readable by the user xoromail runs as") from None
        if not sealed.startswith(MAGIC) or len(sealed) < len(MAGIC) + NONCE_BYTES + 16:
            raise SecretsFileError(f"{self.path} is not a xoromail secrets file (or it was cut short)",
                              f"move it away, or point ${FILE_ENV} at the right file")
        nonce = sealed[len(MAGIC):len(MAGIC) + NONCE_BYTES]
        try:
            plain = cipher.decrypt(nonce, sealed[len(MAGIC) + NONCE_BYTES:], MAGIC)
        except InvalidTag:
            raise SecretsFileError(f"the secrets file {self.path} cannot be opened with the {self.source.describe()} "
                              "(another key sealed it, or it was altered)",
                              "use the key it was written with; nothing was changed") from None
        data = json.loads(plain.decode("utf-8"))
        return {str(name): {str(k): str(v) for k, v in entries.items()} for name, entries in data["profiles"].items()}

    def _save(self, data: dict[str, dict[str, str]]) -> None:
        from xoromail_cli.paths import atomic_write, sync_folder

        cipher = self._cipher()
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps({"profiles": data}, sort_keys=True).encode("utf-8")
        try:
            atomic_write(self.path, MAGIC + nonce + cipher.encrypt(nonce, plain, MAGIC))
            with contextlib.suppress(OSError):  # the file is written; a folder that cannot be synced loses nothing
                sync_folder(self.path.parent)
        except OSError as exc:
            raise SecretsFileError(f"cannot write the secrets file {self.path}: {exc.strerror}",
                              f"its folder must be writable by the user xoromail runs as (or set ${FILE_ENV})"
                              ) from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time (read, change, seal, rename), across processes (flock; where there is none, as on
        Windows, writes are not serialised and the last one wins)."""
        from xoromail_cli.paths import private_dir

        try:
            import fcntl
        except ImportError:  # no flock on this platform
            private_dir(self.path.parent)
            yield
            return

        try:
            private_dir(self.path.parent)
            fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SecretsFileError(f"cannot lock the secrets file {self.path}: {exc.strerror}",
                              f"its folder must be writable by the user xoromail runs as (or set ${FILE_ENV})"
                              ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

