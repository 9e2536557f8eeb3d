"""The sent-ledger in PostgreSQL: one ledger and one lock for every host that sends for an account.

Same promises as the SQLite ledger: a message is `in_flight` (committed) before its data goes out and
`sent` once the server accepted it, each write its own commit (autocommit). Mutual exclusion is a
session-level advisory lock per account, held on the very connection that records the messages: the
semantics of the file lock (one sender per account, `--wait` queues behind it), and when that host dies
or its connection drops, the server ends the session and frees the lock, while every later write of
the dead connection fails, so a host never sends a message it could not record. A per-message claim
would let two hosts interleave one batch, but it needs a transaction around each delivery and still
leaves ordering and quota counting racy; one sender per account is simpler and as fast.
psycopg is imported here only, and this module only when a PostgreSQL ledger is configured.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import ConfigError, TemporaryError, XoromailError
from xoromail_cli.ledger.pg_failures import DEFAULT_DEADLINE, TABLE, connect_failure, session_settings, too_slow
from xoromail_cli.ledger.queries import entries_sql
from xoromail_cli.ledger.sqlite import ImportOutcome, LedgerEntry, LedgerStatus
from xoromail_cli.pacing import now

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 2
_TABLE = TABLE
_MIGRATION_LOCK = 0x786F726F6D61696C  # "xoromail": serialises first-use schema creation across hosts
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS xoromail_schema (version INTEGER NOT NULL)",
    f"""CREATE TABLE IF NOT EXISTS {_TABLE} (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account TEXT NOT NULL DEFAULT '',
        service TEXT NOT NULL DEFAULT '',
        profile TEXT NOT NULL,
        event TEXT NOT NULL,
        idem_key TEXT NOT NULL,
        recipients TEXT NOT NULL,
        recipient_count INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        status TEXT NOT NULL,
        reply TEXT,
        "row" INTEGER,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        pending TEXT NOT NULL DEFAULT '',
        refused TEXT NOT NULL DEFAULT '')""",
    f"CREATE INDEX IF NOT EXISTS xoromail_by_account_key ON {_TABLE} (account, idem_key, status)",
    f"CREATE INDEX IF NOT EXISTS xoromail_by_time ON {_TABLE} (created_at)",
    f"CREATE INDEX IF NOT EXISTS xoromail_by_message ON {_TABLE} (message_id)",
    f"CREATE INDEX IF NOT EXISTS xoromail_in_flight ON {_TABLE} (account, event) WHERE status = 'in_flight'",
    f"CREATE INDEX IF NOT EXISTS xoromail_unadopted ON {_TABLE} (profile) WHERE account = ''",
)
_SPLIT = "position(':' in account) > 0"
_UPGRADES = {
    1: (f"ALTER TABLE {_TABLE} ADD COLUMN IF NOT EXISTS service TEXT NOT NULL DEFAULT ''",
        f"UPDATE {_TABLE} SET service = split_part(account, ':', 1), "  # noqa: S608  # constants only
        f"account = substr(account, position(':' in account) + 1) WHERE {_SPLIT}"),
}
"""Schema version -> the statements that bring it to the next one: schema 1 keyed rows by `service:address`;
from schema 2 the key is the address (the mailbox) and the service a column of its own."""
_LEGACY_VIEW = (f"CREATE TEMP VIEW {_TABLE} AS SELECT id, "  # noqa: S608  # constants only
                f"CASE WHEN {_SPLIT} THEN substr(account, position(':' in account) + 1) ELSE account END AS account, "
                f"CASE WHEN {_SPLIT} THEN split_part(account, ':', 1) ELSE '' END AS service, profile, event, "
                'idem_key, recipients, recipient_count, message_id, status, reply, "row", created_at, updated_at, '
                "pending, refused FROM {table}")
"""A schema-1 ledger read without upgrading it (`log`, previews): its rows as schema 2 shows them."""
_COLUMNS = ('id, profile, event, idem_key, recipients, recipient_count, message_id, status, reply, "row", '
            "created_at, updated_at, pending, refused, account, service")
_INSERT = ("INSERT INTO xoromail_messages (account, service, profile, event, idem_key, recipients, recipient_count, "
           'message_id, "row", status, reply, created_at, updated_at, pending, refused) '
           "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id")
def _as_is(value: datetime) -> datetime:
    """psycopg reads a timestamptz column as a datetime already."""
    return value


def lock_id(account: str) -> int:
    """The advisory lock's key for an account: the same 64-bit number on every host."""
    return int.from_bytes(hashlib.sha256(f"xoromail:{account}".encode()).digest()[:8], "big", signed=True)


