"""The sent-ledger: one SQLite file (WAL) recording every message, so nothing goes out twice.

A message is written as `in_flight` just before DATA and as `sent` the moment the server accepts it,
each in its own commit. After a crash, the only message whose fate is unknown is the one still marked
`in_flight`; the next run reports it. With `synchronous=NORMAL` in WAL mode a commit survives the
process being killed; after a power loss the last commits may roll back, which can cause a resend,
never a loss (see docs/cron.md).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from xoromail_cli.errors import ConfigError, TemporaryError
from xoromail_cli.pacing import now
from xoromail_cli.paths import private_dir

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    profile TEXT NOT NULL,
    event TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    recipients TEXT NOT NULL,
    recipient_count INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    status TEXT NOT NULL,
    reply TEXT,
    row INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    pending TEXT NOT NULL DEFAULT '',
    refused TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS messages_by_key ON messages (profile, idem_key, status);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (created_at);
CREATE INDEX IF NOT EXISTS messages_in_flight ON messages (profile, event) WHERE status = 'in_flight';
"""
CORRUPT_HINT = ("move the ledger file away (nothing was sent); a new one is created on the next run, "
                "but its history of sent messages is lost, so check `xoromail log` from a backup first")


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    profile: str
    event: str
    idempotency_key: str
    recipients: tuple[str, ...]
    message_id: str
    status: str
    reply: str | None
    row: int | None
    created_at: datetime
    updated_at: datetime
    pending: tuple[str, ...] = ()
    """Recipients a partial delivery still owes (refused with a 4xx); a re-run sends to them alone."""
    refused: tuple[str, ...] = ()
    """Every recipient a partial delivery did not reach: the owed ones and those refused for good."""

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "profile": self.profile, "event": self.event, "key": self.idempotency_key,
                "recipients": list(self.recipients), "message_id": self.message_id, "status": self.status,
                "reply": self.reply, "row": self.row, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(), "pending": list(self.pending),
                "refused": list(self.refused)}


