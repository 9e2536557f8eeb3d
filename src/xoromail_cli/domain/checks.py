"""The data a domain check returns: one row per check, and the report's exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from xoromail_cli.errors import ExitCode

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """One finding: `fail` hurts delivery (exit 65), `warn` is worth fixing but does not fail."""

    name: str
    status: Status
    detail: str
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "hint": self.hint}


@dataclass(frozen=True)
class DomainReport:
    domain: str
    provider: str | None
    """The provider the MX implies ("microsoft365", "google"), None for any other."""
    sender: str | None
    """The sending service the checks were made for, in words (None when neither profile nor MX names one)."""
    checks: tuple[Check, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> ExitCode:
        """0 when nothing stands in the way of delivery; 65 when a check failed."""
        return ExitCode.DATAERR if any(check.status == "fail" for check in self.checks) else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "provider": self.provider, "sender": self.sender,
                "ok": self.exit_code == ExitCode.OK, "exit_code": int(self.exit_code),
                "checks": [check.to_json() for check in self.checks]}
