"""`xoromail relay users add|list|remove|password`: the relay's logins, each delivering through a profile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xoromail_cli.cli.console import stdin_line
from xoromail_cli.cli.state import state_of

users_app = typer.Typer(help="The relay's logins: each ERP login delivers through its own profile.",
                        no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})
PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of standard input (else one is generated "
                             "and shown once).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _password(from_stdin: bool) -> str | None:
    return stdin_line() if from_stdin else None


def _show(name: str, generated: str | None, as_json: bool, done: str, notes: list[str] | None = None) -> None:
    from xoromail_cli.cli.console import out, print_json_line

    if as_json:
        print_json_line({"ok": True, "login": name, "password": generated, **({"notes": notes} if notes else {})})
        return
    out().print(done, markup=False)
    if generated is not None:
        out().print(f"password (shown this once, give it to the ERP): {generated}", markup=False)
    for note in notes or ():
        out().print(f"note: {note}", markup=False)


@users_app.command("add")
def add(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME", help="The login the ERP uses.")],
        profile: Annotated[str, typer.Option("--profile", metavar="P", help="The profile it delivers through.")],
        senders: Annotated[list[str] | None, typer.Option(
            "--from", metavar="ADDR", help="Another From it may send as (repeatable); the profile's address "
                                           "always.")] = None,
        password_stdin: PasswordStdin = False, as_json: JsonOption = False) -> None:
    """Add a login: its profile and From addresses in the settings file, its password in the secret store."""
    from xoromail_cli.addresses import parse_address
    from xoromail_cli.relay.users import RelayLogin, add_login, check_login_name, left_out, load_logins

    path = state_of(ctx).config_path
    login = RelayLogin(check_login_name(name), profile, tuple(parse_address(a, "--from") for a in senders or ()))
    first = not load_logins(path)
    generated, adopted = add_login(path, login, _password(password_stdin))
    kept = [f"kept the one-login relay's login {one.name} (profile {one.profile}) as a login of the settings file, "
            "with its password: `xoromail relay` now serves the settings file's logins, so the program using it "
            f"keeps working (`xoromail relay users remove {one.name}` if it should not)" for one in adopted]
    notes = kept + (left_out(path, load_logins(path)) if first else [])
    _show(name, generated, as_json, f"relay login {name} added: delivers through profile {profile}", notes)


@users_app.command("list")
def list_users(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show every login, its profile and the From addresses it may use (never a password)."""
    from rich.markup import escape
    from rich.table import Table

    from xoromail_cli import config
    from xoromail_cli.cli.console import out, print_json_line
    from xoromail_cli.relay.users import load_logins

    path = state_of(ctx).config_path
    logins = load_logins(path)
    profiles = config.load(path).profiles
    if as_json:
        for login in logins.values():
            known = profiles.get(login.profile)
            print_json_line({**login.to_json(), "mailbox": known.email if known else None})
        return
    if not logins:
        _no_logins(path)
        return
    table = Table(title_justify="left")
    for column in ("login", "profile", "may send as"):
        table.add_column(column, overflow="fold")
    for login in logins.values():
        known = profiles.get(login.profile)
        addresses = [known.email if known else f"(no profile {login.profile})", *login.senders]
        table.add_row(escape(login.name), escape(login.profile), escape(", ".join(addresses)))
    out().print(table)


def _no_logins(path: Path) -> None:
    """No login in the settings file: name the one-login relays' logins, which work all the same."""
    from xoromail_cli.cli.console import out
    from xoromail_cli.relay.users import one_login_relays

    ones = [f"{login.name} (profile {login.profile}: `xoromail --profile {login.profile} relay`)"
            for login, _ in one_login_relays(path)]
    if ones:
        out().print(f"The settings file has no relay logins; the one-login relay's: {', '.join(ones)}. Add "
                    "logins with `xoromail relay users add NAME --profile P` (the first keeps these).", markup=False)
    else:
        out().print("The relay has no logins: add one with `xoromail relay users add NAME --profile P`.",
                    markup=False)


@users_app.command("remove")
def remove(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")],
           as_json: JsonOption = False) -> None:
    """Remove a login and its password; a running relay refuses it after its next start."""
    from xoromail_cli.cli.console import out, print_json_line
    from xoromail_cli.relay.users import remove_login

    remove_login(state_of(ctx).config_path, name)
    if as_json:
        print_json_line({"ok": True, "login": name, "removed": True})
    else:
        out().print(f"relay login {name} removed", markup=False)


@users_app.command("password")
def password(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME")],
             password_stdin: PasswordStdin = False, as_json: JsonOption = False) -> None:
    """Give a login a new password (generated and shown once unless read from stdin)."""
    from xoromail_cli.relay.users import rotate_password

    generated = rotate_password(state_of(ctx).config_path, name, _password(password_stdin))
    _show(name, generated, as_json, f"relay login {name}: new password stored (restart the relay to use it)")
