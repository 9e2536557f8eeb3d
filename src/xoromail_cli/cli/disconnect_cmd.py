"""`xoromail disconnect`: forget every secret of the profile; an OAuth grant is revoked at the provider first."""

from __future__ import annotations

from typing import Annotated

import typer

from xoromail_cli.cli.state import state_of, with_global_options


def disconnect(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask; needed when stdin is not a terminal.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Remove the profile's password or sign-in from the keyring (revoking it first where possible)."""
    from rich.markup import escape

    from xoromail_cli import config, credentials, services
    from xoromail_cli.cli.console import can_prompt, out, print_json
    from xoromail_cli.errors import UsageError

    state = state_of(ctx)
    profile = config.load_profile(state.config_path, state.profile_name)
    service = services.for_profile(profile)
    if not _anything_stored(profile.name, ("password", *service.secret_kinds)):
        detail = "nothing to remove: no password or sign-in of this profile is in the OS keyring"
        if as_json:
            print_json({"schema": 1, "ok": True, "profile": profile.name, "service": profile.service,
                        "removed": False, "detail": detail})
            return
        out().print(f"Nothing to remove: profile {profile.name!r} has no password or sign-in in the OS keyring "
                    "(it was disconnected already, or never stored one).", soft_wrap=True)
        return
    if not yes:
        if not can_prompt():
            raise UsageError("disconnect asks before removing secrets, and stdin is not a terminal",
                             "pass --yes to remove them without asking")
        from rich.prompt import Confirm

        if not Confirm.ask(f"Remove every secret of profile {profile.name!r} from the keyring?", default=False):
            raise typer.Exit(1)
    detail = service.disconnect(profile, credentials.Secrets(profile))
    for kind in ("password", *service.secret_kinds):  # whatever a service forgot to name is gone too
        credentials.delete_secret(profile.name, kind)
    if as_json:
        print_json({"schema": 1, "ok": True, "profile": profile.name, "service": profile.service, "removed": True,
                    "detail": detail})
        return
    out().print(f"Disconnected profile {profile.name!r}: {escape(detail)}. Its settings stay in "
                f"{escape(str(state.config_path))}; run {escape(with_global_options('`xoromail setup`'))} to connect "
                "again.", soft_wrap=True)


def _anything_stored(profile: str, kinds: tuple[str, ...]) -> bool:
    """Whether the keyring holds any of these secrets of the profile; a keyring that cannot be read counts as
    holding them (disconnect then tries, and says what it could do)."""
    from xoromail_cli import credentials
    from xoromail_cli.errors import XoromailError

    try:
        return any(credentials.read_secret(profile, kind) is not None for kind in kinds)
    except XoromailError:
        return True
