"""`setup` without the prompts: turn answers (flags or wizard) into a checked profile, and save it.

The common settings are merged here; the service's own answers go to its `build_settings`. Secrets are
staged in a `credentials.Secrets` and written only once the settings file has been written.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xoromail_cli import config, services
from xoromail_cli.addresses import parse_address
from xoromail_cli.credentials import Secrets
from xoromail_cli.errors import ConfigError, NoInputError, UsageError
from xoromail_cli.paths import atomic_write
from xoromail_cli.profile import Profile

EXTRA_SETTINGS = ("company_name", "reply_to", "signature", "currency", "templates_dir", "ledger", "rate")
OPTION_NAMES = {"email": "--email", "display_name": "--display-name"}


@dataclass(kw_only=True)
class SetupAnswers:
    """What the user told us; None means "not given" (so existing values or presets fill it)."""

    service: str | None = None
    email: str | None = None
    display_name: str | None = None
    ca_file: str | None = None
    password_command: str | None = None
    timeout: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    """Common extras: company name, reply-to, ledger, …"""
    service_answers: dict[str, Any] = field(default_factory=dict)
    """The service's own answers by `SetupOption.key` (host, port, ews url, tenant, …)."""


def service_name(answers: SetupAnswers, existing: Profile | None) -> str:
    return config.normalize_service(answers.service or (existing.service if existing else "smtp"))


def existing_settings(answers: SetupAnswers, existing: Profile | None) -> Any:
    """The existing profile's service table, when the service stays the same."""
    if existing is None or existing.service != service_name(answers, existing):
        return None
    return existing.settings


def missing(answers: SetupAnswers, existing: Profile | None, secret_known: bool) -> list[str]:
    """The options a non-interactive run still needs (empty when the answers are complete)."""
    have = {
        "email": answers.email or (existing and existing.email),
        "display_name": answers.display_name is not None or (existing and existing.display_name),
    }
    need = [OPTION_NAMES[key] for key, value in have.items() if not value]
    service = services.get(service_name(answers, existing))
    known = secret_known or bool(answers.password_command or (existing and existing.password_command))
    email = answers.email or (existing.email if existing else None)
    return need + service.missing(answers.service_answers, existing_settings(answers, existing), known, email)


def build_profile(name: str, answers: SetupAnswers, existing: Profile | None = None, *,
                  new_password: bool = False) -> Profile:
    """Merge answers over the existing profile; raise on anything invalid.

    A newly given password replaces the profile's `password_command`, so what was validated is what is used.
    """
    chosen = service_name(answers, existing)
    service = services.get(chosen)
    email = answers.email or (existing.email if existing else "")
    if not email:
        raise UsageError("an email address is required", "pass --email")
    email = parse_address(email, "--email")
    settings = service.build_settings(answers.service_answers, existing_settings(answers, existing), email)
    ca_file = answers.ca_file if answers.ca_file is not None else (existing.ca_file if existing else None)
    if ca_file:
        ca_path = Path(ca_file).expanduser()
        if not ca_path.is_file():
            problem = "is a folder" if ca_path.is_dir() else "does not exist"
            raise NoInputError(f"CA file {ca_file} {problem}", "pass a PEM file with --ca-file")
        ca_file = str(ca_path.resolve())
    base = existing or Profile(name=name, email=email, settings=settings, service=chosen)
    profile = dataclasses.replace(
        base, name=name, service=chosen, email=email, settings=settings,
        display_name=answers.display_name if answers.display_name is not None else base.display_name,
        ca_file=ca_file or None,
        password_command=answers.password_command or (None if new_password else base.password_command),
        timeout=answers.timeout or base.timeout or 30.0, form="current",
        **{key: value or None for key, value in answers.settings.items() if key in EXTRA_SETTINGS},
    )
    return config.validate_profile(profile)


def check_writable(config_path: Path) -> None:
    """Before the test message goes: can the settings file be written at all?"""
    folder = config_path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    target = config_path if config_path.exists() else folder
    not_a_folder = not config_path.exists() and not folder.is_dir()  # a file where a folder must be made
    if not_a_folder or not os.access(target, os.W_OK) or (config_path.exists() and not config_path.is_file()):
        raise ConfigError(f"cannot write {config_path}",
                          "check the folder's permissions, or choose another file with --config")


