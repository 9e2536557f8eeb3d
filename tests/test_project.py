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


def floor_plan() -> dict[str, str]:
    """The tree in ARCHITECTURE.md's first code block: path (relative to the package) → its line's description."""
    block = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8").split("```\n", 2)[1]
    lines = block.splitlines()
    assert lines[0] == "src/xoromail_cli/"
    plan: dict[str, str] = {}
    parents: list[str] = []
    for line in lines[1:]:
        depth = (len(line) - len(line.lstrip(" "))) // 2
        words = line.split()
        names = []
        while words and (words[0].endswith((".py", "/"))):
            names.append(words.pop(0))
        assert names, f"ARCHITECTURE.md: {line!r} names no module or folder"
        del parents[depth - 1:]
        for name in names:
            plan["".join(parents) + name] = " ".join(words)
        if names[-1].endswith("/"):
            parents.append(names[-1])
    return plan


def test_the_floor_plan_in_architecture_md_is_the_real_tree() -> None:
    package = ROOT / "src" / "xoromail_cli"
    plan = floor_plan()
    folders = {path.relative_to(package).as_posix() + "/" for path in package.iterdir()
               if path.is_dir() and path.name != "__pycache__"}
    folders |= {path.parent.relative_to(package).as_posix() + "/" for path in package.rglob("*/__init__.py")}
    modules = {path.relative_to(package).as_posix() for path in package.rglob("*.py")}
    existing = {path.relative_to(package).as_posix() + "/" for path in package.rglob("*") if path.is_dir()}
    stale = sorted(name for name in plan if name not in modules | existing)
    assert not stale, f"ARCHITECTURE.md lists what is not there: {stale}"
    unlisted = []
    for module in sorted(modules):
        folder, _, file = module.rpartition("/")
        summarised = folder and f"{folder}/" in plan and not any(
            name.startswith(f"{folder}/") and name != f"{folder}/" for name in plan)
        if module in plan or (file == "__init__.py" and not summarised):
            continue
        if summarised and (file == "__init__.py" or re.search(rf"\b{file[:-3]}\b", plan[f"{folder}/"])):
            continue
        unlisted.append(module)
    unlisted += sorted(folder for folder in folders if folder not in plan)
    assert not unlisted, f"ARCHITECTURE.md does not list: {unlisted}"


def test_architecture_md_is_linked_from_the_readme() -> None:
    assert "(ARCHITECTURE.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
