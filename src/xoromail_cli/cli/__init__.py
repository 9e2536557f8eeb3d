"""The Typer application: parses, prompts and renders; all work happens in the core modules."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from xoromail_cli import __version__
from xoromail_cli.cli.completion import profile_names
from xoromail_cli.cli.state import AppState, remember

if TYPE_CHECKING:
    from typer._click import Command as ClickCommand  # Typer ≥ 0.29 vendors Click under these names
    from typer._click import Context as ClickContext
    from typer._click import HelpFormatter

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


class LazyCommand(NamedTuple):
    """A command whose module is imported only when it runs (or its own --help is asked for)."""

    module: str
    attribute: str
    summary: str
    """`xoromail --help` shows this without importing the module; a test keeps it equal to the docstring."""


COMMANDS: dict[str, LazyCommand] = {
    "setup": LazyCommand("setup_cmd", "build_command",
                         "Create or update a profile: checked by sending a test message before it is saved."),
    "validate": LazyCommand("validate_cmd", "validate",
                            "Check the saved profile stage by stage and send a test message."),
    "send": LazyCommand("send_cmd", "send", "Send an event email to one recipient, or one per row of a batch file."),
    "templates": LazyCommand("templates_cmd", "templates_app",
                             "The event emails: list, show and export their templates."),
    "log": LazyCommand("log_cmd", "log", "List what was sent, when, to whom, with Message-ID and the server's reply."),
    "check-domain": LazyCommand("check_domain_cmd", "check_domain",
                                "Check the sender's domain: the provider its MX implies, SPF, DKIM and DMARC."),
    "disconnect": LazyCommand("disconnect_cmd", "disconnect",
                              "Remove every secret of the profile from the secret store (a sign-in is revoked first "
                              "where possible)."),
    "ledger": LazyCommand("ledger_cmd", "ledger_app", "The sent-ledger: copy it to another database."),
    "relay": LazyCommand("relay_cmd", "relay_app",
                         "Accept the ERP's mail on a local SMTP port and deliver it through the profile's service."),
    "queue": LazyCommand("queue_cmd", "queue_app", "The relay's spool: list, retry or drop the messages it keeps."),
    "config": LazyCommand("config_cmd", "config_app", "Show where settings live and what they say."),
    "secrets": LazyCommand("secrets_cmd", "secrets_app", "The encrypted secrets file for servers: create its key."),
    "explain": LazyCommand("explain_cmd", "explain", "Explain an error text from the ERP, a mail server, Microsoft "
                           "or Google: cause, switch, fix (offline)."),
    "demo": LazyCommand("demo_cmd", "demo",
                        "Try xoromail with no account and no network: a local server, a profile, a validation."),
    "sink": LazyCommand("demo_cmd", "sink",
                        "Run a local capturing SMTP server (no TLS, no auth) for trying xoromail and an ERP."),
}


def load_command(name: str) -> ClickCommand:
    """Build the real command (or command group) for `name` from its module."""
    spec = COMMANDS[name]
    target = getattr(importlib.import_module(f"xoromail_cli.cli.{spec.module}"), spec.attribute)
    if spec.attribute == "build_command":  # a command assembled at run time (setup adds each service's options)
        command: ClickCommand = target()
        command.name = name
        return command
    if not isinstance(target, typer.Typer):
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        single.command(name, context_settings=CONTEXT_SETTINGS)(target)
        target = single
    command = typer.main.get_command(target)
    command.name = name
    command.params = [param for param in command.params if param.name not in _COMPLETION]  # top level only
    return command


_COMPLETION = ("install_completion", "show_completion")


_LOADED: dict[str, ClickCommand] = {}


_PLAIN_METAVARS = {"<int>": "N", "<int range>": "N", "<float>": "NUMBER", "<float range>": "NUMBER",
                   "<path>": "PATH", "<str>": "TEXT"}
"""Typer's `<int range>`, `<str>`, `<path>` as the plain placeholders the rest of the help uses."""


def _name_only(param: TyperArgument) -> None:
    """An argument shown by its name alone in --help: Typer adds its type (`<str>`) in a column beside it, from
    `type.get_metavar` (or `<name>`), and an empty one shows none. The type is copied first: Click's types
    (STRING, a Path) are shared by every parameter. Done once: the copy's own `get_metavar` marks it."""
    import copy

    if "get_metavar" in vars(param.type):
        return
    shown = copy.copy(param.type)
    shown.get_metavar = lambda *args, **kwargs: ""  # type: ignore[method-assign]  # this copy only: no type column
    param.type = shown