class PostgresLedger:
    """The ledger of every host, in the ERP's database (tables `xoromail_messages`, `xoromail_schema`)."""

    kind = "postgresql"

    def __init__(self, url: str, *, password: str | None = None, connect_timeout: float = 10.0,
                 read_only: bool = False, deadline: float = DEFAULT_DEADLINE) -> None:
        """`deadline`: how long any statement may wait for another session's lock (see
        `pg_failures.statement_deadline`); the account's lock keeps `--wait`'s own (`exclusive`)."""
        import psycopg

        self.url, self.deadline = url, deadline
        self._present = True
        kwargs: dict[str, Any] = {"application_name": "xoromail", "autocommit": True,
                                  "connect_timeout": max(2, round(connect_timeout)),
                                  "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                                  "keepalives_count": 3, "tcp_user_timeout": round(connect_timeout * 1000)}
        # Bounded: connecting gives up after `connect_timeout`, and a database that stops answering mid-batch
        # (no reset, e.g. a partition) is given up on after as long, instead of hanging the run.
        if password is not None:
            kwargs["password"] = password
        try:
            self._db: psycopg.Connection[tuple[Any, ...]] = psycopg.connect(url, **kwargs)
        except psycopg.Error as exc:
            raise connect_failure(url, exc) from None
        except Exception as exc:  # noqa: BLE001  # psycopg raises ProgrammingError for a malformed URL, whose text may quote it
            raise ConfigError(f"the ledger URL {url} cannot be used ({type(exc).__name__})",
                              "write it as postgresql://user@host:5432/db?sslmode=verify-full") from None
        try:
            self._bound(url)
            self._prepare(read_only)
        except BaseException:
            self._db.close()
            raise

    def _bound(self, url: str) -> None:
        """Every statement gets a deadline (`pg_failures.session_settings`), and commits are relaxed."""
        with self._guard("preparing the session"):
            for statement in session_settings(url, self.deadline):
                self._db.execute(statement)
        if "synchronous_commit" not in url:
            self._relax_commit()

    def _relax_commit(self) -> None:
        """Like SQLite's synchronous=NORMAL: a commit survives xoromail being killed (the server has it),
        while a crash of the database server itself may lose its last fraction of a second of commits,
        which can cause a resend, never a loss. It spares a disk flush per write (see docs/performance.md);
        `options=-c synchronous_commit=on` in the URL keeps every commit flushed."""
        with self._guard("preparing the session"):
            self._db.execute("SET synchronous_commit = off")

    def _prepare(self, read_only: bool) -> None:
        """Create and migrate the schema (one host at a time), or refuse one from a newer release."""
        with self._guard("preparing its tables"):
            if read_only:
                found = self._db.execute("SELECT to_regclass('xoromail_schema') IS NOT NULL").fetchone()
                self._present = bool(found and found[0])
                if self._present and (self._check_version() or SCHEMA_VERSION) < SCHEMA_VERSION:
                    where = self._db.execute(f"SELECT to_regclass('{_TABLE}')::text").fetchone()
                    self._db.execute(_LEGACY_VIEW.replace("{table}", where[0] if where else _TABLE))
                return
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                for statement in _SCHEMA:
                    self._db.execute(statement)
                version = self._check_version()
                for step in range(version or SCHEMA_VERSION, SCHEMA_VERSION):
                    for statement in _UPGRADES[step]:
                        self._db.execute(statement)
                if version != SCHEMA_VERSION:
                    self._db.execute("INSERT INTO xoromail_schema (version) VALUES (%s)", (SCHEMA_VERSION,))

    def _check_version(self) -> int | None:
        row = self._db.execute("SELECT max(version) FROM xoromail_schema").fetchone()
        version = row[0] if row else None
        if version is not None and version > SCHEMA_VERSION:
            raise ConfigError(f"the ledger database {self.url} was written by a newer xoromail (schema {version}, "
                              f"this one knows {SCHEMA_VERSION})", "upgrade xoromail on this host; nothing was sent")
        return int(version) if version is not None else None

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """A database failure after connecting stops the run: never send what could not be recorded."""
        import psycopg

        try:
            yield
        except psycopg.OperationalError as exc:
            slow = too_slow(self.url, action, exc, self.deadline)
            if slow is not None:
                raise slow from None
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise TemporaryError(f"lost the ledger database {self.url} ({action}): {first}",
                                 "the batch stopped at once; re-run when the database is back: the ledger "
                                 "sends only what is missing and reports a message left in flight") from None
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"the ledger database {self.url} refused {action}: {first}",
                              "check that the ledger's user may create and write tables in that database") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PostgresLedger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, action: str, sql: str, params: tuple[object, ...]) -> int:
        with self._guard(action):
            cursor = self._db.execute(sql, params)
            row = cursor.fetchone() if cursor.description else None
            return int(row[0]) if row else cursor.rowcount

    def _query(self, sql: str, params: tuple[object, ...]) -> list[LedgerEntry]:
        if not self._present:
            return []
        with self._guard("reading"):
            rows = self._db.execute(sql, params).fetchall()
        return [LedgerEntry.from_row(row, when=_as_is) for row in rows]

    def last_sent(self, account: str, key: str) -> LedgerEntry | None:
        found = self._query(f"SELECT {_COLUMNS} FROM {_TABLE} WHERE account = %s AND idem_key = %s "  # noqa: S608  # constants only; values are bound
                            "AND status IN ('sent', 'partial') ORDER BY id DESC LIMIT 1", (account, key))
        return found[0] if found else None

    def begin(self, account: str, event: str, key: str, recipients: tuple[str, ...], message_id: str,
              row: int | None, *, profile: str = "", service: str = "") -> int:
        """Record a message as in flight (committed) just before DATA."""
        stamp = now()
        return self._write("recording a message", _INSERT, (account, service, profile, event, key, ",".join(recipients),
                                                             len(recipients), message_id, row, "in_flight", None,
                                                             stamp, stamp, "", ""))

    def finish(self, entry_id: int, status: LedgerStatus, reply: str, pending: tuple[str, ...] = (),
               refused: tuple[str, ...] = ()) -> None:
        self._write("recording a delivery", f"UPDATE {_TABLE} SET status = %s, reply = %s, pending = %s, "  # noqa: S608  # constants only; values are bound
                    "refused = %s, updated_at = %s WHERE id = %s",
                    (status, reply, ",".join(pending), ",".join(refused), now(), entry_id))

    def record(self, account: str, event: str, key: str, recipients: tuple[str, ...], message_id: str,
               row: int | None, status: LedgerStatus, reply: str, *, profile: str = "",
               service: str = "") -> None:
        stamp = now()
        self._write("recording a refusal", _INSERT, (account, service, profile, event, key, ",".join(recipients),
                                                     len(recipients), message_id, row, status, reply, stamp, stamp,
                                                     "", ""))

    def adopt(self, account: str, profile: str, domain: str) -> int:
        """Rows copied from an older SQLite ledger (no account yet) go to the account of their profile."""
        return self._write("adopting older rows", f"UPDATE {_TABLE} SET account = %s WHERE account = '' "  # noqa: S608  # constants only; values are bound
                           "AND profile = %s AND lower(message_id) LIKE %s", (account, profile, f"%@{domain}>"))

    def interrupted(self, account: str, event: str | None = None) -> list[LedgerEntry]:
        extra, params = (" AND event = %s", (account, event)) if event is not None else ("", (account,))
        return self._query(f"SELECT {_COLUMNS} FROM {_TABLE} WHERE status = 'in_flight' AND account = %s"  # noqa: S608  # constants only; values are bound
                           f"{extra} ORDER BY id", params)

    def settle_interrupted(self, entry_id: int) -> None:
        self._write("settling an interrupted message", f"UPDATE {_TABLE} SET status = 'interrupted', "  # noqa: S608  # constants only; values are bound
                    "reply = COALESCE(reply, %s), updated_at = %s WHERE id = %s AND status = 'in_flight'",
                    ("its answer never came in an earlier run; delivery unknown", now(), entry_id))

    def count_since(self, account: str, since: datetime) -> tuple[int, int]:
        with self._guard("reading"):
            row = self._db.execute(f"SELECT count(*), coalesce(sum(recipient_count), 0) FROM {_TABLE} "  # noqa: S608  # constants only; values are bound
                                   "WHERE account = %s AND status IN ('sent', 'partial', 'in_flight') "
                                   "AND created_at >= %s", (account, since)).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def entries(self, *, account: str | None = None, profile: str | None = None, since: datetime | None = None,
                event: str | None = None, to: str | None = None, failed: bool = False) -> Iterator[LedgerEntry]:
        sql, params = entries_sql(_COLUMNS, "%s", "position(%s in ',' || lower(recipients) || ',') > 0",
                                  account=account, profile=profile, since=since, event=event, to=to,
                                  failed=failed, table=_TABLE)
        return iter(self._query(sql, params))

    def import_entry(self, entry: LedgerEntry) -> ImportOutcome:
        """Copy one row of another ledger unless it is here already (same message, key and start)."""
        with self._guard("copying"):
            found = self._db.execute(f"SELECT id, status, reply, pending, refused, updated_at FROM {_TABLE} "  # noqa: S608  # constants only; values are bound
                                     "WHERE message_id = %s AND idem_key = %s AND created_at = %s",
                                     (entry.message_id, entry.idempotency_key, entry.created_at)).fetchone()
        state = (entry.status, entry.reply, ",".join(entry.pending), ",".join(entry.refused), entry.updated_at)
        if found and tuple(found[1:]) == state:
            return "unchanged"
        if found:
            self._write("copying", f"UPDATE {_TABLE} SET status = %s, reply = %s, pending = %s, refused = %s, "  # noqa: S608  # constants only; values are bound
                        "updated_at = %s WHERE id = %s", (*state, found[0]))
            return "updated"
        self._write("copying", _INSERT, (entry.account, entry.service, entry.profile, entry.event,
                                         entry.idempotency_key, ",".join(entry.recipients), len(entry.recipients),
                                         entry.message_id,
                                         entry.row, entry.status, entry.reply, entry.created_at, entry.updated_at,
                                         ",".join(entry.pending), ",".join(entry.refused)))
        return "copied"

    @contextmanager
    def exclusive(self, account: str, wait: float, poll: float = 0.2) -> Iterator[None]:
        """Hold the account's advisory lock for the run; another host holding it means exit 75 (or wait)."""
        key, deadline = lock_id(account), time.monotonic() + wait
        while True:
            with self._guard("taking the account's lock"):
                row = self._db.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row and row[0]:
                break
            if time.monotonic() >= deadline:
                raise TemporaryError(f"another xoromail run ({self._holder(key)}) is sending for this account "
                                     f"(ledger {self.url})", "it will finish on its own; re-run later, or pass "
                                     "--wait SECONDS to queue behind it")
            time.sleep(poll)
        try:
            yield
        finally:
            with suppress(XoromailError), self._guard("releasing the account's lock"):  # a lost connection freed it
                if not self._db.closed:
                    self._db.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def _holder(self, key: int) -> str:
        """Which client holds the lock, as far as pg_stat_activity tells this user."""
        unsigned = key & 0xFFFFFFFFFFFFFFFF
        sql = ("SELECT a.client_addr::text, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
               "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = %s AND l.objid::bigint = %s "
               "LIMIT 1")
        with self._guard("reading"):
            row = self._db.execute(sql, (unsigned >> 32, unsigned & 0xFFFFFFFF)).fetchone()
        return f"client {row[0] or 'local'}, server process {row[1]}" if row else "another host"
