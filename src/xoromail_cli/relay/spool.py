"""The relay's spool: one file per message, fsynced and renamed into place before the relay answers 250.

A message file holds one JSON line (the SMTP envelope: sender, To/Cc/Bcc apart, Message-ID, when and from
whom it came) and then the message's bytes exactly as submitted (or as rewritten at DATA). The file is
written under `tmp/`, fsynced, renamed into `queue/` and the folder fsynced, so after a crash, `kill -9` or
power loss a message is either wholly in `queue/` or was never acknowledged. Delivery state (attempts, next
try, last reply) lives beside it in a small `.state` file replaced atomically; a message refused for good
moves to `failed/` (kept for `queue retry`); a delivered one is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import DataError, NoInputError, TemporaryError, UsageError
from xoromail_cli.paths import private_dir, sync_folder

Where = Literal["queue", "failed"]
_ID = re.compile(r"[0-9a-f]{8,20}-[0-9a-f]{6}")
_MESSAGE, _STATE = ".msg", ".state"
_PLACES: tuple[Where, ...] = ("queue", "failed")


@dataclass(frozen=True, kw_only=True)
class Spooled:
    """One message as the relay accepted it."""

    id: str
    envelope: Envelope
    received_at: float
    peer: str = ""
    report: bool = False
    """A failure report the relay wrote itself: never reported again when it fails."""


@dataclass(kw_only=True)
class QueueState:
    """Where a message stands: how often it was tried, when it is due, what the service said last."""

    attempts: int = 0
    next_attempt: float = 0.0
    last_reply: str = ""
    in_doubt: bool = False
    held: str = ""
    """Why the message is held for a person (`queue hold`, or in doubt under --no-retry-in-doubt); empty when
    it is not. A held message is never delivered until `queue release`, across restarts."""

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> QueueState:
        """Read back what `set_state` wrote (fields unknown to this release are ignored)."""
        known = {name: values[name] for name in ("attempts", "next_attempt", "last_reply", "in_doubt", "held")
                 if name in values}
        return cls(**known)


@dataclass(frozen=True, kw_only=True)
class QueueEntry:
    """A line of `queue list`: the envelope (without the bytes) and its state."""

    id: str
    where: Where
    sender: str
    recipients: tuple[str, ...]
    message_id: str
    size: int
    received_at: float
    state: QueueState = field(default_factory=QueueState)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "where": self.where, "sender": self.sender, "recipients": list(self.recipients),
                "message_id": self.message_id, "size": self.size, "received_at": self.received_at,
                **asdict(self.state)}


def check_id(value: str) -> str:
    """Refuse anything but a spool id (it becomes a file name)."""
    if not _ID.fullmatch(value):
        raise UsageError(f"{value!r} is not a spool id", "copy the id from `xoromail queue list`")
    return value


def write_durably(target: Path, scratch: Path, chunks: Iterable[bytes | memoryview]) -> None:
    """Write `chunks` one after another (never joined) to `scratch`, fsync, rename onto `target`, fsync the
    folder: all or nothing."""
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(descriptor, view):]
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(scratch, target)
    sync_folder(target.parent)


def _read_message(path: Path) -> tuple[bytes, bytes]:
    """(the envelope line, the message), the message read into one buffer (not the file and then a copy)."""
    with path.open("rb") as handle:
        line = handle.readline()
    with path.open("rb", buffering=0) as raw:  # unbuffered: readall sizes one buffer from the file's size
        raw.seek(len(line))
        return line, raw.readall()


class Spool:
    """The folders `tmp/`, `queue/` and `failed/` under `root` (created owner-only)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, name: str) -> Path:
        return private_dir(self.root / name)

    def _path(self, where: Where, message_id: str, suffix: str) -> Path:
        return self.root / where / f"{check_id(message_id)}{suffix}"

    def put(self, envelope: Envelope, *, peer: str = "", report: bool = False,
            pieces: Iterable[bytes | memoryview] | None = None) -> str:
        """Keep a message durably and return its id; TemporaryError (a 4xx for the client) if it cannot. With
        `pieces` (`message.Taken`), they are the message's bytes, written in order (`envelope.data` unused)."""
        spool_id = f"{time.time_ns() // 1000:x}-{secrets.token_hex(3)}"
        head = {"sender": envelope.sender, "to": envelope.to, "cc": envelope.cc, "bcc": envelope.bcc,
                "message_id": envelope.message_id, "received_at": time.time(), "peer": peer, "report": report}
        line = json.dumps(head, ensure_ascii=True).encode("ascii") + b"\n"
        try:
            scratch = self._folder("tmp") / f"{spool_id}{_MESSAGE}"
            write_durably(self._folder("queue") / f"{spool_id}{_MESSAGE}", scratch,
                          (line, *(pieces if pieces is not None else (envelope.data,))))
        except OSError as exc:
            with contextlib.suppress(OSError):
                (self.root / "tmp" / f"{spool_id}{_MESSAGE}").unlink()
            raise TemporaryError(f"cannot keep the message in the spool {self.root}: {exc.strerror or exc}",
                                 "free disk space or fix the spool folder's permissions") from None
        return spool_id

    def load(self, spool_id: str, where: Where = "queue") -> Spooled:
        """The message and its envelope, read back from its file."""
        try:
            line, data = _read_message(self._path(where, spool_id, _MESSAGE))
        except FileNotFoundError:
            raise NoInputError(f"no message {spool_id} in the spool", "see `xoromail queue list`") from None
        try:
            head = json.loads(line)
            envelope = Envelope(sender=head["sender"], to=tuple(head["to"]), data=data, message_id=head["message_id"],
                                cc=tuple(head["cc"]),
                                bcc=tuple(head["bcc"]))
            return Spooled(id=spool_id, envelope=envelope, received_at=float(head["received_at"]),
                           peer=head.get("peer", ""),
                           report=bool(head.get("report")))
        except (ValueError, KeyError, TypeError):
            raise DataError(f"the spool file of {spool_id} is damaged (no envelope line)",
                            "it was not written by this relay; look at it in the spool's failed/ folder") from None

    def state(self, spool_id: str, where: Where = "queue") -> QueueState:
        try:
            values = json.loads(self._path(where, spool_id, _STATE).read_text(encoding="utf-8"))
            return QueueState.from_json(values)
        except (FileNotFoundError, ValueError, TypeError, AttributeError):
            return QueueState()

    def set_state(self, spool_id: str, state: QueueState, where: Where = "queue") -> None:
        text = json.dumps(asdict(state)).encode("utf-8")
        scratch = self._folder("tmp") / f"{spool_id}{_STATE}"
        write_durably(self._path(where, spool_id, _STATE), scratch, (text,))

    def ids(self, where: Where = "queue") -> list[str]:
        """Ids in arrival order (they begin with the time they were taken)."""
        folder = self.root / where
        if not folder.is_dir():
            return []
        names = (name[: -len(_MESSAGE)] for name in os.listdir(folder) if name.endswith(_MESSAGE))
        return sorted(name for name in names if _ID.fullmatch(name))

    def backlog(self) -> tuple[int, int]:
        """Queued messages that will be tried, and queued messages held for a person (never tried until
        `queue release`): the `queued=` and `held=` of the relay's log lines, counted as `queue status` does."""
        ids = self.ids()
        held = sum(1 for spool_id in ids if self.state(spool_id).held)
        return len(ids) - held, held

    def due(self, moment: float) -> tuple[list[str], float | None]:
        """Queued ids due at `moment` (never a held one), and when the next one not yet due will be."""
        ready, later = [], None
        for spool_id in self.ids():
            state = self.state(spool_id)
            if state.held:
                continue
            next_attempt = state.next_attempt
            if next_attempt <= moment:
                ready.append(spool_id)
            else:
                later = next_attempt if later is None else min(later, next_attempt)
        return ready, later

    def remove(self, spool_id: str, where: Where = "queue") -> None:
        """Forget a message (delivered, or dropped): the message file first, so a crash never leaves it half."""
        for suffix in (_MESSAGE, _STATE):
            with contextlib.suppress(FileNotFoundError):
                self._path(where, spool_id, suffix).unlink()

    def fail(self, spool_id: str, state: QueueState) -> None:
        """Move a message refused for good to `failed/`, with its last reply."""
        self._folder("failed")
        self.set_state(spool_id, state)
        for suffix in (_STATE, _MESSAGE):
            os.replace(self._path("queue", spool_id, suffix), self._path("failed", spool_id, suffix))
        sync_folder(self.root / "failed")

    def retry(self, spool_id: str) -> Where:
        """Make a message due now: a queued one at once, a failed one back into the queue. Says where it was."""
        for where in _PLACES:
            if self._path(where, spool_id, _MESSAGE).exists():
                state = self.state(spool_id, where)
                self.set_state(spool_id, replace(state, next_attempt=0.0), where)
                if where == "failed":
                    for suffix in (_STATE, _MESSAGE):
                        os.replace(self._path("failed", spool_id, suffix), self._path("queue", spool_id, suffix))
                    sync_folder(self.root / "queue")
                return where
        raise NoInputError(f"no message {spool_id} in the spool", "see `xoromail queue list`")

    def hold(self, spool_id: str, reason: str = "held by a person") -> bool:
        """Keep a queued message from delivery until `release`; False when it was held already."""
        state = self.state(self._queued(spool_id))
        if state.held:
            return False
        self.set_state(spool_id, replace(state, held=reason))
        return True

    def release(self, spool_id: str) -> bool:
        """Let a held message go (due now); False when it was not held."""
        state = self.state(self._queued(spool_id))
        if not state.held:
            return False
        self.set_state(spool_id, replace(state, held="", next_attempt=0.0))
        return True

    def _queued(self, spool_id: str) -> str:
        if self._path("queue", spool_id, _MESSAGE).exists():
            return spool_id
        if self._path("failed", spool_id, _MESSAGE).exists():
            raise UsageError(f"message {spool_id} has failed for good: it is not queued",
                             f"`xoromail queue retry {spool_id}` puts it back into the queue")
        raise NoInputError(f"no message {spool_id} in the queue", "see `xoromail queue list`")

    def drop(self, spool_id: str) -> Where:
        for where in _PLACES:
            if self._path(where, spool_id, _MESSAGE).exists():
                self.remove(spool_id, where)
                return where
        raise NoInputError(f"no message {spool_id} in the spool", "see `xoromail queue list`")

    def entries(self) -> Iterator[QueueEntry]:
        """Every message kept, queued first; only each file's envelope line is read."""
        for where in _PLACES:
            for spool_id in self.ids(where):
                path = self._path(where, spool_id, _MESSAGE)
                try:
                    with path.open("rb") as handle:
                        head = json.loads(handle.readline())
                        size = os.fstat(handle.fileno()).st_size - handle.tell()
                except (FileNotFoundError, ValueError):
                    continue  # delivered or dropped while listing
                recipients = (*head["to"], *head["cc"], *head["bcc"])
                yield QueueEntry(id=spool_id, where=where, sender=head["sender"], recipients=recipients,
                                 message_id=head["message_id"], size=size,
                                 received_at=float(head["received_at"]), state=self.state(spool_id, where))
