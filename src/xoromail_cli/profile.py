"""One outgoing account as every layer reads it: the shared settings and the service's own table.

It imports no service: the service's settings object is only known here as something that turns into a
TOML table (`to_table`) and checks itself (`check`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Profile:
    """One outgoing account: the settings every service shares, and the service's own table (`settings`)."""

    name: str
    email: str
    settings: Any
    """The service's settings object, e.g. `SmtpSettings`: its own `[profiles.NAME.<service>]` table."""
    service: str = "smtp"
    display_name: str = ""
    ca_file: str | None = None
    password_command: str | None = None
    timeout: float = 30.0
    company_name: str | None = None
    reply_to: str | None = None
    signature: str | None = None
    currency: str | None = None
    templates_dir: str | None = None
    ledger: str | None = None
    rate: str | None = None
    connections: int | None = None
    """Connections a batch may use at once (`--connections`); unset means 1."""
    keyring_backend: str | None = None
    """The keyring backend setup stored the secrets in (`keyring.backends.SecretService.Keyring`): loaded by
    name when sending, without keyring's scan of every installed backend (stores/keyrings.py)."""
    form: str = field(default="current", compare=False)
    """How the file held it: "current" (a service table) or "flat" (the first release's keys)."""

    def to_toml(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _NOT_SAVED}
        table = {key: value for key, value in data.items() if value not in (None, "")}
        table[self.service] = self.settings.to_table()
        return table


_NOT_SAVED = ("name", "settings", "form")
