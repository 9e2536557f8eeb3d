"""Everything `send` needs around the Sender: where the ledger and lock live, rates, and the job source."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xoromail_cli import paths
from xoromail_cli.batch import InvalidRow, SendJob, check_batch, jobs_from_file
from xoromail_cli.config import Profile
from xoromail_cli.events import Event
from xoromail_cli.pacing import parse_rate
from xoromail_cli.presets import PRESETS, preset_for_host


def ledger_path(profile: Profile) -> Path:
    return Path(profile.ledger).expanduser() if profile.ledger else paths.state_dir() / "ledger.sqlite3"


def lock_path(profile: Profile) -> Path:
    return ledger_path(profile).parent / "locks" / f"{profile.name}.lock"


def templates_dir(profile: Profile | None) -> Path:
    if profile is not None and profile.templates_dir:
        return Path(profile.templates_dir).expanduser()
    return paths.default_templates_dir()


def messages_per_second(profile: Profile, option: str | None) -> float | None:
    """--rate, else the profile's `rate`, else the provider's published limit, else unlimited."""
    if option:
        return parse_rate(option)
    if profile.rate:
        return parse_rate(profile.rate)
    preset = PRESETS.get(profile.preset or "") or preset_for_host(profile.host)
    if preset is not None and preset.per_minute:
        return preset.per_minute / 60.0
    return None


@dataclass
class BatchSource:
    """A batch file checked once up front, then streamed again for sending."""

    event: Event
    path: Path
    defaults: dict[str, Any]
    skip_invalid: bool
    header_variables: frozenset[str] = frozenset()
    reply_to: str | None = None
    total: int = 0
    recipients: int = 0
    invalid_count: int = 0

    def check(self) -> list[InvalidRow]:
        """First pass: stop on a bad row unless --skip-invalid; returns the bad rows to report."""
        found = check_batch(self.event, self.path, self.defaults, self.header_variables, self.reply_to)
        self.total, self.recipients, self.invalid_count = found.valid, found.recipients, found.invalid_count
        if found.invalid and not self.skip_invalid:
            first = found.invalid[0].error
            more = found.invalid_count - 1
            suffix = f" (and {more} more invalid row{'s' if more != 1 else ''})" if more else ""
            raise type(first)(f"row {found.invalid[0].row}: {first.message}{suffix}; nothing was sent",
                              (first.hint or "") + "; or pass --skip-invalid to send the valid rows",
                              exit_code=first.exit_code)
        return found.invalid

    def __iter__(self) -> Iterator[SendJob | InvalidRow]:
        return jobs_from_file(self.event, self.path, self.defaults, self.header_variables, self.reply_to)
