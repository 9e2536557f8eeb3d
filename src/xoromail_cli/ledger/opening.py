"""The ledger's doors: where a profile's ledger lives, and opening it to send (locked) or to preview (read-only).

`send`, the relay and `validate` all come in here, so none of them needs the send planner to find the ledger.
Nothing heavy loads until a door is used: sqlite3 or psycopg only when a ledger is opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xoromail_cli import paths

if TYPE_CHECKING:
    from xoromail_cli.ledger.location import LedgerLocation
    from xoromail_cli.ledger.sqlite import LedgerEntry, SentLedger
    from xoromail_cli.profile import Profile

DEFAULT_FILE = "ledger.sqlite3"


def location_for(profile: Profile) -> LedgerLocation:
    """`$XOROMAIL_LEDGER`, else the profile's `ledger` (a path, sqlite:///path or postgresql://…), else the
    SQLite file in the state folder."""
    from xoromail_cli.ledger.location import location

    return location(profile.ledger, paths.state_dir() / DEFAULT_FILE)


def is_shared(profile: Profile) -> bool:
    """The profile's ledger is PostgreSQL, shared by every host that sends from the account."""
    return location_for(profile).is_postgres


def ledger_path(profile: Profile) -> Path:
    """The SQLite ledger's file (a PostgreSQL ledger has none: this is where it would be)."""
    found = location_for(profile)
    return found.path if found.path is not None else paths.state_dir() / DEFAULT_FILE


def lock_path(profile: Profile) -> Path:
    """The file lock of the sending mailbox (the From address), beside a SQLite ledger."""
    from xoromail_cli.ledger.accounts import account_key
    from xoromail_cli.ledger.sqlite import lock_file

    return lock_file(ledger_path(profile), account_key(profile.email))


@contextmanager
def open_for_sending(profile: Profile, wait: float) -> Iterator[SentLedger]:
    """The account locked and its ledger open, for as long as the `with` lasts: a file lock and SQLite here,
    or one advisory lock and PostgreSQL for every host. Waits up to `wait` seconds for another run's lock
    (then TemporaryError, exit 75). Rows an older release wrote under the profile's name become the account's."""
    from xoromail_cli.ledger.accounts import account_key, legacy_domain
    from xoromail_cli.ledger.location import open_ledger

    account = account_key(profile.email)
    found = location_for(profile)
    with ExitStack() as stack:
        ledger: SentLedger
        if found.is_postgres:
            ledger = stack.enter_context(closing(open_ledger(found, profile.name, timeout=min(profile.timeout, 30.0),
                                                             deadline=_deadline(profile))))
            stack.enter_context(ledger.exclusive(account, wait))
        else:
            from xoromail_cli.ledger.locking import ProfileLock

            stack.enter_context(ProfileLock(lock_path(profile), wait))
            ledger = stack.enter_context(closing(open_ledger(found, profile.name)))
        ledger.adopt(account, profile.name, legacy_domain(profile.email))
        yield ledger


def open_connection(profile: Profile) -> SentLedger:
    """Another connection to the ledger `open_for_sending` locked (one per connection of a parallel run);
    the caller closes it. It takes no lock: the run holds it."""
    from xoromail_cli.ledger.location import open_ledger

    return open_ledger(location_for(profile), profile.name, timeout=min(profile.timeout, 30.0),
                       deadline=_deadline(profile))


def _deadline(profile: Profile) -> float:
    """How long a PostgreSQL ledger statement may wait on another session's lock for this profile."""
    from xoromail_cli.ledger.pg_failures import statement_deadline

    return statement_deadline(profile.timeout)


def prove_shared(profile: Profile, secret: Callable[[str], str | None], timeout: float) -> str:
    """Open and close the profile's shared (PostgreSQL) ledger, creating or upgrading its schema, so `validate`
    proves now what `send` would need first; `secret` reads the password (setup's staged secrets included)
    when the URL's environment gives none. Says what answered."""
    from xoromail_cli.ledger.location import SECRET_KIND, redact
    from xoromail_cli.ledger.pg_failures import statement_deadline
    from xoromail_cli.ledger.postgres import PostgresLedger

    found = location_for(profile)
    assert found.url is not None
    password = found.password or secret(SECRET_KIND)
    PostgresLedger(found.url, password=password, connect_timeout=min(timeout, 30.0),
                   deadline=statement_deadline(timeout)).close()
    return f"the shared ledger {redact(found.url)} answers (schema ready)"


@contextmanager
def open_preview(profile: Profile) -> Iterator[SentLedger | None]:
    """The ledger read-only for `--dry-run --pending` (SQLite or PostgreSQL), or None when nothing was ever
    sent. A preview settles no interrupted row, since that is a write: it shows them as due, as a re-run
    would send them."""
    from xoromail_cli.ledger.location import open_ledger

    found = location_for(profile)
    if found.path is not None and not found.path.exists():
        yield None  # nothing was ever sent: everything is pending
        return
    with closing(open_ledger(found, profile.name, read_only=True)) as ledger:
        yield ReadOnlyPreview(ledger)


class ReadOnlyPreview:
    """A ledger for previews: every read goes through, the interrupted rows are not settled."""

    def __init__(self, inner: SentLedger) -> None:
        self._inner = inner

    def interrupted(self, account: str, event: str | None = None) -> list[LedgerEntry]:
        return []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
