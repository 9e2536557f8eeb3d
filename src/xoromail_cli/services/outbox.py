"""Write messages as .eml files instead of sending them: for review, and for testing an ERP.

Files are 0600 in a 0700 folder, named by event, row and Message-ID, and keep the Bcc header (nothing is
delivered from them, and a reviewer must see every recipient)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import CannotWriteError, ExitCode, StageFailedError
from xoromail_cli.paths import atomic_write, private_dir
from xoromail_cli.services.base import Delivery, StageCallback

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class OutboxTransport:
    name = "outbox"
    accepted_as: Literal["sent", "written"] = "written"
    max_message_size: int | None = None
    subset_retries = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def open(self, on_stage: StageCallback | None = None) -> None:
        try:
            private_dir(self.folder)  # 0700: the files hold customers' addresses
        except OSError as exc:
            raise StageFailedError("outbox", f"cannot create outbox folder {self.folder}: {exc.strerror}",
                                   "choose a folder you can write to", ExitCode.CANTCREAT) from None
        if not self.folder.is_dir():
            raise StageFailedError("outbox", f"the outbox {self.folder} is a file, not a folder",
                                   "choose a folder (it is created when missing)", ExitCode.CANTCREAT)
        tightened = _tighten(self.folder)
        if on_stage:
            on_stage("outbox", f"writing .eml files to {self.folder}"
                     + (" (its mode was tightened to 0700)" if tightened else ""))

    def send(self, envelope: Envelope, before_data: Callable[[], None] | None = None) -> Delivery:
        stem = _UNSAFE.sub("_", "-".join(filter(None, (envelope.label, envelope.message_id.strip("<>")))))
        path = self.folder / f"{stem or 'message'}.eml"
        if before_data is not None:  # the ledger marks it in flight first, as for every transport
            before_data()
        try:
            atomic_write(path, envelope.data_with_bcc(), mode=0o600)  # with Bcc: the reviewer sees every recipient
        except OSError as exc:
            raise CannotWriteError(f"cannot write {path}: {exc.strerror}",
                               "check the outbox folder and free space") from None
        return Delivery(status="sent", reply=f"written to {path}")

    def close(self) -> None:
        return None


def _tighten(folder: Path) -> bool:
    """An existing folder of ours that others may read or enter becomes 0700, as a new one is: the messages
    hold customers' addresses and invoices. A folder someone else owns is left as it is (its files are 0600)."""
    import os
    import stat

    status = folder.stat()
    if status.st_uid != os.geteuid() or not stat.S_IMODE(status.st_mode) & 0o077:
        return False
    try:
        folder.chmod(0o700)
    except OSError:
        return False
    return True
