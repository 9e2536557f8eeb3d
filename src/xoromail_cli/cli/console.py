"""Consoles that respect NO_COLOR and pipes (Rich does both), and the TTY test for prompting."""

from __future__ import annotations

import sys
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@cache
def out() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


@cache
def err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def can_prompt() -> bool:
    """Prompts only for a person at a terminal; cron jobs and pipes never wait for input."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def print_json_line(data: dict[str, object]) -> None:
    """One compact JSON object per line (JSON Lines), flushed so a reading process sees it at once."""
    import json

    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def print_json(data: object) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()
