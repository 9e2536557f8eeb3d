"""`xoromail secrets init-key PATH`: the key of the encrypted secrets file, for hosts without a Secret Service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

secrets_app = typer.Typer(help="The encrypted secrets file for servers: create its key.", no_args_is_help=True,
                          context_settings={"help_option_names": ["-h", "--help"]})


@secrets_app.callback()
def _group() -> None:
    """The encrypted secrets file for servers: create its key (more subcommands may follow)."""


@secrets_app.command("init-key")
def init_key(
    path: Annotated[Path, typer.Argument(metavar="PATH", help="Where to write the new key (must not exist).")],
) -> None:
    """Write a new random key (32 bytes, base64, mode 0600) for the encrypted secrets file."""
    from rich.markup import escape

    from xoromail_cli.cli.console import out
    from xoromail_cli.stores.encrypted import CREDENTIAL_NAME, KEY_ENV, init_key

    target = path.expanduser().absolute()
    init_key(target)
    shown = escape(str(target))
    out().print(
        f"[green]Created[/] {shown} (a new key, readable by you only).\n"
        f"Use it: set {KEY_ENV}={shown} for setup and every run; secrets then go to the encrypted file.\n"
        f"For a systemd service, seal it instead: `systemd-creds encrypt --name={CREDENTIAL_NAME} {shown} "
        f"/etc/credstore.encrypted/{CREDENTIAL_NAME}`, add `LoadCredentialEncrypted={CREDENTIAL_NAME}` to the "
        "unit, and delete the plain key (see docs/credentials.md).", soft_wrap=True)
