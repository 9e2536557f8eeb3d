"""Global options, resolved lazily so `--help` does no file or keyring work."""

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


def state_of(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, AppState) else AppState()
