"""`xoromail disconnect`: forget every secret of the profile; an OAuth grant is revoked at the provider first."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from xoromail_cli.cli.state import state_of, with_global_options


def disconnect(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask; needed when stdin is not a terminal.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Remove every secret of the profile from the secret store (a sign-in is revoked first where possible).

    Also the relay's login and a PostgreSQL ledger's password; says which were removed, or that none was stored.
    """
    from rich.markup import escape

    from xoromail_cli import config, credentials, services
    from xoromail_cli.cli.console import can_prompt, out, print_json
    from xoromail_cli.errors import UsageError
    from xoromail_cli.stores import owners

    state = state_of(ctx)
    profile = config.load_profile(state.config_path, state.profile_name)
    _refuse_if_owned_elsewhere(state.config_path, profile.name)  # before a question or a revoke
    if not yes:
        if not can_prompt():
            raise UsageError("disconnect asks before removing secrets, and stdin is not a terminal",
                             "pass --yes to remove them without asking")
        from rich.prompt import Confirm

        where = credentials.store_name()
        if not Confirm.ask(f"Remove every secret of profile {profile.name!r} from {where}?", default=False):
            raise typer.Exit(1)
    service = services.for_profile(profile)
    kinds = tuple(dict.fromkeys(("password", *service.secret_kinds, *PROFILE_SECRET_KINDS)))
    present = _stored(profile.name, kinds)
    detail = service.disconnect(profile, credentials.Secrets(profile))
    # whatever a service forgot to name is gone too, and the relay's and the ledger's secrets
    present += [kind for kind in credentials.remove_secrets(profile.name, kinds) if kind not in present]
    present = [kind for kind in present if kind != owners.OWNER_KIND]  # bookkeeping, not a secret
    owners.release(owners.profile_scope(profile.name))
    removed = _labels(present)
    if not removed:
        detail = "no secret of it was stored; nothing was removed"
    elif set(present) - set(service.secret_kinds):
        detail = f"removed from {credentials.store_name()}: {', '.join(removed)}"
    if as_json:
        print_json({"schema": 1, "ok": True, "profile": profile.name, "service": profile.service, "detail": detail,
                    "removed": present})
        return
    out().print(f"Disconnected profile {profile.name!r}: {escape(detail)}. Its settings stay in "
                f"{escape(str(state.config_path))}; run {escape(with_global_options('`xoromail setup`'))} to connect "
                "again.", soft_wrap=True)


PROFILE_SECRET_KINDS = ("relay_user", "relay_password", "ledger_password")
"""Secrets a profile has beside its service's: the relay's login (relay/credential.py) and the PostgreSQL
ledger's password (ledger/location.py); tests/test_hostile_secrets.py pins them to those modules."""


def _refuse_if_owned_elsewhere(config_path: Path, profile_name: str) -> None:
    """The profile's secrets belong to another settings file that still has the profile: they are its, not this
    file's, to remove (stores/owners.py); one whose owner is gone or lost the profile is this file's now."""
    import shlex

    from xoromail_cli.stores import owners

    name = shlex.quote(profile_name)
    owners.check(config_path, owners.profile_scope(profile_name), lambda owner: (
        f"nothing was removed; to remove them, run it there: xoromail --config {owner} --profile {name} "
        f"disconnect (or give this file's profile another name)"))


def _stored(profile_name: str, kinds: tuple[str, ...]) -> list[str]:
    """The kinds stored before the service disconnects (it removes its own); none when no store is reachable."""
    from xoromail_cli import credentials
    from xoromail_cli.errors import KeyringUnavailableError

    try:
        found = set(credentials.list_secrets(profile_name, kinds))
    except KeyringUnavailableError:
        return []
    return [kind for kind in (*kinds, *sorted(found - set(kinds))) if kind in found]


def _labels(kinds: list[str]) -> list[str]:
    labels = ["relay login" if kind.startswith("relay_") else kind.replace("_", " ") for kind in kinds]
    return list(dict.fromkeys(labels))
