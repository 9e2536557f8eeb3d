"""Global options, resolved lazily so `--help` does no file or secret-store work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import typer

from xoromail_cli import paths


@dataclass
class AppState:
    config_option: Path | None = None
    profile_option: str | None = None

    @property
    def config_path(self) -> Path:
        return paths.config_file(self.config_option)

    @property
    def profile_name(self) -> str:
        return paths.profile_name(self.profile_option)


_current: AppState | None = None
"""The global options of the command running in this process (set once they are parsed)."""


def remember(state: AppState) -> AppState:
    """Keep the run's global options for the hints that suggest a command (`with_global_options`)."""
    global _current  # one run per process; the CLI's own state, never the core's
    _current = state
    return state


def current_config_path() -> Path:
    """The settings file of the command running in this process (for parts that run without a Context)."""
    return (_current or AppState()).config_path


def state_of(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, AppState) else AppState()


_SUGGESTED = r"`xoromail(?: --(?:config|profile) (?:'[^']*'|[^\s'`]+))* (?=[a-z])(?!(?:secrets|sink|demo)\b)"
"""A command a hint suggests, with whatever global options it already names (not `secrets`, `sink` or `demo`,
which read neither the settings file nor a profile)."""


def suggested_options(state: AppState | None = None) -> str:
    """`--config PATH --profile NAME` as this run was given them (not the defaults), so a command a hint
    suggests, typed as shown, acts on the same file and profile; empty when both are the defaults."""
    import shlex

    state = state or _current or AppState()
    options = []
    if state.config_path != paths.config_file(None):
        options += ["--config", shlex.quote(str(state.config_path))]
    from xoromail_cli.errors import UsageError

    try:
        if state.profile_name != paths.profile_name(None):
            options += ["--profile", shlex.quote(state.profile_name)]
    except UsageError:  # an invalid --profile is reported on its own
        pass
    return " ".join(options)


def with_global_options(text: str, state: AppState | None = None) -> str:
    """Every `xoromail COMMAND` in a hint carries this run's --config and --profile."""
    import re

    options = suggested_options(state)
    if not options or "`xoromail" not in text:
        return text
    return re.sub(_SUGGESTED, lambda _: f"`xoromail {options} ", text)
