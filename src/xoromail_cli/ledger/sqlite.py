"""The sent-ledger: one SQLite file (WAL) recording every message, so nothing goes out twice.

A message is written as `in_flight` just before DATA and as `sent` the moment the server accepts it,
each in its own commit. Rows belong to the sending mailbox (`account_key`: the From address), not to a
profile's name, a settings file or the service that carried them (each row notes that service), so moving
a profile from Web Mail to Microsoft 365 sends nothing twice, and two companies on one machine never meet.
After a crash, the only message whose fate is unknown is the one still marked
`in_flight`; the next run reports it. With `synchronous=NORMAL` in WAL mode a commit survives the
process being killed; after a power loss the last commits may roll back, which can cause a resend,
never a loss (see docs/cron.md).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from xoromail_cli.errors import ConfigError, DataError, TemporaryError
from xoromail_cli.ledger.queries import entries_sql
from xoromail_cli.pacing import now
from xoromail_cli.paths import private_dir

if TYPE_CHECKING:
    from xoromail_cli.ledger.locking import ProfileLock

SCHEMA_VERSION = 4
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    profile TEXT NOT NULL,
    account TEXT NOT NULL DEFAULT '',
    service TEXT NOT NULL DEFAULT '',
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
CREATE INDEX IF NOT EXISTS messages_by_account_key ON messages (account, idem_key, status);
CREATE INDEX IF NOT EXISTS messages_by_time ON messages (created_at);
CREATE INDEX IF NOT EXISTS messages_in_flight_by_account ON messages (account, event) WHERE status = 'in_flight';
CREATE INDEX IF NOT EXISTS messages_unadopted ON messages (profile) WHERE account = '';
"""
_SPLIT_ACCOUNT = ("service = substr(account, 1, instr(account, ':') - 1), "
                  "account = substr(account, instr(account, ':') + 1)")
"""Schema 3 keyed rows by `service:address`; from schema 4 the key is the address and the service a column."""
_LEGACY_VIEW = """
CREATE TEMP VIEW messages AS SELECT id, profile, {account} AS account, {service} AS service, event, idem_key,
    recipients, recipient_count, message_id, status, reply, row, created_at, updated_at, {pending} AS pending,
    {refused} AS refused FROM main.messages
"""
"""An older ledger read without upgrading it (`log`, previews, `ledger copy`): its rows as schema 4 shows them."""
_UPGRADES = {
    1: ("ALTER TABLE messages ADD COLUMN pending TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE messages ADD COLUMN refused TEXT NOT NULL DEFAULT ''"),
    2: ("ALTER TABLE messages ADD COLUMN account TEXT NOT NULL DEFAULT ''",
        "DROP INDEX IF EXISTS messages_by_key", "DROP INDEX IF EXISTS messages_in_flight"),
    3: ("ALTER TABLE messages ADD COLUMN service TEXT NOT NULL DEFAULT ''",
        f"UPDATE messages SET {_SPLIT_ACCOUNT} WHERE instr(account, ':') > 0"),  # noqa: S608  # constants only
}
"""Schema version -> the statements that bring it to the next one (a row of an older release keeps
`account = ''` until `adopt` gives it to the account its profile sends from)."""
CORRUPT_HINT = ("move the ledger file away (nothing was sent); a new one is created on the next run, "
                "but its history of sent messages is lost, so check `xoromail log` from a backup first")


EMPTY_HINT = ("restore the ledger from a backup (a full disk or a `>` redirect can empty a file); if nothing was "
              "ever sent with it, delete the empty file and a new ledger is created on the next run")


def _has_wal(path: Path) -> bool:
    """SQLite may keep every page in the write-ahead log until a checkpoint: then the main file is still empty."""
    wal = path.with_name(path.name + "-wal")
    return wal.exists() and wal.stat().st_size > 0