def drop_unused_secrets(existing: Profile | None, profile: Profile, secrets: Secrets) -> list[str]:
    """A profile moved to another service: the password only the old one used (Web Mail's or Exchange's, once the
    profile signs in to Microsoft 365 or Google) is removed with the save instead of staying unused in the store;
    the kinds removed. Sign-in tokens stay: `xoromail disconnect` revokes them first, removing them would not."""
    from xoromail_cli.credentials import list_secrets
    from xoromail_cli.errors import KeyringUnavailableError

    if existing is None or existing.service == profile.service:
        return []
    kept = set(services.get(profile.service).secret_kinds) | set(secrets.staged_kinds())
    unused = [kind for kind in services.get(existing.service).secret_kinds if kind not in kept and kind == "password"]
    try:
        stored = list_secrets(existing.name, unused) if unused else []
    except KeyringUnavailableError:  # no store here: nothing of it to remove
        return []
    for kind in unused:
        if kind in stored:
            secrets.delete(kind)
    return [kind for kind in unused if kind in stored]


def save(config_path: Path, profile: Profile, secrets: Secrets, *, adopt: bool = False) -> None:
    """Write the settings atomically, then the staged secrets, then this file as their owner (stores/owners.py:
    when a secret was stored, or `adopt`: taken over from a file that lost the profile); a secret-store failure
    puts the old file back. With secrets to store, the profile records the keyring backend that holds them
    (`keyring_backend`, or none)."""
    written = bool(secrets.staged_kinds())
    if written:  # the backend that will hold them, so that sending loads it by name (no backend scan)
        profile = dataclasses.replace(profile, keyring_backend=_backend_to_record())
    previous = config_path.read_bytes() if config_path.is_file() else None
    try:
        config.save_profile(config_path, profile)
    except OSError as exc:
        raise ConfigError(f"cannot write {config_path}: {exc.strerror}",
                          "check the folder's permissions, or choose another file with --config") from None
    try:
        secrets.commit(profile.name)
        if written or adopt:
            _claim(config_path, profile.name, must=written)
    except BaseException:
        if previous is None:
            config_path.resolve().unlink(missing_ok=True)
        else:
            atomic_write(config_path.resolve(), previous)  # the file a symlink points at, as config.save_profile
        raise


def _backend_to_record() -> str | None:
    """The keyring backend the staged secrets are about to be written to, when one may be recorded."""
    from xoromail_cli.credentials import current_store
    from xoromail_cli.errors import KeyringUnavailableError
    from xoromail_cli.stores.keyrings import backend_to_record

    try:
        return backend_to_record(current_store())
    except KeyringUnavailableError:  # writing the secrets says so, with the old file put back
        return None


def _claim(config_path: Path, profile_name: str, *, must: bool) -> None:
    """Record the settings file as the owner of the profile's secrets; when setup stored none (it only takes
    them over), a store that cannot be written now is no reason to fail the save."""
    from xoromail_cli.errors import KeyringUnavailableError
    from xoromail_cli.stores import owners

    try:
        owners.claim(config_path, owners.profile_scope(profile_name))
    except KeyringUnavailableError:
        if must:
            raise


def owner_check(config_path: Path, profile_name: str) -> Path | None:
    """Before setup asks or writes anything: refuse when the profile's secrets belong to another settings file
    that still has it; the former owner this file takes them over from, else None."""
    from xoromail_cli.stores import owners

    name = shlex.quote(profile_name)
    return owners.check(config_path, owners.profile_scope(profile_name), lambda owner: (
        f"choose another profile name with --profile NAME, or remove it there first: "
        f"xoromail --config {owner} --profile {name} disconnect"))


def implied_service(service_answers: dict[str, Any], existing: Profile | None) -> str | None:
    """The service the given service options belong to (`--preset` is Web Mail's, `--sign-in` Microsoft 365's),
    so neither the wizard nor the flags need --service for it; None when they fit several or none. The existing
    profile's service wins when they fit it."""
    given = set(service_answers)
    if not given:
        return None
    fitting = [name for name in services.REGISTRY
               if given <= {option.key.removesuffix("_stdin") for option in services.get(name).setup_options}]
    if existing is not None and existing.service in fitting:
        return existing.service
    return fitting[0] if len(fitting) == 1 else None


def service_option(value: str) -> str:
    """--service as the registry names it; an unknown one is a wrong command line (exit 2)."""
    from xoromail_cli.errors import XoromailError

    try:
        return config.normalize_service(value)
    except XoromailError as error:
        raise UsageError(f"--service: {error.message}", error.hint) from None
