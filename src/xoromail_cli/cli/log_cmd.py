"""`xoromail log`: the sent-ledger as a table or JSON Lines, for people and audits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from xoromail_cli.cli.completion import event_names
from xoromail_cli.cli.state import state_of

if TYPE_CHECKING:
    from rich.console import Console

    from xoromail_cli.ledger.sqlite import LedgerEntry

COMPACT_BELOW = 100
"""Narrower terminals get one block per message: five columns with a Message-ID fold into unreadable strips.
Off a terminal (a pipe, cron mail) the blocks too: lines without padding read well in any mail client."""
STYLE = {"sent": "green", "failed": "red", "temporary": "yellow", "partial": "yellow", "in_flight": "yellow",
         "interrupted": "yellow"}


def log(
    ctx: typer.Context,
    since: Annotated[str | None, typer.Option("--since", metavar="DATE",
                                              help="From this date (2026-11-01) or this long ago (7d).")] = None,
    event: Annotated[str | None, typer.Option(
        "--event", metavar="EVENT", autocompletion=event_names,
        help="Only this event (relay: what the relay delivered).")] = None,
    to: Annotated[str | None, typer.Option("--to", metavar="ADDR", help="Only messages to this address.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only what still needs attention.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many (the newest).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per message.")] = False,
) -> None:
    """List what was sent, when, to whom, with Message-ID and the server's reply."""
    from xoromail_cli import config
    from xoromail_cli import ledger as ledger_doors
    from xoromail_cli.cli.console import out, print_json_line
    from xoromail_cli.compose.events import get_event
    from xoromail_cli.ledger.accounts import account_key
    from xoromail_cli.ledger.location import open_ledger
    from xoromail_cli.pacing import parse_since

    state = state_of(ctx)
    profile = config.load_profile(state.config_path, state.profile_name)
    if event and event != "relay":  # "relay": the messages `xoromail relay` delivered
        get_event(event)
    start = parse_since(since) if since else None
    found = ledger_doors.location_for(profile)
    entries = []
    if found.is_postgres or (found.path is not None and found.path.exists()):
        ledger = open_ledger(found, profile.name, read_only=True, timeout=min(profile.timeout, 30.0))
        try:
            entries = list(ledger.entries(account=account_key(profile.email), profile=profile.name,
                                          since=start, event=event, to=to, failed=failed))
        finally:
            ledger.close()
    if limit:
        entries = entries[-limit:]
    if as_json:
        for entry in entries:
            print_json_line(entry.to_json())
        return
    from rich.markup import escape
    from rich.table import Table

    console = out()
    if not entries:
        console.print("Nothing to show" + (" that needs attention." if failed else "."))
        return
    if console.width < COMPACT_BELOW or not console.is_terminal:
        _print_compact(console, profile.name, entries)
        return
    table = Table(title=f"Sent-ledger of {profile.email} (profile {profile.name!r})", title_justify="left")
    for column in ("when (UTC)", "event", "to", "status", "message-id / reply"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(f"{entry.updated_at:%Y-%m-%d %H:%M:%S}", escape(_event_via(entry)),
                      escape(", ".join(entry.recipients)),
                      f"[{STYLE.get(entry.status, 'white')}]{entry.status}[/]",
                      escape(f"{entry.message_id}\n{entry.reply or ''}".strip()))
    console.print(table)


def _print_compact(console: Console, profile: str, entries: list[LedgerEntry]) -> None:
    """A heading line per message (when, event, status), then its recipients, Message-ID and reply."""
    from rich.markup import escape

    console.print(f"Sent-ledger of profile {profile!r}")
    for entry in entries:
        status = f"[{STYLE.get(entry.status, 'white')}]{entry.status}[/]"
        console.print(f"{entry.updated_at:%Y-%m-%d %H:%M:%S}  {escape(_event_via(entry))}  {status}")
        console.print(f"  to: {escape(', '.join(entry.recipients))}")
        console.print(f"  {escape(entry.message_id)}", overflow="fold")
        if entry.reply:
            console.print(f"  {escape(entry.reply)}")


def _event_via(entry: LedgerEntry) -> str:
    """The event, and the service that carried it when the row says (`overdue-invoice via smtp`)."""
    return f"{entry.event} via {entry.service}" if entry.service else entry.event
