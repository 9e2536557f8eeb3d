"""Where xoromail keeps its files: explicit option, then environment, then the platform's dirs."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

APP_NAME = "xoromail"


def config_file(explicit: Path | None = None) -> Path:
    """The settings file: `--config`, else `$XOROMAIL_CONFIG`, else the user config dir."""
    if explicit is not None:
        return explicit.expanduser()
    from_env = os.environ.get("XOROMAIL_CONFIG")
    if from_env:
        return Path(from_env).expanduser()
    return config_dir() / "config.toml"


def config_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def state_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def default_templates_dir() -> Path:
    return config_dir() / "templates"


def private_dir(folder: Path) -> Path:
    """Create `folder` and any missing parents readable by the owner only (ledgers hold addresses)."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)
    return folder


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never a mix."""
    private_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def sync_folder(folder: Path) -> None:
    """fsync `folder` itself, so a file just renamed into it is still there after a crash (OSError if it cannot)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


_PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def profile_name(explicit: str | None = None) -> str:
    """The profile in use; its name also names files, so it is kept to letters, digits, `_`, `.` and `-`."""
    name = explicit or os.environ.get("XOROMAIL_PROFILE") or "default"
    if not _PROFILE_NAME.fullmatch(name):
        from xoromail_cli.errors import UsageError

        raise UsageError(f"profile name {name!r} is not allowed",
                         "use letters, digits, '_', '.' and '-' (starting with a letter or digit)")
    return name
