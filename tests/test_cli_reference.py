"""docs/cli.md is generated from the real --help output and must not drift from it."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "scripts" / "gen_cli_reference.py"
REFERENCE = ROOT / "docs" / "cli.md"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_reference", GENERATOR)
    assert spec is not None, f"cannot load {GENERATOR}"
    assert spec.loader is not None, f"cannot load {GENERATOR}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_matches_the_real_help_output() -> None:
    render: Callable[[], str] = _load_generator().render
    expected = render()
    actual = REFERENCE.read_text(encoding="utf-8") if REFERENCE.exists() else ""
    assert actual == expected, (
        "docs/cli.md is out of date with the CLI's --help output: run `python scripts/gen_cli_reference.py`"
    )