def _no_flag_metavar(params: list[Any]) -> list[Any]:
    """Typer shows `<bool>` after every flag in --help, as if it took a value; a flag takes none. Every
    other value without a placeholder of its own gets a plain one (`N`, `PATH`, an argument's name)."""
    from typer.core import TyperOption

    for param in params:
        if isinstance(param, TyperArgument):
            _name_only(param)  # its name (EVENT, DIR) is its placeholder: no `<str>` beside it
        if param.metavar is not None:
            continue
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
        elif isinstance(param, TyperArgument) and param.name:
            param.metavar = param.name.upper()
        elif isinstance(param, TyperOption):  # choices keep Typer's `a|b|c`, which says more than a name
            name = param.type.name  # Click's metavar is the type's name in angle brackets (`<int range>`)
            param.metavar = _PLAIN_METAVARS.get(name if name.startswith("<") else f"<{name}>")
    return params


def quiet_flags(command: ClickCommand) -> ClickCommand:
    """`command` and its subcommands with no metavar shown after their flags (and their --help)."""
    names = CONTEXT_SETTINGS["help_option_names"]
    help_option = command.get_help_option(typer.Context(command, help_option_names=names))
    _no_flag_metavar([*command.params, *([help_option] if help_option is not None else [])])
    for sub in getattr(command, "commands", {}).values():
        quiet_flags(sub)
    return command


class XoromailGroup(TyperGroup):
    """Loads commands on demand, and is the one place where an XoromailError becomes output and an exit code."""

    _summaries_only = False

    def list_commands(self, ctx: ClickContext) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: ClickContext, cmd_name: str) -> ClickCommand | None:
        if cmd_name not in COMMANDS:
            return None
        if self._summaries_only:
            return TyperCommand(cmd_name, help=COMMANDS[cmd_name].summary)
        if cmd_name not in _LOADED:
            _LOADED[cmd_name] = quiet_flags(load_command(cmd_name))
        return _LOADED[cmd_name]

    def get_params(self, ctx: ClickContext) -> list[Any]:
        return _no_flag_metavar(super().get_params(ctx))

    def format_help(self, ctx: ClickContext, formatter: HelpFormatter) -> None:
        """The overview needs each command's summary only: import none of them for it."""
        self._summaries_only = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._summaries_only = False

    def invoke(self, ctx: ClickContext) -> Any:
        """Run the command; an XoromailError becomes its two lines on stderr (and, for `--json`, an error
        object on stdout) and its exit code; Ctrl-C exits 130 and SIGTERM 143; a closed stdout is quiet."""
        from xoromail_cli.errors import XoromailError
        from xoromail_cli.interrupts import interruption, sigterm_stops

        wants_json = _wants_json([*ctx._protected_args, *ctx.args])  # the subcommand's own arguments
        try:
            with sigterm_stops():
                return super().invoke(ctx)
        except XoromailError as error:
            from xoromail_cli.cli.render import report_error

            report_error(error, wants_json)
            raise typer.Exit(int(error.exit_code)) from None
        except KeyboardInterrupt as stop:
            stopped = interruption(stop, ctx.invoked_subcommand)
            _end_the_line()
            from xoromail_cli.cli.render import report_error

            report_error(stopped, wants_json)
            raise typer.Exit(int(stopped.exit_code)) from None
        except BrokenPipeError:
            from xoromail_cli.cli.console import stdout_gone

            stdout_gone()
            raise typer.Exit(0) from None


def _end_the_line() -> None:
    """Ctrl-C at a prompt or under a progress bar leaves the cursor mid-line: what follows starts a line."""
    from xoromail_cli.cli.console import err, out

    for console in {id(out()): out(), id(err()): err()}.values():
        if console.is_terminal:
            console.line()
            return


def _wants_json(arguments: list[str]) -> bool:
    """Whether the invoked command was given --json (options end at `--`)."""
    options = arguments[:arguments.index("--")] if "--" in arguments else arguments
    return "--json" in options


app = typer.Typer(
    cls=XoromailGroup,
    name="xoromail",
    help="Set up, prove and use the ERP's outgoing company email account.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
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
        "--profile", metavar="NAME", envvar="XOROMAIL_PROFILE", show_envvar=True, autocompletion=profile_names,
        help="Profile to use (default: default).")] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    ctx.obj = remember(AppState(config, profile))


def main() -> None:
    try:
        app()
    finally:  # output still buffered for a reader that left (`| head -1`) must not end in a traceback
        import sys

        try:
            sys.stdout.flush()
        except BrokenPipeError:
            from xoromail_cli.cli.console import stdout_gone

            stdout_gone()
