"""What a send run walks over: the batch's items in order (or shared between connections), the reports of
bad rows and of a stopped batch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from xoromail_cli.errors import ExitCode, XoromailError
from xoromail_cli.sending.batch import InvalidRow, SendJob
from xoromail_cli.sending.results import MessageResult

if TYPE_CHECKING:
    from xoromail_cli.compose.events import Event


Item = SendJob | MessageResult
"""A job to send, or a result already known (a bad row's report, given in its place)."""


class JobSource(Protocol):
    """Hands out a batch's items with their places; shared by the connections of a parallel run."""

    def take(self, wait: bool = True) -> tuple[int, Item] | None:
        """The next item, or None at the end; with `wait=False` also None when nothing is at hand right now."""

    def halted(self) -> bool:
        """The batch was stopped elsewhere (another connection met a quota): send nothing more, not even a row
        already taken ahead."""


class InOrder:
    """One connection's source: the batch as it streams."""

    def __init__(self, items: Iterable[Item]) -> None:
        self._items = enumerate(items)

    def take(self, wait: bool = True) -> tuple[int, Item] | None:
        return next(self._items, None)

    def halted(self) -> bool:
        return False


def batch_items(event: Event, jobs: Iterable[SendJob | InvalidRow], reported: Sequence[InvalidRow]) -> Iterator[Item]:
    """The jobs, with each bad row as its report (skipping those `reported` up front already)."""
    rows = {invalid.row for invalid in reported}
    for item in jobs:
        if not isinstance(item, InvalidRow):
            yield item
        elif item.row not in rows:
            yield invalid_result(event, item)


def invalid_result(event: Event, invalid: InvalidRow) -> MessageResult:
    return MessageResult(event=event.name, row=invalid.row, recipients=(), status="invalid",
                         reply=invalid.error.message, hint=invalid.error.hint, exit_code=int(invalid.error.exit_code))


def stop_error(result: MessageResult) -> XoromailError:
    """Why the batch stopped at `result` (a quota, the sender refused)."""
    return XoromailError(f"stopped the batch: {result.reply}; the remaining messages were not sent",
                         f"{result.hint}; re-running later sends only what is still missing",
                         exit_code=ExitCode(result.exit_code or ExitCode.TEMPFAIL))


def unexpected(error: BaseException) -> XoromailError:
    """Why a batch stopped on an error nobody foresaw (a bug): its type and where, never its text, which could
    quote a secret or a customer's data."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return XoromailError(f"an unexpected error stopped the batch: {type(error).__name__}{where}; the remaining "
                         "messages were not sent",
                         "re-running sends only what is still missing; please report this as a bug, with "
                         "`xoromail --version` and the line above", exit_code=ExitCode.SOFTWARE)
