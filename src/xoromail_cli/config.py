"""Typed profiles read from and written to the TOML settings file.

Errors name the file, the line and the field, so a hand-edited file is easy to fix. The file is only
ever replaced whole (temp file + rename) with mode 0600: never half-written, never world-readable.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xoromail_cli.addresses import check_header_value, parse_address
from xoromail_cli.errors import ConfigError, DataError, UsageError
from xoromail_cli.paths import atomic_write
from xoromail_cli.profile import Profile

MAX_TIMEOUT = 3600.0
MAX_CONNECTIONS = 10


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "email": (str,), "service": (str,), "display_name": (str,), "ca_file": (str,),
    "password_command": (str,), "timeout": (int, float), "company_name": (str,), "reply_to": (str,),
    "signature": (str,), "currency": (str,), "templates_dir": (str,), "ledger": (str,), "rate": (str,),
    "connections": (int,), "keyring_backend": (str,),
}
_CLASS_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


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
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(f"{path}: arrays or tables nested too deeply to read",
                          "settings are flat tables: fix the file, or move it away and run `xoromail setup`") from None
    unknown = sorted(set(data) - {"profiles", "relay"})  # [relay.users.NAME]: relay/users.py reads those
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


def setup_command(path: Path, name: str) -> str:
    """The setup command line that creates this profile in this file: with the same global options."""
    import shlex

    from xoromail_cli import paths

    options = [] if path == paths.config_file(None) else ["--config", shlex.quote(str(path))]
    options += [] if name == paths.profile_name(None) else ["--profile", shlex.quote(name)]
    return " ".join(["xoromail", *options, "setup"])


def load_profile(path: Path, name: str) -> Profile:
    config = load(path)
    if name not in config.profiles:
        known = ", ".join(sorted(config.profiles)) or "none"
        if not path.exists():
            raise ConfigError(f"no settings file at {path}", f"run `{setup_command(path, name)}` to create it")
        raise ConfigError(f"no profile {name!r} in {path} (profiles: {known})",
                          f"run `{setup_command(path, name)}` or pick one with --profile")
    return config.profiles[name]


def save_profile(path: Path, profile: Profile) -> None:
    """Add or replace one profile, keeping the others, with an atomic 0600 write."""
    import tomli_w

    load(path)  # refuse to rewrite a file we cannot read correctly
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        document = {}
    profiles = document.setdefault("profiles", {})
    profiles[profile.name] = profile.to_toml()  # the others stay exactly as they were, flat form included
    document["profiles"] = dict(sorted(profiles.items()))
    atomic_write(path.resolve(), tomli_w.dumps(document).encode("utf-8"))  # a symlink stays one: its file is written


def normalize_service(value: str) -> str:
    """The registry's name for a service, from any of its names (`webmail`, `ews`, …)."""
    from xoromail_cli.services import resolve_name

    return resolve_name(value)


def validate_profile(profile: Profile) -> Profile:
    """Check values a TOML type check cannot: ranges, choices and addresses. Raises DataError."""
    parse_address(profile.email, "email")
    if profile.reply_to:
        parse_address(profile.reply_to, "reply_to")
    check_header_value("display_name", profile.display_name)
    if profile.company_name:
        check_header_value("company_name", profile.company_name)
    profile.settings.check()
    if not 0 < profile.timeout <= MAX_TIMEOUT:
        raise DataError(f"timeout {profile.timeout} must be more than 0 and at most {MAX_TIMEOUT:g} seconds",
                        "e.g. timeout = 30", field="timeout")
    if profile.connections is not None and not 1 <= profile.connections <= MAX_CONNECTIONS:
        raise DataError(f"connections {profile.connections} must be from 1 to {MAX_CONNECTIONS}",
                        "e.g. connections = 3 (most relays allow a few per client)", field="connections")
    if profile.keyring_backend is not None and not _CLASS_PATH.fullmatch(profile.keyring_backend):
        raise DataError(f"keyring_backend {profile.keyring_backend!r} is not a class path (module.Class)",
                        'e.g. keyring_backend = "keyring.backends.SecretService.Keyring", or remove the line: '
                        "setup writes it", field="keyring_backend")
    if profile.rate:
        from xoromail_cli.pacing import parse_rate

        try:
            parse_rate(profile.rate)
        except UsageError as exc:
            raise DataError(f"rate {profile.rate!r}: {exc.message}", exc.hint, field="rate") from None
    return profile


