"""`xoromail explain`: what a pasted error text means and what fixes it — offline, from the catalogue."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from xoromail_cli.cli.state import state_of

if TYPE_CHECKING:
    from xoromail_cli.explain import Context, Explanation

NO_MATCH_EXIT = 1
"""Exit code when the text is not in the catalogue (documented in docs/explain.md): no guess is made."""


def explain(
    ctx: typer.Context,
    text: Annotated[list[str] | None, typer.Argument(
        metavar="[TEXT]...", help="The error text (quote it), or - to read it from stdin (also read when stdin is "
                                  "not a terminal and no TEXT is given).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")] = False,
) -> None:
    """Explain an error text from the ERP, a mail server, Microsoft or Google: cause, switch, fix (offline)."""
    from xoromail_cli import explain as catalogue
    from xoromail_cli.cli.console import print_json, write_stdout

    pasted = _read(text or [])
    found = catalogue.explain(pasted, _context(ctx))
    if as_json:
        print_json(dict(catalogue.as_json(pasted, found)))
    elif found:
        write_stdout("\n".join(_render(item) for item in found))
    else:
        sys.stderr.write("no match: this text is not in xoromail's catalogue of known errors (nothing was guessed); "
                         "see docs/troubleshooting.md, or run `xoromail validate --trace` to see the exchange\n")
    raise typer.Exit(0 if found else NO_MATCH_EXIT)


def _read(words: list[str]) -> str:
    from xoromail_cli.cli.console import can_prompt
    from xoromail_cli.errors import DataError, UsageError
    from xoromail_cli.explain import MAX_TEXT

    if words in ([], ["-"]):
        if not words and can_prompt():
            raise UsageError("no error text given",
                             "paste it as an argument in quotes, or pipe it: `xoromail explain - < error.txt`")
        data = sys.stdin.read(MAX_TEXT)
    else:
        data = " ".join(words)
    if not data.strip():
        raise DataError("the error text is empty", "paste the whole message the ERP or server showed")
    return data


def _context(ctx: typer.Context) -> Context:
    """The profile's values for the commands shown; without a usable profile, placeholders (never an error)."""
    from xoromail_cli import config
    from xoromail_cli.errors import XoromailError
    from xoromail_cli.explain import Context

    state = state_of(ctx)
    prefix = config.setup_command(state.config_path, state.profile_name).removesuffix(" setup")
    try:
        profile = config.load_profile(state.config_path, state.profile_name)
    except XoromailError:
        profile = None
    return Context.from_profile(profile, prefix)


def _render(item: Explanation) -> str:
    lines = [f"{item.title}  [exit class {int(item.exit_code)} {item.exit_code.name.lower()}]",
             f"  matched: {item.matched}", f"  cause:   {item.cause}"]
    lines.append(f"  switch:  {item.switch}" if item.switch else "  switch:  none: fixed on this side")
    lines.append(f"  fix:     {item.fix}")
    if item.command:
        lines.append(f"  run:     {item.command}")
    lines.append(f"  source:  {item.source}")
    return "\n".join(lines) + "\n"
