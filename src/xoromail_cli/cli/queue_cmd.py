"""`xoromail queue list|status|retry|drop`: the relay's spool, for people and scripts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xoromail_cli.cli.state import state_of

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile
    from xoromail_cli.relay.spool import Spool

queue_app = typer.Typer(help="The relay's spool: list, retry or drop the messages it keeps; status.",
                        no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})
SpoolOption = Annotated[Path | None, typer.Option("--spool", metavar="DIR", file_okay=False,
                                                  help="The spool folder (default: the profile's).")]


@queue_app.callback()
def _group() -> None:
    """The relay's spool: list, retry or drop the messages it keeps; status."""


def _spool(ctx: typer.Context, folder: Path | None) -> Spool:
    from xoromail_cli import config, paths
    from xoromail_cli.relay.spool import Spool

    if folder is not None:
        return Spool(folder)
    state = state_of(ctx)
    profile = config.load_profile(state.config_path, state.profile_name)
    return Spool(paths.state_dir() / "relay" / profile.name)


def _when(stamp: float) -> str:
    return f"{datetime.fromtimestamp(stamp, UTC):%Y-%m-%d %H:%M:%S}" if stamp else "now"


@queue_app.command("list")
def list_queue(ctx: typer.Context, spool_dir: SpoolOption = None,
               as_json: Annotated[bool, typer.Option("--json", help="One JSON object per message.")] = False) -> None:
    """Show every message the relay keeps: queued ones first, then those refused for good."""
    from rich.markup import escape
    from rich.table import Table

    from xoromail_cli.cli.console import out, print_json_line

    entries = list(_spool(ctx, spool_dir).entries())
    if as_json:
        for entry in entries:
            print_json_line(entry.to_json())
        return
    console = out()
    if not entries:
        console.print("The spool is empty.")
        return
    table = Table(title_justify="left")
    for column in ("id", "state", "received (UTC)", "to", "tries", "next try (UTC)", "message-id / last reply"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        next_try = _when(entry.state.next_attempt) if entry.where == "queue" else "-"
        state = "in doubt" if entry.state.in_doubt else ("queued" if entry.where == "queue" else "failed")
        table.add_row(entry.id, state, _when(entry.received_at), escape(", ".join(entry.recipients)),
                      str(entry.state.attempts), next_try,
                      escape(f"{entry.message_id}\n{entry.state.last_reply}".strip()))
    console.print(table)


@queue_app.command("status")
def status(ctx: typer.Context, spool_dir: SpoolOption = None,
           tls_cert: Annotated[Path | None, typer.Option(
               "--tls-cert", metavar="PEM", dir_okay=False,
               help="The relay's TLS certificate, to warn 21 days before it expires.")] = None,
           as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False) -> None:
    """How many messages the relay keeps, and what the profile needs that expires soon (with the renewing command)."""
    from xoromail_cli.cli.console import out, print_json
    from xoromail_cli.services import expiry

    profile = _profile(ctx)
    entries = list(_spool(ctx, spool_dir).entries())
    queued = [entry for entry in entries if entry.where == "queue"]
    counts = {"queued": len(queued), "in_doubt": sum(entry.state.in_doubt for entry in queued),
              "failed": len(entries) - len(queued)}
    oldest = min((entry.received_at for entry in queued), default=None)
    notes = expiry.notes_for(profile, relay_certificate=tls_cert) if profile is not None else []
    if as_json:
        print_json({**counts, "oldest_queued": _when(oldest) if oldest else None,
                    "expiring": [note.to_json() for note in notes]})
        return
    since = f", the oldest since {_when(oldest)} UTC" if oldest else ""
    lines = [f"{counts['queued']} queued ({counts['in_doubt']} in doubt){since}; {counts['failed']} failed"]
    lines += [f"note: {note.text()}" for note in notes]
    out().print("\n".join(lines), markup=False, highlight=False)


def _profile(ctx: typer.Context) -> Profile | None:
    """The profile whose expiry notes `status` shows; None when it cannot be read (the spool is shown anyway)."""
    from xoromail_cli import config
    from xoromail_cli.errors import XoromailError

    state = state_of(ctx)
    try:
        return config.load_profile(state.config_path, state.profile_name)
    except XoromailError:
        return None


@queue_app.command("retry")
def retry(ctx: typer.Context, spool_id: Annotated[str, typer.Argument(metavar="ID")],
          spool_dir: SpoolOption = None) -> None:
    """Try a message again now (a failed one goes back into the queue); a running relay picks it up."""
    from xoromail_cli.cli.console import out
    from xoromail_cli.relay.spool import check_id

    where = _spool(ctx, spool_dir).retry(check_id(spool_id))
    out().print(f"{spool_id}: due now" + (" (back from failed)" if where == "failed" else ""))


@queue_app.command("drop")
def drop(ctx: typer.Context, spool_id: Annotated[str, typer.Argument(metavar="ID")],
         spool_dir: SpoolOption = None) -> None:
    """Remove a message from the spool for good: it is not delivered."""
    from xoromail_cli.cli.console import out
    from xoromail_cli.relay.spool import check_id

    _spool(ctx, spool_dir).drop(check_id(spool_id))
    out().print(f"{spool_id}: dropped")
