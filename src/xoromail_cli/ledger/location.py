"""Where the sent-ledger lives: a SQLite file on this host, or a PostgreSQL database shared by many.

The profile's `ledger` setting (or `$XOROMAIL_LEDGER` for one run) is a path, `sqlite:///path` or
`postgresql://user@host:5432/db?sslmode=verify-full`. A password never stays in the settings file:
setup moves it to the secret store (kind `ledger_password`), or libpq finds it in `PGPASSWORD`, `~/.pgpass`
or `PGSERVICEFILE`. Only this module and `ledger_postgres` know about URLs; psycopg is imported only
once a PostgreSQL ledger is opened.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from xoromail_cli.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from xoromail_cli.ledger.sqlite import SentLedger

ENV_LEDGER = "XOROMAIL_LEDGER"
SECRET_KIND = "ledger_password"  # noqa: S105  # a secret-store entry's kind, not a password
_POSTGRES_SCHEMES = ("postgresql", "postgres")
_CONNINFO = re.compile(r"(?:^|\s)(?:host|hostaddr|dbname|user|password|port|sslmode|service)\s*=", re.IGNORECASE)
"""A libpq keyword/value connection string (`host=db user=erp password=…`), which is no file name."""
_CONNINFO_PASSWORD = re.compile(r"(?:^|\s)password\s*=", re.IGNORECASE)


@dataclass(frozen=True)
class LedgerLocation:
    """A parsed `ledger` setting: `url` (PostgreSQL, without its password) or `path` (SQLite)."""

    path: Path | None = None
    url: str | None = None
    password: str | None = None
    """A password that came in the URL itself ($XOROMAIL_LEDGER in a container): used, never shown."""

    @property
    def is_postgres(self) -> bool:
        return self.url is not None

    def describe(self) -> str:
        """How errors and `log` name the ledger: the path, or the URL without any password."""
        return self.url if self.url is not None else str(self.path)


def parse(value: str) -> LedgerLocation:
    """Read a `ledger` setting; an unknown URL scheme is a config error, not a file name."""
    text = value.strip()
    if text.startswith("sqlite://"):
        rest = text.removeprefix("sqlite://")
        if not rest.startswith("/"):
            raise ConfigError(f"ledger {text!r}: a sqlite URL needs an absolute path (sqlite:///var/lib/x.db)",
                              "write sqlite:/// and the path, or the path alone")
        return LedgerLocation(path=Path(unquote(rest)).expanduser())
    scheme = text.partition("://")[0].lower() if "://" in text else ""
    if scheme in _POSTGRES_SCHEMES:
        url, password = split_password(text)
        return LedgerLocation(url=url, password=password)
    if scheme:
        raise ConfigError(f"ledger {redact(text)!r}: unknown kind of ledger {scheme!r}",
                          "use a file path, sqlite:///path or postgresql://user@host:5432/db")
    return LedgerLocation(path=Path(text).expanduser())


def location(setting: str | None, default: Path) -> LedgerLocation:
    """`$XOROMAIL_LEDGER`, else the profile's `ledger`, else the SQLite file in the state folder."""
    value = os.environ.get(ENV_LEDGER) or setting
    return parse(value) if value else LedgerLocation(path=default)


