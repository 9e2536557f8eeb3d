"""One sender per mailbox (From address) at a time: overlapping cron runs wait or step aside (exit 75)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import IO

from xoromail_cli.errors import ConfigError, TemporaryError
from xoromail_cli.paths import private_dir


class ProfileLock:
    def __init__(self, path: Path, wait: float = 0.0, poll: float = 0.1) -> None:
        self.path = path
        self.wait = wait
        self.poll = poll
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        try:
            private_dir(self.path.parent)
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot create the lock file {self.path}: {exc.strerror}",
                              "check the state folder (or the profile's `ledger` setting)") from None
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._holder()
                    handle.close()
                    raise TemporaryError(
                        f"another xoromail run ({holder}) is sending for this account (lock {self.path})",
                        "it will finish on its own; re-run later, or pass --wait SECONDS to queue behind it",
                    ) from None
                time.sleep(self.poll)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def _holder(self) -> str:
        try:
            pid = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            pid = ""
        return f"process {pid}" if pid else "an unknown process"

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                handle.truncate(0)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def __enter__(self) -> ProfileLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
