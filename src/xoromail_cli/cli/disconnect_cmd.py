"""`xoromail disconnect`: forget every secret of the profile; an OAuth grant is revoked at the provider first."""

from __future__ import annotations

from typing import Annotated

import typer

from xoromail_cli.cli.state import state_of


def disconnect(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask; needed when stdin is not a terminal.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Remove every secret of the profile from the keyring (a sign-in is revoked first where possible).

    Also the relay's login and a PostgreSQL ledger's password; says which were removed, or that none was stored.
    """
    from rich.markup import escape

    from xoromail_cli import config, credentials, services
    from xoromail_cli.cli.console import can_prompt, out, print_json
    from xoromail_cli.errors import UsageError

    state = state_of(ctx)
    profile = config.load_profile(state.config_path, state.profile_name)
    if not yes:
        if not can_prompt():
            raise UsageError("disconnect asks before removing secrets, and stdin is not a terminal",
                             "pass --yes to remove them without asking")
        from rich.prompt import Confirm

        if not Confirm.ask(f"Remove every secret of profile {profile.name!r} from the keyring?", default=False):
            raise typer.Exit(1)
    service = services.for_profile(profile)
    kinds = tuple(dict.fromkeys(("password", *service.secret_kinds, *PROFILE_SECRET_KINDS)))
    present = [kind for kind in kinds if credentials.read_secret(profile.name, kind) is not None]
    detail = service.disconnect(profile, credentials.Secrets(profile))
    for kind in kinds:  # whatever a service forgot to name is gone too, and the relay's and ledger's secrets
        credentials.delete_secret(profile.name, kind)
    removed = _labels(present)
    if not removed:
        detail = "no secret of it was stored in the OS keyring; nothing was removed"
    elif set(present) - set(service.secret_kinds):
        detail = f"removed from the OS keyring: {', '.join(removed)}"
    if as_json:
        print_json({"schema": 1, "ok": True, "profile": profile.name, "service": profile.service, "detail": detail,
                    "removed": present})
        return
    out().print(f"Disconnected profile {profile.name!r}: {escape(detail)}. Its settings stay in "
                f"{escape(str(state.config_path))}; run `xoromail setup` to connect again.", soft_wrap=True)


PROFILE_SECRET_KINDS = ("relay_user", "relay_password", "ledger_password")
"""Secrets a profile has beside its service's: the relay's login (relay/credential.py) and the PostgreSQL
ledger's password (ledger/location.py); tests/test_hostile_secrets.py pins them to those modules."""


def _labels(kinds: list[str]) -> list[str]:
    labels = ["relay login" if kind.startswith("relay_") else kind.replace("_", " ") for kind in kinds]
    return list(dict.fromkeys(labels))
