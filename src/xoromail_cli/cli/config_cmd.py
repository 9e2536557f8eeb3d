"""`xoromail config show|path`: what is configured and where, the password only as set/unset."""

from __future__ import annotations

from typing import Annotated

import typer

from xoromail_cli.cli.state import state_of

config_app = typer.Typer(help="Show where settings live and what they say.", no_args_is_help=True,
                         context_settings={"help_option_names": ["-h", "--help"]})


@config_app.command("path")
def path(ctx: typer.Context) -> None:
    """Print the settings file's path."""
    typer.echo(str(state_of(ctx).config_path))


@config_app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show the profile's settings; the password only as set/unset and where it comes from."""
    from xoromail_cli import config, credentials
    from xoromail_cli.cli.console import out, print_json

    state = state_of(ctx)
    profile = config.load_profile(state.config_path, state.profile_name)
    source = credentials.password_source(profile)
    settings = profile.to_toml()
    if "ledger" in settings:  # a password typed into the URL by hand is never shown
        from xoromail_cli.ledger_url import redact

        settings["ledger"] = redact(settings["ledger"])
    data = {"profile": profile.name, "file": str(state.config_path), **settings,
            "password": {"set": source.kind != "unset", "source": source.kind, "detail": source.detail}}
    if as_json:
        print_json(data)
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Profile {profile.name!r} ({escape(str(state.config_path))})", title_justify="left",
                  show_header=False)
    table.add_column("setting", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in settings.items():
        table.add_row(key, escape(str(value)))
    state_text = "[green]set[/]" if source.kind != "unset" else "[red]unset[/]"
    table.add_row("password", f"{state_text} ({escape(source.detail)})")
    out().print(table)
