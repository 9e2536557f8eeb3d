"""Copy the built-in templates out, so users can change wording without touching the package."""

from __future__ import annotations

from pathlib import Path

from xoromail_cli.compose.events import EVENTS
from xoromail_cli.compose.render import BUILTIN_TEMPLATES, TEMPLATE_FILES
from xoromail_cli.errors import CannotWriteError
from xoromail_cli.paths import atomic_write


def export_templates(target: Path, *, force: bool = False) -> tuple[list[Path], list[Path]]:
    """Write every event's templates under `target`; existing files are kept unless `force`."""
    written: list[Path] = []
    kept: list[Path] = []
    for event in EVENTS:
        for name in TEMPLATE_FILES:
            destination = target / event / name
            if destination.exists() and not force:
                kept.append(destination)
                continue
            try:
                atomic_write(destination, (BUILTIN_TEMPLATES / event / name).read_bytes(), mode=0o644)
            except OSError as exc:
                raise CannotWriteError(f"cannot write {destination}: {exc.strerror}",
                                   "choose a folder you can write to") from None
            written.append(destination)
    return written, kept
