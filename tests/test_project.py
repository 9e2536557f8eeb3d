"""The README's two commands are the ones CI and newcomers really run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def shell_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_quick_start_is_exactly_two_commands_demo_and_tests() -> None:
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = shell_blocks(quick_start)
    assert len(commands) == 2
    assert commands[0].endswith("xoromail demo") and "\n" not in commands[0]
    assert commands[1].endswith("-m pytest") and "\n" not in commands[1]


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    test_command = shell_blocks(readme.split("## Quick start", 1)[1])[1]
    ci = (ROOT / ".ci" / "run").read_text()
    assert f'TEST_COMMAND="{test_command}"' in ci
    assert "-eq 5" in ci
