"""The `log` query, one text for SQLite and PostgreSQL: rows of an account (and the not yet adopted rows of an
older release), by time, event, recipient, and what still needs attention (`--failed`)."""

from __future__ import annotations

from xoromail_cli.ledger.accounts import legacy_domain


def entries_sql(columns: str, mark: str, contains: str, *, account: str | None, profile: str | None,
                since: object | None, event: str | None, to: str | None, failed: bool,
                legacy: bool = False, table: str = "messages") -> tuple[str, tuple[object, ...]]:
    """The `log` query for either database: `mark` is the placeholder, `contains` the recipient test."""
    clauses, params = ["1 = 1"], list[object]()
    owner = "profile" if legacy else "account"
    if account and not legacy:
        clauses.append(f"(account = {mark} OR (account = '' AND profile = {mark} AND lower(message_id) LIKE {mark}))")
        params += [account, profile or "", f"%@{legacy_domain(account)}>"]
    elif profile:
        clauses.append(f"profile = {mark}")
        params.append(profile)
    for column, value in (("created_at >=", since), ("event =", event)):
        if value:
            clauses.append(f"{column} {mark}")
            params.append(value)
    if to:
        clauses.append(contains)
        params.append(f",{to.lower()},")
    if failed:
        same = f"later.{owner} = messages.{owner} AND later.idem_key = messages.idem_key"
        later = f"EXISTS (SELECT 1 FROM {table} later WHERE {same} AND later.id {{}})"  # noqa: S608  # table and columns are constants; values are bound
        any_later = later.format("> messages.id")
        later_sent = later.format("> messages.id AND later.status = 'sent'")
        earlier_partial = later.format("< messages.id AND later.status = 'partial'")
        clauses.append(
            f"((status IN ('failed', 'temporary', 'in_flight', 'interrupted') AND NOT {any_later} AND NOT "
            f"{earlier_partial}) OR "
            f"(status = 'partial' AND (NOT {later_sent} OR refused != pending)))")
    sql = f"SELECT {columns} FROM {table} AS messages WHERE {' AND '.join(clauses)} ORDER BY id"  # noqa: S608  # constants; values are bound
    return sql, tuple(params)