def _profile_from_table(path: Path, text: str, name: str, table: dict[str, Any]) -> Profile:
    from xoromail_cli import services

    service_name = _service_name(path, text, name, table)
    service = services.get(service_name)
    service_table, form = _service_table(path, text, name, table, service_name)
    _check_keys(path, text, name, table, service_name, service_table if form == "flat" else None)
    sub = None if form == "flat" else service_name
    try:
        settings = service.settings_from_table(service_table or {})
    except DataError as exc:
        raise _settings_error(path, text, name, service_name, sub, bool(service_table), exc) from None
    values = {key: value for key, value in table.items() if key in _FIELD_TYPES}
    values["service"] = service_name
    if "timeout" in values:
        values["timeout"] = float(values["timeout"])
    profile = Profile(name=name, settings=settings, form=form, **values)
    try:
        return validate_profile(profile)
    except DataError as exc:
        in_common = exc.field in _FIELD_TYPES
        line = _locate(text, name, exc.field if exc.field else None, None if in_common else sub)
        raise ConfigError(f"{path}:{line}: profile {name!r}: {exc.message}", exc.hint) from None


def _service_name(path: Path, text: str, name: str, table: dict[str, Any]) -> str:
    from xoromail_cli import services

    raw_service = table.get("service", "smtp")
    if not isinstance(raw_service, str):
        raise ConfigError(f"{path}:{_locate(text, name, 'service')}: 'service' must be str",
                          'e.g. service = "smtp"')
    try:
        return services.resolve_name(raw_service)
    except ConfigError as exc:
        raise ConfigError(f"{path}:{_locate(text, name, 'service')}: profile {name!r}: {exc.message}",
                          exc.hint) from None


def _service_table(path: Path, text: str, name: str, table: dict[str, Any],
                   service_name: str) -> tuple[dict[str, Any] | None, str]:
    """The service's own table and the form it was written in: "current" or "flat" (SMTP keys at top level)."""
    from xoromail_cli.services.smtp.settings import FLAT_KEYS

    service_table = table.get(service_name)
    flat = {key: table[key] for key in FLAT_KEYS if key in table} if service_name == "smtp" else {}
    if service_table is None and flat:
        return flat, "flat"
    if service_table is not None and not isinstance(service_table, dict):
        raise ConfigError(f"{path}:{_locate(text, name, service_name)}: {service_name!r} must be a table",
                          f"write it as [profiles.{name}.{service_name}]")
    return service_table, "current"


def _check_keys(path: Path, text: str, name: str, table: dict[str, Any], service_name: str,
                flat: dict[str, Any] | None) -> None:
    """Every key known, `email` present, and each common setting of its type."""
    allowed = set(_FIELD_TYPES) | {service_name} | set(flat or ())
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{path}:{_locate(text, name, key)}: unknown setting {key!r} in profile {name!r}",
                              f"known settings: {', '.join(sorted(_FIELD_TYPES))}, and the "
                              f"[profiles.{name}.{service_name}] table")
    if "email" not in table:
        raise ConfigError(f"{path}:{_locate(text, name, None)}: profile {name!r} is missing 'email'",
                          f"add email = … or re-run `xoromail --profile {name} setup`")
    for key, value in table.items():
        expected = _FIELD_TYPES.get(key)
        if expected is not None and (not isinstance(value, expected) or isinstance(value, bool)):
            wanted = " or ".join(t.__name__ for t in expected)
            raise ConfigError(f"{path}:{_locate(text, name, key)}: {key!r} must be {wanted}, "
                              f"not {type(value).__name__}", f"e.g. {key} = {_example(key)}")


def _settings_error(path: Path, text: str, name: str, service_name: str, sub: str | None, written: bool,
                    exc: DataError) -> ConfigError:
    """A service's refusal of its table, named by file, line and table (`written`: the table has keys)."""
    sub = sub if written else None
    line = _locate(text, name, exc.field, sub) if written else _locate(text, name, None)
    where = f"[profiles.{name}.{service_name}]" if sub else f"profile {name!r}"
    if exc.message.startswith("missing "):
        message = f"{where} is {exc.message}"
    elif sub is None and exc.message.startswith("'"):  # a wrong type reads as it always did
        message = exc.message
    else:
        message = f"{where}: {exc.message}"
    return ConfigError(f"{path}:{line}: {message}", exc.hint)


def _example(key: str) -> str:
    return {"port": "587", "timeout": "30", "connections": "3"}.get(key, '"…"')


_TABLE = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(?:#.*)?$")


def _locate(text: str, profile: str | None, key: str | None, subtable: str | None = None) -> int:
    """Best-effort line number of `key` in `[profiles.<profile>]` or `[profiles.<profile>.<subtable>]`
    (or of the table itself)."""
    current: tuple[str, ...] = ()
    wanted = ("profiles", profile, *((subtable,) if subtable else ())) if profile is not None else ()
    table_line = 1
    for number, line in enumerate(text.splitlines(), start=1):
        header = _TABLE.match(line)
        if header:
            current = tuple(p.strip().strip('"').strip("'") for p in header.group(1).split("."))
            if profile is not None and current == wanted:
                table_line = number
                if key is None:
                    return number
            elif key is not None and current == ((*wanted, key) if profile is not None else (*current[:-1], key)):
                return number  # the key names a table itself
            continue
        if key is None:
            continue
        in_scope = (profile is None and not current) or (profile is not None and current == wanted)
        if in_scope and re.match(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=", line):
            return number
    return table_line
