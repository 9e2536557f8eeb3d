"""The PostgreSQL ledger's failures in words, and the deadline of each of its statements.

Connecting is bounded by libpq (`connect_timeout`, keepalives, `tcp_user_timeout`); a statement that waits on
another session's lock is bounded by the session's `lock_timeout` and `statement_timeout`, set here. No psycopg
import: errors are told apart by their SQLSTATE, so this module loads nothing.
"""

from __future__ import annotations

import re

from xoromail_cli.errors import TemporaryError, UnavailableError, XoromailError

TABLE = "xoromail_messages"
FLOOR = 10.0
"""The shortest deadline of a ledger statement, whatever the profile's `timeout` (see `statement_deadline`)."""
DEFAULT_DEADLINE = 30.0
"""For a ledger opened without a profile's timeout (`ledger copy`)."""
DOWN_HINT = ("nothing was sent; check that the database server runs and this host may reach it, then re-run "
             "(the ledger must be reachable before anything is sent)")
LOCK_TIMEOUT, STATEMENT_TIMEOUT = "55P03", "57014"
HOLDER_QUERY = ("SELECT pid, state, xact_start, query FROM pg_stat_activity WHERE pid IN (SELECT pid FROM pg_locks "
                "WHERE relation = 'xoromail_messages'::regclass AND granted)")
"""For the hint: the sessions holding a lock on the ledger's table (a text to show, never run here)."""
_SETTINGS = ("lock_timeout", "statement_timeout")


def statement_deadline(timeout: float) -> float:
    """How long one ledger statement may wait for another session's lock: the profile's `timeout` (the run's
    "how long may a network wait last"), but at least 10 s.

    A ledger write normally takes a millisecond; it waits only behind another session: a DBA's `LOCK TABLE`, a
    migration, a transaction stuck holding rows, or briefly a peer host opening the ledger (its schema check takes
    a share lock on the table). Without a deadline `send` and the relay would wait forever, holding the account's
    lock, so every later cron run would step aside with 75. The floor is there because giving up has a cost too:
    a message whose data went out and whose `sent` row could not be written stays in doubt and may be sent again,
    so a short SMTP `timeout` (5 s on a LAN) must not turn a moment's contention into a possible duplicate.
    """
    return max(timeout, FLOOR)


def session_settings(url: str, deadline: float) -> list[str]:
    """The `SET` statements that bound every statement of the session: a lock may be waited for `deadline`, a
    statement may last twice that (so a lock wait is reported as one, the clearer cause, while a statement that
    waited for a lock a while still gets to run). A setting the URL names itself (`options=-c
    lock_timeout=5s`) is the user's and is kept. The account's own lock is not bounded by these: it is taken
    with `pg_try_advisory_lock`, which never waits, in a loop that keeps `--wait`'s deadline."""
    limits = {"lock_timeout": deadline, "statement_timeout": 2 * deadline}
    return [f"SET {name} = {round(limits[name] * 1000)}" for name in _SETTINGS if name not in url]


def connect_failure(where: str, exc: Exception) -> XoromailError:
    """libpq's own words, first line only, as a cause that names the ledger; the hint says what to do."""
    text = str(exc).strip()
    first = (text.splitlines() or [type(exc).__name__])[0]
    cause = re.split(r"(?:FATAL|ERROR):\s+", first)[-1] if "FATAL:" in first or "ERROR:" in first else (
        first.rsplit(" failed: ", 1)[-1])
    message = f"cannot reach the ledger database {where}: {cause}"
    lowered = text.lower()
    if "failed to resolve host" in lowered or "could not translate host name" in lowered:
        return UnavailableError(message, "check the host name in the ledger URL (or $XOROMAIL_LEDGER); "
                                "nothing was sent")
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return TemporaryError(message, "store the right password with `PGPASSWORD=… xoromail setup --ledger "
                              "URL` (it goes to the secret store), or give it in PGPASSWORD or ~/.pgpass; "
                              "nothing was sent")
    if "ssl" in lowered or "certificate" in lowered:
        return TemporaryError(message, "the server's TLS was refused: with sslmode=verify-full set sslrootcert= "
                              "to the CA that signed the database's certificate; nothing was sent")
    return TemporaryError(message, DOWN_HINT)


def too_slow(where: str, action: str, exc: Exception, deadline: float) -> TemporaryError | None:
    """A statement that hit its deadline (SQLSTATE 55P03 lock_timeout, 57014 statement_timeout) as exit 75 whose
    hint finds the session in the way, or None for any other failure. Nothing is lost: the run stops here, and a
    message whose data went out keeps its in-flight row (in doubt), as after any ledger failure."""
    state = getattr(exc, "sqlstate", None)
    if state == LOCK_TIMEOUT:
        cause = f"the ledger table {TABLE} stayed locked by another database session for {deadline:g} s"
    elif state == STATEMENT_TIMEOUT and "statement timeout" in str(exc):
        cause = (f"the ledger database did not finish within {2 * deadline:g} s (its table {TABLE} locked by "
                 "another session, or the server overloaded)")
    else:
        return None
    return TemporaryError(f"{cause} while {action} ({where})",
                          f"the batch stopped; a message already handed to the server stays in flight and the next "
                          f"run reports it. Find the session holding the table: `{HOLDER_QUERY}`; let it finish "
                          "(or end it), then re-run: only what is missing is sent")
