"""Tab completion of values: event names wherever an event is asked for, profile names for --profile.

Runs inside the shell's completion request: it must be quick and never fail (a broken settings file simply
offers no profile names).
"""

from __future__ import annotations

from pathlib import Path

import typer


def event_names(incomplete: str) -> list[str]:
    """The events `send --event`, `log --event` and `templates show` know (plus `relay` for `log`)."""
    from xoromail_cli.compose.events import EVENTS

    return [name for name in EVENTS if name.startswith(incomplete)]


def profile_names(ctx: typer.Context, incomplete: str) -> list[str]:
    """The profiles of the settings file in use (`--config` when it was typed before, else the default)."""
    from xoromail_cli import config, paths
    from xoromail_cli.errors import XoromailError

    given = ctx.params.get("config")
    try:
        names = config.load(paths.config_file(Path(given) if given else None)).profiles
    except (XoromailError, OSError, ValueError):
        return []
    return sorted(name for name in names if name.startswith(incomplete))
