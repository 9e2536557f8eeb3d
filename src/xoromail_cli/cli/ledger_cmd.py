"""`xoromail ledger copy`: move a sent-ledger (SQLite to PostgreSQL, say) without losing a row."""

from __future__ import annotations

from typing import Annotated

import typer

from xoromail_cli.cli.state import state_of

ledger_app = typer.Typer(help="The sent-ledger: copy it to another database.", no_args_is_help=True,
                         context_settings={"help_option_names": ["-h", "--help"]})


@ledger_app.callback()
def _group() -> None:
    """The sent-ledger: copy it to another database (more subcommands may follow, so this stays a group)."""


@ledger_app.command("copy")
def copy(
    ctx: typer.Context,
    to: Annotated[str, typer.Option(
        "--to", metavar="URL", help="The ledger to copy into: postgresql://user@host/db (password in PGPASSWORD "
        "or ~/.pgpass), sqlite:///path or a path.")],
    source: Annotated[str | None, typer.Option("--from", metavar="URL",
                                               help="The ledger to copy from (default: the profile's).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Copy every row (every state) of a ledger into another; running it again adds nothing."""
    from xoromail_cli import config, ledger
    from xoromail_cli.cli.console import out, print_json
    from xoromail_cli.ledger import location as ledger_url

    state = state_of(ctx)
    ledger_url.refuse_password(to, "--to")
    if source is not None:
        ledger_url.refuse_password(source, "--from")
    profile = config.load(state.config_path).profiles.get(state.profile_name)
    if source is not None:
        origin = ledger_url.parse(source)
    elif profile is not None:
        origin = ledger.location_for(profile)
    else:
        from xoromail_cli import paths

        origin = ledger_url.location(None, paths.state_dir() / "ledger.sqlite3")
    result = ledger_url.copy_ledger(origin, ledger_url.parse(to), state.profile_name)
    if as_json:
        print_json({"from": result.source, "to": result.target, "copied": result.copied,
                    "updated": result.updated, "unchanged": result.unchanged})
        return
    from rich.markup import escape

    out().print(f"Copied {result.copied} row(s) from {escape(result.source)} to {escape(result.target)}; "
                f"{result.updated} updated, {result.unchanged} already there.")
