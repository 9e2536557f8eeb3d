"""Who got what: the sent-ledger on SQLite or PostgreSQL, its location, accounts and locks.

The doors (`open_for_sending`, `open_preview`, `location_for`, `prove_shared`, …) are what the rest of the
package uses; they load sqlite3 or psycopg only when a ledger is opened.
"""

from xoromail_cli.ledger.opening import (
    is_shared,
    ledger_path,
    location_for,
    lock_path,
    open_connection,
    open_for_sending,
    open_preview,
    prove_shared,
)

__all__ = ["is_shared", "ledger_path", "location_for", "lock_path", "open_connection", "open_for_sending",
           "open_preview", "prove_shared"]