ImportOutcome = Literal["copied", "updated", "unchanged"]
LedgerStatus = Literal["in_flight", "sent", "partial", "failed", "temporary", "interrupted"]
"""A row's state: `in_flight` from just before DATA until the answer; `interrupted` once a later run reported a
row left in flight; the others as the service answered (`partial`: some recipients got it)."""


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    id: int
    profile: str
    event: str
    idempotency_key: str
    recipients: tuple[str, ...]
    message_id: str
    status: LedgerStatus
    reply: str | None
    row: int | None
    created_at: datetime
    updated_at: datetime
    pending: tuple[str, ...] = ()
    """Recipients a partial delivery still owes (refused with a 4xx); a re-run sends to them alone."""
    refused: tuple[str, ...] = ()
    """Every recipient a partial delivery did not reach: the owed ones and those refused for good."""
    account: str = ""
    """`account_key` of the sender (its mailbox); empty on a row of an older release not yet adopted."""
    service: str = ""
    """The service that carried the message (smtp, exchange, …); empty on a row older releases wrote."""

    @classmethod
    def from_row(cls, row: Sequence[Any], when: Callable[[Any], datetime] = datetime.fromisoformat) -> LedgerEntry:
        """An entry from the columns both ledgers select (`_columns`), `when` reading a timestamp column."""
        def listed(value: str) -> tuple[str, ...]:
            return tuple(filter(None, value.split(",")))

        return cls(id=row[0], profile=row[1], event=row[2], idempotency_key=row[3], recipients=listed(row[4]),
                   message_id=row[6], status=row[7], reply=row[8], row=row[9], created_at=when(row[10]),
                   updated_at=when(row[11]), pending=listed(row[12]), refused=listed(row[13]), account=row[14],
                   service=row[15])

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "profile": self.profile, "event": self.event, "key": self.idempotency_key,
                "recipients": list(self.recipients), "message_id": self.message_id, "status": self.status,
                "reply": self.reply, "row": self.row, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(), "pending": list(self.pending),
                "refused": list(self.refused), "account": self.account,
                "service": self.service}


class SentLedger(Protocol):
    """What sending, `log` and `ledger copy` need of a ledger: the SQLite file here, or PostgreSQL
    (`ledger_postgres.PostgresLedger`) shared by every host."""

    kind: str

    def last_sent(self, account: str, key: str) -> LedgerEntry | None: ...
    def begin(self, account: str, event: str, key: str, recipients: tuple[str, ...], message_id: str,
              row: int | None, *, profile: str = "", service: str = "") -> int: ...
    def finish(self, entry_id: int, status: LedgerStatus, reply: str, pending: tuple[str, ...] = (),
               refused: tuple[str, ...] = ()) -> None: ...
    def record(self, account: str, event: str, key: str, recipients: tuple[str, ...], message_id: str,
               row: int | None, status: LedgerStatus, reply: str, *, profile: str = "",
               service: str = "") -> None: ...
    def adopt(self, account: str, profile: str, domain: str) -> int: ...
    def interrupted(self, account: str, event: str | None = None) -> list[LedgerEntry]: ...
    def settle_interrupted(self, entry_id: int) -> None: ...
    def count_since(self, account: str, since: datetime) -> tuple[int, int]: ...
    def entries(self, *, account: str | None = None, profile: str | None = None, since: datetime | None = None,
                event: str | None = None, to: str | None = None, failed: bool = False) -> Iterator[LedgerEntry]: ...
    def import_entry(self, entry: LedgerEntry) -> ImportOutcome: ...
    def exclusive(self, account: str, wait: float) -> AbstractContextManager[object]: ...
    def close(self) -> None: ...


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """The ledger file, created owner-only when missing; an empty file is a lost history, not a new ledger."""
    try:
        private_dir(path.parent)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        elif path.stat().st_size == 0 and not _has_wal(path):
            raise DataError(f"the ledger {path} is an empty file: its history of sent messages is gone, so "
                            "every message would go out again", EMPTY_HINT)
        return sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open the ledger {path}: {getattr(exc, 'strerror', None) or exc}",
                          "check the state folder (or the profile's `ledger` setting)") from None


