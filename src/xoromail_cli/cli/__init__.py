"""The Typer application: parses, prompts and renders; all work happens in the core modules."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from xoromail_cli import __version__
from xoromail_cli.cli.state import AppState

if TYPE_CHECKING:
    from typer._click import Context as ClickContext  # Typer ≥ 0.29 vendors Click under this name


class XoromailGroup(TyperGroup):
    """The one place where an XoromailError becomes a message, a hint and an exit code."""

    def invoke(self, ctx: ClickContext) -> Any:
        from xoromail_cli.errors import XoromailError

        try:
            return super().invoke(ctx)
        except XoromailError as error:
            from xoromail_cli.cli.render import print_error

            print_error(error)
            raise typer.Exit(int(error.exit_code)) from None


app = typer.Typer(
    cls=XoromailGroup,
    name="xoromail",
    help="Set up, prove and use the ERP's outgoing company email account.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"xoromail {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="PATH", envvar="XOROMAIL_CONFIG", show_envvar=True, dir_okay=False,
        help="Settings file (default: config.toml in the user config dir).")] = None,
    profile: Annotated[str | None, typer.Option(
        "--profile", metavar="NAME", envvar="XOROMAIL_PROFILE", show_envvar=True,
        help="Profile to use (default: default).")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    ctx.obj = AppState(config, profile)


def _register() -> None:
    from xoromail_cli.cli import config_cmd, demo_cmd, log_cmd, send_cmd, setup_cmd, templates_cmd, validate_cmd

    app.command("setup")(setup_cmd.setup)
    app.command("validate")(validate_cmd.validate)
    app.command("send")(send_cmd.send)
    app.add_typer(templates_cmd.templates_app, name="templates")
    app.command("log")(log_cmd.log)
    app.add_typer(config_cmd.config_app, name="config")
    app.command("demo")(demo_cmd.demo)
    app.command("sink")(demo_cmd.sink)


_register()


def main() -> None:
    app()
