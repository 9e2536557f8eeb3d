"""Consoles that respect NO_COLOR and pipes (Rich does both), and the TTY test for prompting.

Not writing to a terminal (cron mail, a log file, a pipe), nothing is wrapped or padded to a width: an
error line stays one line however long, and a table takes the width its cells need. A reader that goes
away (`xoromail log | head -1`) is not an error: the rest of the output is dropped, the run goes on and
exits with its own status.
"""

from __future__ import annotations

import os
import re
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

UNWRAPPED_WIDTH = 4096
"""Width given to Rich off a terminal: wide enough that no table cell folds and no line wraps."""
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""What a terminal would act on rather than show (ESC sequences, C1 CSI, BEL, backspace, CR): all but tab and
newline. Server replies, files and data values reach the screen through `safe_text`, shown escaped."""
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
"""Invisible direction and format characters: a terminal would reorder the text around them (U+202E shows
`exe.pdf` for `fdp.exe`), so they are shown as `\\uNNNN` (as `addresses._BIDI`, refused in header values)."""
_C1 = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _c1_escaped(encoded: str) -> str:
    """JSON escapes C0 controls itself; DEL, the C1 controls (U+009B is a terminal's CSI) and the invisible
    direction and format characters get `\\u` escapes too, which JSON readers decode to the same text."""
    return _C1.sub(lambda found: f"\\u{ord(found.group()):04x}", encoded)


def safe_text(text: str) -> str:
    """`text` with every control character but tab and newline shown as `\\xNN`, and every invisible direction
    or format character as `\\uNNNN`."""
    shown = _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text.replace("\r\n", "\n"))
    return _BIDI.sub(lambda found: f"\\u{ord(found.group()):04x}", shown)


@cache
def out() -> Console:
    return _console(stderr=False)


@cache
def err() -> Console:
    return _console(stderr=True)


def _console(*, stderr: bool) -> Console:
    from rich.console import Console

    class _Console(Console):
        def render_str(self, text: str, **options: Any) -> Text:
            """Every string printed (markup, table cells) is made safe first: markup has no control characters,
            so nothing but data values and server replies changes."""
            return super().render_str(safe_text(text), **options)

        def on_broken_pipe(self) -> None:
            """Rich exits 1 here; a closed pipe only means nobody reads any more."""
            self.quiet = True
            stdout_gone()

    console = _Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = _Console(stderr=stderr, highlight=False, soft_wrap=True, width=UNWRAPPED_WIDTH)
    return console


def stdout_gone() -> None:
    """The reader of stdout went away: send the rest of stdout to /dev/null, so neither later writes nor
    the flush at exit raise BrokenPipeError (Python's own advice, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout already closed or not a real file: nothing left to protect
        pass


def can_prompt() -> bool:
    """Prompts only for a person at a terminal; cron jobs and pipes never wait for input."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def stdin_line() -> str:
    """The first line of standard input without its line end: how every `--…-stdin` flag reads its secret."""
    return sys.stdin.readline().rstrip("\r\n")


def stdin_secret(flag: str, what: str = "secret", *, blank_is_empty: bool = True) -> str:
    """`stdin_line()`, refused (DataError, 65) when empty, or only blanks unless `blank_is_empty` is False."""
    line = stdin_line()
    if not (line.strip() if blank_is_empty else line):
        from xoromail_cli.errors import DataError

        raise DataError(f"{flag} read an empty {what}", f"pipe the {what} on the first line of standard input")
    return line


def write_stdout(text: str) -> None:
    """Write and flush stdout; a reader that went away only stops the output."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_gone()


def print_json_line(data: dict[str, object], schema: int = 1) -> None:
    """One compact JSON object per line (JSON Lines), flushed so a reading process sees it at once.
    Every object carries its `schema` version (the object's own, or `schema`)."""
    import json

    write_stdout(_c1_escaped(json.dumps({"schema": schema, **data}, ensure_ascii=False)) + "\n")


def print_json(data: object, schema: int = 1) -> None:
    """Indented JSON; an object carries its `schema` version (its own, or `schema`)."""
    import json

    if isinstance(data, dict):
        data = {"schema": schema, **data}
    write_stdout(_c1_escaped(json.dumps(data, indent=2, ensure_ascii=False, default=str)) + "\n")