def split_password(url: str) -> tuple[str, str | None]:
    """The URL without its password (in the user part, or a `password=` parameter) and that password."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    in_query = [value for key, value in query if key == "password"]
    password = unquote(parts.password) if parts.password is not None else (in_query[0] if in_query else None)
    if password is None:
        return url, None
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}@{host}" if user else host
    rest = urlencode([(key, value) for key, value in query if key != "password"], quote_via=quote)
    return urlunsplit(parts._replace(netloc=netloc, query=rest)), password


def redact(value: str) -> str:
    """A ledger setting fit to print: a password in the URL becomes `***`."""
    if "://" not in value:
        return value
    try:
        bare, password = split_password(value)
    except ValueError:
        return value.partition("://")[0] + "://***"
    if password is None:
        return value
    parts = urlsplit(bare)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{parts.netloc.rpartition('@')[2]}"))


def refuse_password(value: str, option: str) -> None:
    """A URL given on the command line must not hold a password: every user of the machine sees a command line
    (`ps`, /proc/PID/cmdline) and shell history keeps it. Settings files with one keep working (`parse`)."""
    found = parse(value)
    kept = " (setup then keeps it in the secret store)" if option == "--ledger" else ""  # ledger copy keeps nothing
    if not found.is_postgres and _CONNINFO.search(value):
        from xoromail_cli.errors import UsageError

        secret = " with a password, where every user of this machine can see it (ps)" if _CONNINFO_PASSWORD.search(
            value) else ""
        raise UsageError(f"{option} is a libpq 'key=value' string{secret}, which would be taken for a file name; "
                         "nothing was changed",
                         f"give the ledger as postgresql://user@host/db, and its password in PGPASSWORD{kept} or "
                         "~/.pgpass", field="ledger")
    if found.is_postgres and found.password is not None:
        from xoromail_cli.errors import UsageError

        raise UsageError(f"{option} has a password in its URL, where every user of this machine can see it "
                         "(ps) and the shell history keeps it; nothing was changed",
                         f"give the URL without it ({found.url}) and the password the way PostgreSQL's own "
                         f"tools take it: in PGPASSWORD{kept}, or in ~/.pgpass",
                         field="ledger")


def keep_password_apart(value: str, environ: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """For `setup --ledger URL`: the URL to save (one with a password is refused), and the password setup keeps
    in the secret store with the profile's other secrets: libpq's `PGPASSWORD`, when set."""
    refuse_password(value, "--ledger")
    found = parse(value)
    if not found.is_postgres:
        return value.strip(), None
    assert found.url is not None
    return found.url, (os.environ if environ is None else environ).get("PGPASSWORD") or None


def stored_password(profile_name: str) -> str | None:
    from xoromail_cli.credentials import read_secret

    return read_secret(profile_name, SECRET_KIND)


def open_ledger(found: LedgerLocation, profile_name: str, *, read_only: bool = False,
                timeout: float = 10.0, deadline: float | None = None) -> SentLedger:
    """Open the ledger for sending (created and migrated on first use) or, `read_only`, for `log`. `timeout`
    bounds connecting to PostgreSQL, `deadline` each of its statements (`pg_failures.statement_deadline`);
    SQLite waits for another writer at most its own busy timeout."""
    if found.url is None:
        from xoromail_cli.ledger.sqlite import Ledger

        assert found.path is not None
        return Ledger(found.path, read_only=read_only)
    from xoromail_cli.ledger.pg_failures import DEFAULT_DEADLINE
    from xoromail_cli.ledger.postgres import PostgresLedger

    password = found.password or stored_password(profile_name)
    return PostgresLedger(found.url, password=password, connect_timeout=timeout, read_only=read_only,
                          deadline=DEFAULT_DEADLINE if deadline is None else deadline)


@dataclass(frozen=True, kw_only=True)
class CopyResult:
    source: str
    target: str
    copied: int
    updated: int
    unchanged: int


def copy_ledger(source: LedgerLocation, target: LedgerLocation, profile_name: str) -> CopyResult:
    """Copy every row of `source` into `target` (created if new); rows already there keep one copy,
    brought to the source's latest state, so running it twice adds nothing."""
    if source.describe() == target.describe():
        from xoromail_cli.errors import UsageError

        raise UsageError(f"--from and --to name the same ledger ({source.describe()})", "name another ledger")
    if source.path is not None and not source.path.exists():
        from xoromail_cli.errors import NoInputError

        raise NoInputError(f"no ledger at {source.path}", "name the ledger to copy with --from")
    reader = open_ledger(source, profile_name, read_only=True)
    try:
        writer = open_ledger(target, profile_name)
        try:
            copied = updated = unchanged = 0
            for entry in reader.entries():
                outcome = writer.import_entry(entry)
                copied += outcome == "copied"
                updated += outcome == "updated"
                unchanged += outcome == "unchanged"
        finally:
            writer.close()
    finally:
        reader.close()
    return CopyResult(source=source.describe(), target=target.describe(), copied=copied, updated=updated,
                      unchanged=unchanged)
