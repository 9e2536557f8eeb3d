from __future__ import annotations

import os
import re
import subprocess

from tests.support.cli import SCRIPT
from tests.support.terminal import Terminal

COLOUR = re.compile(r"\x1b\[[0-9;]*?(?:3[0-8]|9[0-7])(?:;[0-9]+)*m")


def test_colour_at_a_terminal_and_none_with_no_color_or_a_pipe() -> None:
    env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"}
    coloured = Terminal(["config", "path", "--help"], env)
    assert coloured.wait() == 0
    assert COLOUR.search(coloured.text)
    plain = Terminal(["config", "path", "--help"], {**env, "NO_COLOR": "1"})
    assert plain.wait() == 0
    assert not COLOUR.search(plain.text)
    piped = subprocess.run([SCRIPT, "templates", "list"], env=env, capture_output=True, text=True, check=True)
    assert "\x1b[" not in piped.stdout


def test_no_prompt_without_a_terminal(config_path: object) -> None:
    completed = subprocess.run([SCRIPT, "--config", str(config_path), "setup"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=30, check=False)
    assert completed.returncode == 2
    assert "missing --email" in completed.stderr
