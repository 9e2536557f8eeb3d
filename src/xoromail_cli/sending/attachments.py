"""Where a batch row's `attach` paths may point: inside the batch file's folder (or `--attach-dir`), nowhere else.

A batch comes out of the ERP, so its paths are data, not the user's own choice: `/proc/self/environ`, `../..`
or a symlink out of the folder would mail whatever the process can read. Paths the user types with `--attach`
are taken as they are; `Attachment.from_path` then checks every file (regular, not too large, readable).
"""

from __future__ import annotations

from pathlib import Path

from xoromail_cli.addresses import check_text
from xoromail_cli.errors import DataError

_HINT = ("attachments in a batch must be files inside the batch file's folder (or the folder given with "
         "--attach-dir), named relative to it, e.g. invoices/INV-1001.pdf")


def confined(text: str, root: Path, *, absolute_ok: bool) -> Path:
    """The file `text` names, resolved (symlinks followed) and checked to lie inside `root`."""
    check_text("attach", text)
    given = Path(text.strip())
    if ".." in given.parts:
        raise DataError(f"attachment {text.strip()!r} climbs out of its folder with '..'", _HINT, field="attach")
    if given.is_absolute() and not absolute_ok:
        raise DataError(f"attachment {text.strip()!r} is an absolute path", _HINT, field="attach")
    base = root.resolve()
    try:
        target = (base / given).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise DataError(f"attachment {text.strip()!r} cannot be resolved (a symlink loop?)", _HINT,
                        field="attach") from None
    if not target.is_relative_to(base):
        raise DataError(f"attachment {text.strip()!r} is outside {base} (a symlink leads out of it)", _HINT,
                        field="attach")
    return target
