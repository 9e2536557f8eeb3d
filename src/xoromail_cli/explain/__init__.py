"""`xoromail explain`: what a pasted error text means, offline, from one catalogue that is data.

The catalogue (`catalogue()`) is a list of `Entry`: a pattern, the cause, the fix, the exit class xoromail
itself gives for that failure, the admin switch that fixes it (when one does) and the source. Its fixes are the
very texts `validate`, `setup` and `send` print (they come from the services' hint tables), so the two never
disagree; tests/test_explain.py holds them to it. Nothing here touches the network, prints or exits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache

from xoromail_cli.explain.entry import MAX_TEXT, Context, Entry, Explanation, Text

__all__ = ["MAX_TEXT", "Context", "Entry", "Explanation", "as_json", "by_id", "catalogue", "explain", "normalize"]


def _text(value: Text, context: Context) -> str:
    return context.fill(value(context) if callable(value) else value)


_PYTHON_REPLY = re.compile(r"\((\d{3}), b?['\"]")


def normalize(text: str) -> str:
    """One line; a Python exception's `(535, b'5.7.8 …')` read as the reply `535 5.7.8 …` it quotes."""
    return _PYTHON_REPLY.sub(r"\1 ", " ".join(text[:MAX_TEXT].split()))


def explain(text: str, context: Context | None = None) -> list[Explanation]:
    """Every catalogue entry the text matches, most specific first; [] when none does (never a guess)."""
    context = context or Context()
    text = normalize(text)
    found: list[tuple[Entry, str]] = []
    for entry in catalogue():
        match = entry.search(text)
        if match is not None:
            found.append((entry, match.group(0)))
    if any(not entry.fallback for entry, _ in found):
        found = [(entry, matched) for entry, matched in found if not entry.fallback]
    return [Explanation(id=entry.id, title=entry.title, matched=matched, cause=_text(entry.cause, context),
                        fix=_text(entry.fix, context), exit_code=entry.exit_code, switch=entry.switch,
                        command=_text(entry.command, context) if entry.command else None, source=entry.source)
            for entry, matched in found]


@cache
def catalogue() -> tuple[Entry, ...]:
    """The whole table, in the order entries are tried and shown (the error's client first, then its reply)."""
    from xoromail_cli.explain import clients, google, microsoft, smtp

    entries = (*clients.ENTRIES, *smtp.ENTRIES, *microsoft.ENTRIES, *google.ENTRIES)
    ids = [entry.id for entry in entries]
    duplicates = {name for name in ids if ids.count(name) > 1}
    if duplicates:  # a programming error in the table, caught by every test that explains anything
        raise ValueError(f"duplicate explain entries: {sorted(duplicates)}")
    return entries


def by_id(entry_id: str) -> Entry:
    return {entry.id: entry for entry in catalogue()}[entry_id]


def as_json(text: str, explanations: list[Explanation]) -> Mapping[str, object]:
    return {"ok": bool(explanations), "recognised": bool(explanations), "text": normalize(text),
            "matches": [item.to_json() for item in explanations]}