class Ledger:
    _columns = ("id, profile, event, idem_key, recipients, recipient_count, message_id, status, reply, row, "
                "created_at, updated_at, pending, refused")

    def __init__(self, path: Path, synchronous: str = "NORMAL", busy_timeout: float = 10.0,
                 read_only: bool = False) -> None:
        self.path = path
        if read_only:
            self._open_read_only(busy_timeout)
            return
        try:
            private_dir(path.parent)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the ledger {path}: {getattr(exc, 'strerror', None) or exc}",
                              "check the state folder (or the profile's `ledger` setting)") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError(f"the ledger {path} was written by a newer xoromail (schema {version})",
                                  "upgrade xoromail")
            if version == 1:
                self._db.execute("ALTER TABLE messages ADD COLUMN pending TEXT NOT NULL DEFAULT ''")
                self._db.execute("ALTER TABLE messages ADD COLUMN refused TEXT NOT NULL DEFAULT ''")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("SELECT count(*) FROM messages WHERE 0").fetchone()
        except sqlite3.OperationalError as exc:
            self._db.close()
            if "locked" in str(exc) or "busy" in str(exc):
                raise TemporaryError(f"the ledger {path} is locked by another process",
                                     "another xoromail is writing to it; try again shortly") from None
            raise ConfigError(f"the ledger {path} cannot be used: {exc}", CORRUPT_HINT) from None
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ConfigError(f"the ledger {path} is damaged: {exc}", CORRUPT_HINT) from None

    def _open_read_only(self, busy_timeout: float) -> None:
        """For `xoromail log`: reading never needs write access to the ledger or its folder."""
        try:
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout)
            present = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
            if not present:
                raise sqlite3.DatabaseError("no messages table")
            if "pending" not in present:  # a ledger of schema 1, read before any send upgraded it
                self._columns = self._columns.replace("pending, refused", "'' AS pending, '' AS refused")
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot read the ledger {self.path}: {exc}", CORRUPT_HINT) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def last_sent(self, profile: str, key: str) -> LedgerEntry | None:
        return self._query_one(f"SELECT {self._columns} FROM messages WHERE profile = ? AND idem_key = ? "  # noqa: S608
                               "AND status IN ('sent', 'partial') ORDER BY id DESC LIMIT 1", (profile, key))

    def begin(self, profile: str, event: str, key: str, recipients: tuple[str, ...], message_id: str,
              row: int | None) -> int:
        """Record a message as in flight (its fate unknown until `finish`): call just before DATA."""
        stamp = now().isoformat()
        cursor = self._write(
            "INSERT INTO messages (profile, event, idem_key, recipients, recipient_count, message_id, status, "
            "row, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'in_flight', ?, ?, ?)",
            (profile, event, key, ",".join(recipients), len(recipients), message_id, row, stamp, stamp))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish(self, entry_id: int, status: str, reply: str, pending: tuple[str, ...] = (),
               refused: tuple[str, ...] = ()) -> None:
        self._write("UPDATE messages SET status = ?, reply = ?, pending = ?, refused = ?, updated_at = ? WHERE id = ?",
                    (status, reply, ",".join(pending), ",".join(refused), now().isoformat(), entry_id))

    def record(self, profile: str, event: str, key: str, recipients: tuple[str, ...], message_id: str,
               row: int | None, status: str, reply: str) -> None:
        """A message that never reached DATA (refused earlier): one commit."""
        stamp = now().isoformat()
        self._write(
            "INSERT INTO messages (profile, event, idem_key, recipients, recipient_count, message_id, status, "
            "reply, row, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (profile, event, key, ",".join(recipients), len(recipients), message_id, status, reply, row, stamp,
             stamp))

    def interrupted(self, profile: str, event: str | None = None) -> list[LedgerEntry]:
        """Messages a killed run left in flight: possibly delivered, possibly not."""
        if event is None:
            return list(self._query(f"SELECT {self._columns} FROM messages WHERE status = 'in_flight' "  # noqa: S608
                                    "AND profile = ? ORDER BY id", (profile,)))
        return list(self._query(f"SELECT {self._columns} FROM messages WHERE status = 'in_flight' "  # noqa: S608
                                "AND profile = ? AND event = ? ORDER BY id", (profile, event)))

    def settle_interrupted(self, entry_id: int) -> None:
        self._write("UPDATE messages SET status = 'interrupted', reply = COALESCE(reply, ?), updated_at = ? "
                    "WHERE id = ? AND status = 'in_flight'",
                    ("in flight when an earlier run stopped; delivery unknown", now().isoformat(), entry_id))

    def count_since(self, profile: str, since: datetime) -> tuple[int, int]:
        row = self._db.execute("SELECT count(*), coalesce(sum(recipient_count), 0) FROM messages WHERE profile = ? "
                               "AND status IN ('sent', 'partial', 'in_flight') AND created_at >= ?",
                               (profile, since.isoformat())).fetchone()
        return int(row[0]), int(row[1])

    def entries(self, *, profile: str | None = None, since: datetime | None = None, event: str | None = None,
                to: str | None = None, failed: bool = False) -> Iterator[LedgerEntry]:
        clauses, params = ["1 = 1"], []
        if profile:
            clauses.append("profile = ?")
            params.append(profile)
        if since:
            clauses.append("created_at >= ?")
            params.append(since.isoformat())
        if event:
            clauses.append("event = ?")
            params.append(event)
        if to:
            clauses.append("instr(',' || lower(recipients) || ',', ?) > 0")
            params.append(f",{to.lower()},")
        if failed:
            later = ("EXISTS (SELECT 1 FROM messages later WHERE later.profile = messages.profile AND "
                     "later.idem_key = messages.idem_key AND later.id > messages.id{})")
            any_later, later_sent = later.format(""), later.format(" AND later.status = 'sent'")
            earlier_partial = ("EXISTS (SELECT 1 FROM messages partial WHERE partial.profile = messages.profile AND "
                               "partial.idem_key = messages.idem_key AND partial.id < messages.id AND "
                               "partial.status = 'partial')")
            clauses.append(
                f"((status IN ('failed', 'temporary', 'in_flight', 'interrupted') AND NOT {any_later} AND NOT "
                f"{earlier_partial}) OR "
                f"(status = 'partial' AND (NOT {later_sent} OR refused != pending)))")
        sql = f"SELECT {self._columns} FROM messages WHERE {' AND '.join(clauses)} ORDER BY id"  # noqa: S608
        return self._query(sql, tuple(params))

    def _write(self, sql: str, params: tuple[object, ...]) -> sqlite3.Cursor:
        try:
            return self._db.execute(sql, params)
        except sqlite3.OperationalError as exc:
            raise TemporaryError(f"cannot write to the ledger {self.path}: {exc}",
                                 "another process holds it, or the disk is full; try again") from None
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"the ledger {self.path} is damaged: {exc}", CORRUPT_HINT) from None

    def _query_one(self, sql: str, params: tuple[object, ...]) -> LedgerEntry | None:
        return next(iter(self._query(sql, params)), None)

    def _query(self, sql: str, params: tuple[object, ...]) -> Iterator[LedgerEntry]:
        try:
            rows = self._db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot read the ledger {self.path}: {exc}", CORRUPT_HINT) from None
        for row in rows:
            yield LedgerEntry(row[0], row[1], row[2], row[3], tuple(filter(None, row[4].split(","))), row[6],
                              row[7], row[8], row[9], datetime.fromisoformat(row[10]),
                              datetime.fromisoformat(row[11]), tuple(filter(None, row[12].split(","))),
                              tuple(filter(None, row[13].split(","))))
