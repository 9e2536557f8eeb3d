"""The SMTP table of a profile (`[profiles.NAME.smtp]`), and what a hand-edited one may hold."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from xoromail_cli.addresses import host_name_problem
from xoromail_cli.errors import DataError

SECURITY_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
FLAT_KEYS = ("host", "port", "security", "username", "preset")
"""Keys the first release wrote at the top of the profile table (the flat form, still read)."""
_TYPES: dict[str, tuple[type, ...]] = {"host": (str,), "port": (int,), "security": (str,), "username": (str,),
                                       "preset": (str,)}
_EXAMPLES = {"host": '"smtp.office365.com"', "port": "587", "security": '"starttls"', "username": '"…"',
             "preset": '"office365"'}


@dataclass(frozen=True, kw_only=True)
class SmtpSettings:
    """Where the SMTP server is and how to sign in to it."""

    host: str
    port: int
    security: str = "starttls"
    username: str = ""
    preset: str | None = None

    @property
    def login(self) -> str:
        return self.username

    def auth_username(self, email: str) -> str | None:
        """Who to sign in as; `security = "none"` relays sign in only when a username is set."""
        if self.security == "none":
            return self.username or None
        return self.username or email

    def to_table(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {key: value for key, value in data.items() if value not in (None, "")}

    def check(self) -> None:
        """Ranges and choices a TOML type check cannot see; raises DataError naming the field."""
        if not self.host.strip() or any(c.isspace() for c in self.host):
            raise DataError(f"host {self.host!r} is not a server name", "e.g. smtp.office365.com", field="host")
        problem = host_name_problem(self.host)
        if problem is not None:
            raise DataError(f"host {self.host[:80]!r} is not a server name: {problem}", "e.g. smtp.office365.com",
                            field="host")
        if not 1 <= self.port <= 65535:
            raise DataError(f"port {self.port} is out of range", "use 587 (STARTTLS) or 465 (SSL)", field="port")
        if self.security not in SECURITY_MODES:
            raise DataError(f"security {self.security!r} is not one of {', '.join(SECURITY_MODES)}",
                            "use starttls for port 587, ssl for port 465", field="security")

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> SmtpSettings:
        for key in table:
            if key not in _TYPES:
                raise DataError(f"unknown setting {key!r} for the smtp service",
                                f"known settings: {', '.join(_TYPES)}", field=key)
        for key in ("host", "port"):
            if key not in table:
                raise DataError(f"missing {key!r}", f"add {key} = {_EXAMPLES[key]} or re-run `xoromail setup`",
                                field=None)
        for key, value in table.items():
            if not isinstance(value, _TYPES[key]) or isinstance(value, bool):
                wanted = " or ".join(t.__name__ for t in _TYPES[key])
                raise DataError(f"{key!r} must be {wanted}, not {type(value).__name__}",
                                f"e.g. {key} = {_EXAMPLES[key]}", field=key)
        settings = cls(**dict(table))
        settings.check()
        return settings
