"""`xoromail config show|path`: what is configured and where, the password only as set/unset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xoromail_cli.cli.state import state_of

if TYPE_CHECKING:
    from xoromail_cli.credentials import PasswordSource

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
    from xoromail_cli import config, credentials, services
    from xoromail_cli.cli.console import print_json

    state = state_of(ctx)
    profile = config.load_profile(state.config_path, state.profile_name)
    source = credentials.password_source(profile)
    store = _store()
    owner, owner_text = _owner(state.config_path, profile.name)
    service = services.for_profile(profile)
    other_secrets = {kind: _stored(profile.name, kind)
                     for kind in service.secret_kinds if kind != "password"}
    form = ("current" if profile.form == "current"
            else "flat (the first release's form; rewritten with a service table when the profile is next saved)")
    settings = profile.to_toml()
    if "ledger" in settings:  # a password typed into the URL by hand is never shown
        from xoromail_cli.ledger.location import redact

        settings["ledger"] = redact(settings["ledger"])
    data: dict[str, object] = {"schema": 2, "profile": profile.name, "file": str(state.config_path), "form": form,
                               **settings}
    signs_in = service.needs_password(profile.settings, profile.email)
    if "password" in service.secret_kinds:
        data["password"] = _password_json(source, signs_in)
    data["secrets"] = {kind: state for kind, state in other_secrets.items()}
    data["secret_store"] = store
    data["secrets_owner"] = owner
    if as_json:
        print_json(data)
        return
    from rich.markup import escape

    from xoromail_cli.cli.render import print_rows

    rows: list[tuple[str, str]] = []
    for key, value in settings.items():
        if isinstance(value, dict):
            rows += [(f"{key}.{sub_key}", escape(str(sub_value))) for sub_key, sub_value in value.items()]
        else:
            rows.append((key, escape(str(value))))
    rows.append(("form", escape(form)))
    if "password" in service.secret_kinds:
        rows.append(("password", _password_text(source, signs_in)))
    where = escape(str(store["name"] or "no usable store"))
    for kind, present in other_secrets.items():
        shown = {"set": f"[green]set[/] ({where})", "unreachable": f"[red]unreachable[/] ({where})"}
        rows.append((kind.replace("_", " "), shown.get(present, "[red]unset[/]")))
    rows.append(("secret store", _store_text(store)))
    if owner_text is not None:
        rows.append(("secrets of", owner_text))
    print_rows(f"Profile {profile.name!r} ({escape(str(state.config_path))})", ("setting", "value"), rows,
               show_header=False)


def _password_json(source: PasswordSource, signs_in: bool) -> dict[str, object]:
    """The password's state; a profile whose server takes mail without sign-in has none by design (`needed`
    false, source "none"), whatever the secret store holds or cannot be read."""
    from xoromail_cli.credentials import NO_SIGN_IN

    if not signs_in:
        return {"set": False, "needed": False, "source": "none", "detail": NO_SIGN_IN,
                "keyring_reachable": not source.unreachable}
    return {"set": source.kind != "unset", "needed": True, "source": source.kind, "detail": source.detail,
            "keyring_reachable": not source.unreachable}


def _password_text(source: PasswordSource, signs_in: bool) -> str:
    from rich.markup import escape

    from xoromail_cli.credentials import NO_SIGN_IN

    if not signs_in:
        return f"none ({NO_SIGN_IN})"
    state_text = "[green]set[/]" if source.kind != "unset" else (
        "[red]unreachable[/]" if source.unreachable else "[red]unset[/]")
    return f"{state_text} ({escape(source.detail)})"


def _owner(config_path: Path, profile_name: str) -> tuple[str | None, str | None]:
    """The other settings file the profile's secrets are recorded for (stores/owners.py), and the table's line
    on it; (None, None) when they are this file's, or nobody's."""
    from rich.markup import escape

    from xoromail_cli.errors import SecretsOwnedElsewhereError
    from xoromail_cli.stores import owners

    try:
        former = owners.check(config_path, owners.profile_scope(profile_name), lambda owner: owner)
    except SecretsOwnedElsewhereError as error:
        return error.owner, (f"[yellow]{escape(error.owner)}[/] (another settings file with this profile: setup "
                             "and disconnect from this file refuse to change them)")
    if former is None:
        return None, None
    return str(former), f"{escape(str(former))} (no longer has this profile: setup from this file takes them over)"


def _store_text(store: dict[str, object]) -> str:
    """The `secret store` cell: the store's name, and when it is refused, why; a name the reason already
    quotes (a refused plain file: its path) is shown once, in red, inside the reason."""
    from rich.markup import escape

    where = escape(str(store["name"] or "no usable store"))
    if store["usable"]:
        return where
    problem = escape(str(store["problem"]))
    if store["name"] and where in problem:
        return problem.replace(where, f"[red]{where}[/]", 1)
    return f"[red]{where}[/] ({problem})"


def _store() -> dict[str, object]:
    """What holds this profile's secrets here: its name, whether it encrypts, or why none may be used."""
    from xoromail_cli import credentials
    from xoromail_cli.errors import KeyringUnavailableError

    name: str | None = None
    try:
        store = credentials.current_store()
        name = store.label
        store.check(writing=False)
    except KeyringUnavailableError as error:
        return {"name": name, "usable": False, "encrypts": None, "problem": error.message}
    return {"name": name, "usable": True, "encrypts": store.encrypts, "problem": None}


def _stored(profile_name: str, kind: str) -> str:
    """"set", "unset", or "unreachable" when no store can be reached here (cron without D-Bus, no key)."""
    from xoromail_cli import credentials
    from xoromail_cli.errors import KeyringUnavailableError

    try:
        return "set" if credentials.read_secret(profile_name, kind) is not None else "unset"
    except KeyringUnavailableError:
        return "unreachable"
