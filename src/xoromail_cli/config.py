"""Typed profiles read from and written to the TOML settings file.

Errors name the file, the line and the field, so a hand-edited file is easy to fix. The file is only
ever replaced whole (temp file + rename) with mode 0600: never half-written, never world-readable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xoromail_cli.addresses import check_header_value, parse_address
from xoromail_cli.errors import ConfigError, DataError, UsageError
from xoromail_cli.paths import private_dir

SERVICES = ("smtp",)
SERVICE_ALIASES = {"smtp": "smtp", "webmail": "smtp", "web-mail": "smtp"}
NOT_YET_AVAILABLE = {"exchange": "Exchange (EWS)", "google": "Email services (Google sign-in)"}
SECURITY_MODES = ("starttls", "ssl", "none")
SETUP_HINT = "run `xoromail setup` to create it"
MAX_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Profile:
    """One outgoing account and the settings its messages share."""

    name: str
    email: str
    host: str
    port: int
    security: str = "starttls"
    service: str = "smtp"
    display_name: str = ""
    username: str = ""
    preset: str | None = None
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

    @property
    def login(self) -> str:
        return self.username or self.email

    @property
    def auth_username(self) -> str | None:
        """Who to sign in as; `security = "none"` relays sign in only when a username is set."""
        if self.security == "none":
            return self.username or None
        return self.login

    def to_toml(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "name"}
        return {key: value for key, value in data.items() if value not in (None, "")}


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "email": (str,), "host": (str,), "port": (int,), "security": (str,), "service": (str,),
    "display_name": (str,), "username": (str,), "preset": (str,), "ca_file": (str,),
    "password_command": (str,), "timeout": (int, float), "company_name": (str,), "reply_to": (str,),
    "signature": (str,), "currency": (str,), "templates_dir": (str,), "ledger": (str,), "rate": (str,),
}
_REQUIRED = ("email", "host", "port")


@dataclass
class ConfigFile:
    path: Path
    profiles: dict[str, Profile]


def load(path: Path) -> ConfigFile:
    """Read every profile; a missing file is an empty configuration."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ConfigFile(path, {})
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}", "check the file's permissions and encoding") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}",
                          "fix the line named, or move the file away and run `xoromail setup`") from None
    unknown = sorted(set(data) - {"profiles"})
    if unknown:
        line = _locate(text, None, unknown[0])
        raise ConfigError(f"{path}:{line}: unknown setting {unknown[0]!r}",
                          "settings live in [profiles.NAME] tables")
    raw_profiles = data.get("profiles", {})
    if not isinstance(raw_profiles, dict):
        raise ConfigError(f"{path}:{_locate(text, None, 'profiles')}: 'profiles' must be a table",
                          "write each profile as [profiles.NAME]")
    profiles = {}
    for name, table in raw_profiles.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}:{_locate(text, None, name)}: profile {name!r} must be a table",
                              "write it as [profiles.NAME]")
        profiles[name] = _profile_from_table(path, text, name, table)
    return ConfigFile(path, profiles)


def load_profile(path: Path, name: str) -> Profile:
    config = load(path)
    if name not in config.profiles:
        known = ", ".join(sorted(config.profiles)) or "none"
        if not path.exists():
            raise ConfigError(f"no settings file at {path}", SETUP_HINT)
        raise ConfigError(f"no profile {name!r} in {path} (profiles: {known})",
                          f"run `xoromail --profile {name} setup` or pick one with --profile")
    return config.profiles[name]