def _write_ahead_log(db: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch to WAL, waiting like any other write: the switch needs the file to itself, and SQLite may answer
    "locked" at once instead of calling the busy handler (two runs opening a new or an older ledger together)."""
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            if str(db.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower() == "wal":
                return
        except sqlite3.OperationalError as exc:  # (a switch that cannot happen now returns the old mode instead)
            if not ("locked" in str(exc) or "busy" in str(exc)) or time.monotonic() >= deadline:
                raise
        if time.monotonic() >= deadline:
            return  # the old journal mode still works, only with less concurrency
        time.sleep(0.02)


class Ledger:
    _columns = ("id, profile, event, idem_key, recipients, recipient_count, message_id, status, reply, row, "
                "created_at, updated_at, pending, refused, account, service")
    kind = "sqlite"

    def __init__(self, path: Path, synchronous: str = "NORMAL", busy_timeout: float = 10.0,
                 read_only: bool = False) -> None:
        self.path = path
        self._legacy = False
        if read_only:
            self._open_read_only(busy_timeout)
            return
        self._db = _connect(path, busy_timeout)
        try:
            _write_ahead_log(self._db, busy_timeout)
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            if self._db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                self._upgrade()
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

    def _upgrade(self) -> None:
        """Bring an older ledger to this schema in one transaction: a process killed halfway leaves the old
        schema, and another process upgrading at the same time waits, then finds it done."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ConfigError(f"the ledger {self.path} was written by a newer xoromail (schema {version})",
                                  "upgrade xoromail")
            for step in range(version or SCHEMA_VERSION, SCHEMA_VERSION):
                for statement in _UPGRADES[step]:
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _open_read_only(self, busy_timeout: float) -> None:
        """For `xoromail log`: reading never needs write access to the ledger or its folder."""
        try:
            empty = self.path.stat().st_size == 0 and not _has_wal(self.path)
        except OSError:  # missing or unreadable: connect below says which
            empty = False
        if empty:  # as `_connect` says it for a send: not "damaged, move it away"
            raise DataError(f"the ledger {self.path} is an empty file: its history of sent messages is gone",
                            EMPTY_HINT)
        try:
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout)
            present = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
            if not present:
                raise sqlite3.DatabaseError("no messages table")
            if "service" not in present:  # an older schema, read before any send upgraded it
                self._legacy = "account" not in present  # schema 1 or 2: every row is still the profile's own
                self._db.execute(_legacy_view(present))
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot read the ledger {self.path}: {exc}", CORRUPT_HINT) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def last_sent(self, account: str, key: str) -> LedgerEntry | None:
        return self._query_one(f"SELECT {self._columns} FROM messages WHERE account = ? AND idem_key = ? "  # noqa: S608  # constants only; values are bound
                               "AND status IN ('sent', 'partial') ORDER BY id DESC LIMIT 1", (account, key))

    def begin(self, account: str, event: str, key: str, recipients: tuple[str, ...], message_id: str,
              row: int | None, *, profile: str = "", service: str = "") -> int:
        """Record a message as in flight (its fate unknown until `finish`): call just before DATA."""
        stamp = now().isoformat()
        cursor = self._write(
            "INSERT INTO messages (account, service, profile, event, idem_key, recipients, recipient_count, "
            "message_id, status, row, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'in_flight', ?, ?, ?)",
            (account, service, profile, event, key, ",".join(recipients), len(recipients), message_id, row, stamp,
             stamp))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish(self, entry_id: int, status: LedgerStatus, reply: str, pending: tuple[str, ...] = (),
               refused: tuple[str, ...] = ()) -> None:
        self._write("UPDATE messages SET status = ?, reply = ?, pending = ?, refused = ?, updated_at = ? WHERE id = ?",
                    (status, reply, ",".join(pending), ",".join(refused), now().isoformat(), entry_id))

    def record(self, account: str, event: str, key: str, recipients: tuple[str, ...], message_id: str,
               row: int | None, status: LedgerStatus, reply: str, *, profile: str = "",
               service: str = "") -> None:
        """A message that never reached DATA (refused earlier): one commit."""
        stamp = now().isoformat()
        self._write(
            "INSERT INTO messages (account, service, profile, event, idem_key, recipients, recipient_count, "
            "message_id, status, reply, row, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (account, service, profile, event, key, ",".join(recipients), len(recipients), message_id, status, reply,
             row, stamp, stamp))

    def adopt(self, account: str, profile: str, domain: str) -> int:
        """Give rows an older release wrote under `profile` (no account yet) to the account it sends from.

        Only rows whose Message-ID is on the account's domain are taken, so a second company whose
        profile has the same name does not inherit the first one's history. Returns how many moved."""
        cursor = self._write("UPDATE messages SET account = ? WHERE account = '' AND profile = ? "
                             "AND lower(message_id) LIKE ?", (account, profile, f"%@{domain.lower()}>"))
        return cursor.rowcount

    def interrupted(self, account: str, event: str | None = None) -> list[LedgerEntry]:
        """Messages a killed run left in flight: possibly delivered, possibly not."""
        if event is None:
            return list(self._query(f"SELECT {self._columns} FROM messages WHERE status = 'in_flight' "  # noqa: S608  # constants only; values are bound
                                    "AND account = ? ORDER BY id", (account,)))
        return list(self._query(f"SELECT {self._columns} FROM messages WHERE status = 'in_flight' "  # noqa: S608  # constants only; values are bound
                                "AND account = ? AND event = ? ORDER BY id", (account, event)))

    def settle_interrupted(self, entry_id: int) -> None:
        self._write("UPDATE messages SET status = 'interrupted', reply = COALESCE(reply, ?), updated_at = ? "
                    "WHERE id = ? AND status = 'in_flight'",
                    ("in flight when an earlier run stopped; delivery unknown", now().isoformat(), entry_id))

    def count_since(self, account: str, since: datetime) -> tuple[int, int]:
        row = self._read_one("SELECT count(*), coalesce(sum(recipient_count), 0) FROM messages WHERE account = ? "
                             "AND status IN ('sent', 'partial', 'in_flight') AND created_at >= ?",
                             (account, since.isoformat()))
        assert row is not None
        return int(row[0]), int(row[1])

    def entries(self, *, account: str | None = None, profile: str | None = None, since: datetime | None = None,
                event: str | None = None, to: str | None = None, failed: bool = False) -> Iterator[LedgerEntry]:
        """Rows of `account` (plus older rows of `profile` not yet adopted), oldest first; all without."""
        sql, params = entries_sql(self._columns, "?", "instr(',' || lower(recipients) || ',', ?) > 0",
                                  account=account, profile=profile, since=since.isoformat() if since else None,
                                  event=event, to=to, failed=failed, legacy=self._legacy)
        return self._query(sql, params)

    def import_entry(self, entry: LedgerEntry) -> ImportOutcome:
        """Copy one row of another ledger unless it is here already (same message, key and start)."""
        found = self._read_one("SELECT id, status, reply, pending, refused, updated_at FROM messages "
                               "WHERE message_id = ? AND idem_key = ? AND created_at = ?",
                               (entry.message_id, entry.idempotency_key, entry.created_at.isoformat()))
        values = (entry.status, entry.reply, ",".join(entry.pending), ",".join(entry.refused),
                  entry.updated_at.isoformat())
        if found and tuple(found[1:]) == values:
            return "unchanged"
        if found:
            self._write("UPDATE messages SET status = ?, reply = ?, pending = ?, refused = ?, updated_at = ? "
                        "WHERE id = ?", (*values, found[0]))
            return "updated"
        self._write("INSERT INTO messages (account, service, profile, event, idem_key, recipients, recipient_count, "
                    "message_id, row, created_at, status, reply, pending, refused, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (entry.account, entry.service, entry.profile, entry.event, entry.idempotency_key,
                     ",".join(entry.recipients), len(entry.recipients), entry.message_id, entry.row,
                     entry.created_at.isoformat(), *values))
        return "copied"

    def exclusive(self, account: str, wait: float) -> ProfileLock:
        """One sender per account at a time: a file lock beside the ledger."""
        from xoromail_cli.ledger.locking import ProfileLock

        return ProfileLock(lock_file(self.path, account), wait)

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

    def _read_one(self, sql: str, params: tuple[object, ...]) -> Any:
        try:
            return self._db.execute(sql, params).fetchone()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot read the ledger {self.path}: {exc}", CORRUPT_HINT) from None

    def _query(self, sql: str, params: tuple[object, ...]) -> Iterator[LedgerEntry]:
        try:
            rows = self._db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot read the ledger {self.path}: {exc}", CORRUPT_HINT) from None
        for row in rows:
            try:
                yield LedgerEntry.from_row(row)
            except (ValueError, TypeError, AttributeError, IndexError):
                raise ConfigError(f"the ledger {self.path} is damaged: row {row[0]!r} does not read as a message "
                                  "(a value was changed by hand, or the file was damaged)", CORRUPT_HINT) from None


def _legacy_view(present: set[str]) -> str:
    """The temporary view that shows an older ledger's table as schema 4 does (a read-only connection may
    create temporary objects: they live outside the file)."""
    split = "instr(account, ':') > 0"
    return _LEGACY_VIEW.format(
        account=(f"CASE WHEN {split} THEN substr(account, instr(account, ':') + 1) ELSE account END"
                 if "account" in present else "''"),
        service=f"CASE WHEN {split} THEN substr(account, 1, instr(account, ':') - 1) ELSE '' END"
                if "account" in present else "''",
        pending="pending" if "pending" in present else "''", refused="refused" if "refused" in present else "''")


def lock_file(ledger: Path, account: str) -> Path:
    """The account's lock file beside the ledger, named so any address makes a safe file name."""
    import hashlib
    import re

    readable = re.sub(r"[^a-z0-9@._-]+", "-", account.lower())[:80]
    digest = hashlib.sha256(account.encode("utf-8")).hexdigest()[:12]
    return ledger.parent / "locks" / f"{readable}-{digest}.lock"
