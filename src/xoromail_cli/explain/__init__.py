"""`xoromail explain`: what a pasted error text means, offline, from one catalogue that is data.

The catalogue (`catalogue()`) is a list of `Entry`: a pattern, the cause, the fix, the exit class xoromail
itself gives for that failure, the admin switch that fixes it (when one does) and the source. Its fixes are the
very texts `validate`, `setup` and `send` print (they come from the services' hint tables), so the two never
disagree; tests/test_explain.py holds them to it. Nothing here touches the network, prints or exits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import ExitCode

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile

MAX_TEXT = 64 * 1024
"""Characters of a pasted text that are read (a whole log is not an error text)."""


@dataclass(frozen=True, kw_only=True)
class Context:
    """The values a fix quotes: the profile's when one exists, else placeholders to replace."""

    prefix: str = "xoromail"
    """`xoromail` with the global options that select the profile (`--config`, `--profile`) when not default."""
    service: str | None = None
    email: str = "ADDRESS"
    host: str = "SERVER"
    tenant: str = "TENANT"
    client_id: str = "CLIENT_ID"
    settings: Any = None
    """The service's settings object of the profile (e.g. Microsoft365Settings), when there is one."""

    @classmethod
    def from_profile(cls, profile: Profile | None, prefix: str = "xoromail") -> Context:
        if profile is None:
            return cls(prefix=prefix)
        settings = profile.settings
        host = getattr(settings, "host", None) or getattr(settings, "smtp_server", None) or "SERVER"
        return cls(prefix=prefix, service=profile.service,
                   email=profile.email, host=str(host), tenant=str(getattr(settings, "tenant", "TENANT")),
                   client_id=str(getattr(settings, "client_id", "CLIENT_ID")), settings=settings)

    def microsoft365(self) -> Any:
        """The profile's Microsoft 365 settings, or settings with placeholders (for the shared hint texts)."""
        from xoromail_cli.services.microsoft365.settings import Microsoft365Settings

        if isinstance(self.settings, Microsoft365Settings):
            return self.settings
        return Microsoft365Settings(tenant=self.tenant, client_id=self.client_id)

    def fill(self, text: str) -> str:
        values = {"xoromail": self.prefix, "email": self.email, "host": self.host, "tenant": self.tenant,
                  "client_id": self.client_id}
        return text.format_map(_Keep(values))


class _Keep(dict[str, str]):
    """format_map that leaves an unknown `{name}` as it is."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


Text = str | Callable[[Context], str]


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One known error text: how to recognise it and what to do about it."""

    id: str
    pattern: str
    """A regular expression, searched case-insensitively in the pasted text."""
    title: str
    cause: Text
    fix: Text
    exit_code: ExitCode
    """The exit code xoromail itself gives for this failure (its class: auth 77, config 78, ...)."""
    source: str
    switch: str | None = None
    """The admin switch that fixes it (tenant, mailbox, security defaults, Conditional Access, Direct Send…)."""
    command: str | None = None
    """The xoromail command to run, with `{xoromail}`, `{email}`, `{host}`… filled from the profile."""
    fallback: bool = False
    """Shown only when no more specific entry matches."""
    unless: str | None = None
    """A regular expression that, found in the text, rules the entry out (another provider's text)."""
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern, re.IGNORECASE))


@dataclass(frozen=True, kw_only=True)
class Explanation:
    """An entry as it applies to one text and one profile."""

    id: str
    title: str
    matched: str
    cause: str
    fix: str
    exit_code: ExitCode
    switch: str | None
    command: str | None
    source: str

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "matched": self.matched, "cause": self.cause, "fix": self.fix,
                "exit_code": int(self.exit_code), "exit_name": self.exit_code.name.lower(), "switch": self.switch,
                "command": self.command, "source": self.source}


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
        match = entry.regex.search(text)
        if match is not None and not (entry.unless and re.search(entry.unless, text, re.IGNORECASE)):
            found.append((entry, match.group(0)))
    if any(not entry.fallback for entry, _ in found):
        found = [(entry, matched) for entry, matched in found if not entry.fallback]
    return [Explanation(id=entry.id, title=entry.title, matched=matched, cause=_text(entry.cause, context),
                        fix=_text(entry.fix, context), exit_code=entry.exit_code, switch=entry.switch,
                        command=context.fill(entry.command) if entry.command else None, source=entry.source)
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