def save_profile(path: Path, profile: Profile) -> None:
    """Add or replace one profile, keeping the others, with an atomic 0600 write."""
    import tomli_w

    config = load(path)
    config.profiles[profile.name] = profile
    document = {"profiles": {name: p.to_toml() for name, p in sorted(config.profiles.items())}}
    atomic_write(path, tomli_w.dumps(document).encode("utf-8"))


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never a mix."""
    private_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def normalize_service(value: str) -> str:
    key = value.strip().lower()
    if key in SERVICE_ALIASES:
        return SERVICE_ALIASES[key]
    if key in ("exchange", "ews"):
        from xoromail_cli.advisories import exchange_ews

        raise ConfigError(f"service {value!r} is not yet available in this version",
                          f"use --service smtp (Web Mail); {exchange_ews()}")
    if key in NOT_YET_AVAILABLE or key in ("email-services", "gmail-oauth"):
        raise ConfigError(f"service {value!r} is not yet available in this version",
                          "use --service smtp (Web Mail); for Gmail with a 16-character app password")
    raise ConfigError(f"unknown service {value!r}", "choose smtp (also called webmail)")


def validate_profile(profile: Profile) -> Profile:
    """Check values a TOML type check cannot: ranges, choices and addresses. Raises DataError."""
    parse_address(profile.email, "email")
    if profile.reply_to:
        parse_address(profile.reply_to, "reply_to")
    check_header_value("display_name", profile.display_name)
    if profile.company_name:
        check_header_value("company_name", profile.company_name)
    if not profile.host.strip() or any(c.isspace() for c in profile.host):
        raise DataError(f"host {profile.host!r} is not a server name", "e.g. smtp.office365.com", field="host")
    if not 1 <= profile.port <= 65535:
        raise DataError(f"port {profile.port} is out of range", "use 587 (STARTTLS) or 465 (SSL)", field="port")
    if profile.security not in SECURITY_MODES:
        raise DataError(f"security {profile.security!r} is not one of {', '.join(SECURITY_MODES)}",
                        "use starttls for port 587, ssl for port 465", field="security")
    if profile.service not in SERVICES:
        normalize_service(profile.service)
    if not 0 < profile.timeout <= MAX_TIMEOUT:
        raise DataError(f"timeout {profile.timeout} must be more than 0 and at most {MAX_TIMEOUT:g} seconds",
                        "e.g. timeout = 30", field="timeout")
    if profile.rate:
        from xoromail_cli.pacing import parse_rate

        try:
            parse_rate(profile.rate)
        except UsageError as exc:
            raise DataError(f"rate {profile.rate!r}: {exc.message}", exc.hint, field="rate") from None
    return profile


def _profile_from_table(path: Path, text: str, name: str, table: dict[str, Any]) -> Profile:
    for key in table:
        if key not in _FIELD_TYPES:
            raise ConfigError(f"{path}:{_locate(text, name, key)}: unknown setting {key!r} in profile {name!r}",
                              f"known settings: {', '.join(sorted(_FIELD_TYPES))}")
    for key in _REQUIRED:
        if key not in table:
            raise ConfigError(f"{path}:{_locate(text, name, None)}: profile {name!r} is missing {key!r}",
                              f"add {key} = … or re-run `xoromail --profile {name} setup`")
    for key, value in table.items():
        expected = _FIELD_TYPES[key]
        if not isinstance(value, expected) or isinstance(value, bool):
            wanted = " or ".join(t.__name__ for t in expected)
            raise ConfigError(f"{path}:{_locate(text, name, key)}: {key!r} must be {wanted}, "
                              f"not {type(value).__name__}", f"e.g. {key} = {_example(key)}")
    values = dict(table)
    if "service" in values:
        values["service"] = SERVICE_ALIASES.get(str(values["service"]).lower(), values["service"])
    if "timeout" in values:
        values["timeout"] = float(values["timeout"])
    profile = Profile(name=name, **values)
    try:
        return validate_profile(profile)
    except DataError as exc:
        line = _locate(text, name, exc.field if exc.field in _FIELD_TYPES else None)
        raise ConfigError(f"{path}:{line}: profile {name!r}: {exc.message}", exc.hint) from None


def _example(key: str) -> str:
    return {"port": "587", "timeout": "30"}.get(key, '"…"')


_TABLE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(?:#.*)?$")


def _locate(text: str, profile: str | None, key: str | None) -> int:
    """Best-effort line number of `key` in `[profiles.<profile>]` (or of the table itself)."""
    current: str | None = None
    table_line = 1
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE.match(line)
        if header:
            parts = [p.strip().strip('"').strip("'") for p in header.group(1).split(".")]
            current = parts[1] if len(parts) >= 2 and parts[0] == "profiles" else parts[0]
            if profile is not None and current == profile:
                table_line = number
                if key is None:
                    return number
            elif profile is None and key is not None and current == key:
                return number
            continue
        if key is None:
            continue
        in_scope = (profile is None and current is None) or (profile is not None and current == profile)
        if in_scope and re.match(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", line):
            return number
    return table_line
