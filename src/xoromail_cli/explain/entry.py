"""What an explain entry is: a known error text (`Entry`), how it applies to one text (`Explanation`), and the
values its fix quotes (`Context`). The catalogue modules (clients, smtp, microsoft, google) build on these.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import ExitCode

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile

MAX_TEXT = 64 * 1024
"""Characters of a pasted text that are read (a whole log is not an error text)."""

MAIL_CONTEXT = re.compile(
    r"mail|smtp|postfix|\bsasl\b|starttls|\behlo\b|exchange (?:online|server)|exchangelib|\bews\b|outlook|"
    r"office ?365|microsoft 365|microsoftonline|graph\.microsoft|microsoft graph|aadsts|gsmtp|google\.auth|"
    r"accounts\.google|oauth2\.googleapis|xoromail|(?:[a-z\]]|\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}):(?:25|465|587|2525)\b(?!\.|:\d)|"
    r"\bport:? (?:25|465|587|2525)\b|\b[245]\d\d[ -][245]\.\d{1,3}\.\d{1,3}\b|"
    r"server response was|Serverantwort",
    re.IGNORECASE)
"""A text about mail: a mail word (Exchange Online, Microsoft Graph, Google sign-in: not any Exchange, Microsoft
or Google product), a mail port (`host:587`, `10.0.0.5:25`, `port 465`; not the `:25` of a time),
or an SMTP reply (`550 5.7.1`). `Entry.loose` needs one, so a database's "Connection refused" or a web API's 429 is
never explained as SMTP."""


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
        """The text with the profile's values; a command it quotes from the shared hint texts (`xoromail setup
        …`, in backquotes) carries the prefix too, as `{xoromail}` does, so it acts on the same file and profile."""
        values = {"xoromail": self.prefix, "email": self.email, "host": self.host, "tenant": self.tenant,
                  "client_id": self.client_id}
        filled = text.format_map(_Keep(values))
        if self.prefix == "xoromail":
            return filled
        return _QUOTED_COMMAND.sub(lambda _: f"`{self.prefix} ", filled)


_QUOTED_COMMAND = re.compile(r"`xoromail (?=[a-z])")
"""A command quoted without global options (`xoromail --config …` has them already)."""


class _Keep(dict[str, str]):
    """format_map that leaves an unknown `{name}` as it is."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


Text = str | Callable[[Context], str]


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One known error text: how to recognise it and what to do about it."""

    id: str
    pattern: str | None
    """A regular expression, searched case-insensitively in the pasted text: texts only this error prints."""
    title: str
    cause: Text
    fix: Text
    exit_code: ExitCode
    """The exit code xoromail itself gives for this failure (its class: auth 77, config 78, ...)."""
    source: str
    switch: str | None = None
    """The admin switch that fixes it (tenant, mailbox, security defaults, Conditional Access, Direct Send…)."""
    command: Text | None = None
    """The xoromail command to run, with `{xoromail}`, `{email}`, `{host}`… filled from the profile (or a function
    of the context, when the command depends on the profile's settings)."""
    fallback: bool = False
    """Shown only when no more specific entry matches."""
    unless: str | None = None
    """A regular expression that, found in the text, rules the entry out (another provider's text)."""
    loose: str | None = None
    """Texts other software prints too (`Connection refused`, `429`, `invalid_grant`, a bare `5.7.30` that may be a
    version): they count only in a text about mail (`MAIL_CONTEXT`)."""
    regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    loose_regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.pattern and not self.loose:
            raise ValueError(f"explain entry {self.id} recognises nothing")
        object.__setattr__(self, "regex", re.compile(self.pattern, re.IGNORECASE) if self.pattern else None)
        object.__setattr__(self, "loose_regex", re.compile(self.loose, re.IGNORECASE) if self.loose else None)

    def search(self, text: str) -> re.Match[str] | None:
        """Where the entry's text is in `text` (one line, see `normalize`), or None."""
        match = self.regex.search(text) if self.regex else None
        if match is None and self.loose_regex is not None and MAIL_CONTEXT.search(text):
            match = self.loose_regex.search(text)
        if match is None or (self.unless and re.search(self.unless, text, re.IGNORECASE)):
            return None
        return match

    @property
    def patterns(self) -> str:
        """Both patterns, for the docs' table."""
        return " | ".join(filter(None, [self.pattern, self.loose and f"(about mail:) {self.loose}"]))


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
