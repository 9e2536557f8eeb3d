"""One relay process for the whole office: every login of the settings file, each through its own profile.

Logins that share a profile share one mailbox: one spool, one delivery worker, so one pace and one quota.
The one-login relay (`--user`, `--password-stdin`, `--profile`) is the same with a single mailbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from xoromail_cli.errors import ConfigError
from xoromail_cli.profile import Profile
from xoromail_cli.relay.delivery import DeliveryOptions, DeliveryWorker
from xoromail_cli.relay.handler import Route
from xoromail_cli.relay.message import SenderPolicy
from xoromail_cli.relay.spool import Spool
from xoromail_cli.relay.users import LoginTable, RelayLogin, read_password

EventLog = Callable[[str], None]


@dataclass(frozen=True)
class Mailbox:
    """One profile's spool and the worker delivering it."""

    profile: Profile
    spool: Spool
    worker: DeliveryWorker


def spool_root(base: Path | None, profile_name: str) -> Path:
    """A profile's spool: `base/PROFILE` (`--spool DIR` of a relay with several logins), else the state folder's."""
    from xoromail_cli import paths

    return (base if base is not None else paths.state_dir() / "relay") / profile_name


def open_mailbox(profile: Profile, spool: Spool, options: DeliveryOptions, log: EventLog) -> Mailbox:
    return Mailbox(profile, spool, DeliveryWorker(profile, spool, log, replace(options, timeout=profile.timeout)))


@dataclass(frozen=True, kw_only=True)
class Office:
    """What `xoromail relay` serves: the logins it accepts, where each one's messages go, the mailboxes."""

    logins: LoginTable
    routes: dict[str, Route]
    mailboxes: list[Mailbox]


def _tagged(log: EventLog, profile_name: str) -> EventLog:
    """A mailbox's log lines name its profile (several mailboxes write to one log)."""
    return lambda line: log(f"{line} profile={profile_name}")


def open_office(config_path: Path, logins: dict[str, RelayLogin], options: DeliveryOptions, log: EventLog, *,
                rewrite: bool = False, spool_base: Path | None = None) -> Office:
    """Every login of the settings file with its route; ConfigError when one names a missing profile or has
    no password."""
    from xoromail_cli import config

    if not logins:
        raise ConfigError("the settings file has no relay logins",
                          "add one with `xoromail relay users add NAME --profile P`, or start the one-login "
                          "relay with --user NAME --password-stdin")
    profiles = config.load(config_path).profiles
    mailboxes: dict[str, Mailbox] = {}
    routes: dict[str, Route] = {}
    passwords: dict[str, str] = {}
    for login in logins.values():
        profile = profiles.get(login.profile)
        if profile is None:
            setup = config.setup_command(config_path, login.profile)
            raise ConfigError(f"relay login {login.name!r} delivers through profile {login.profile!r}, which "
                              f"{config_path} does not have", f"run `{setup}`, or remove the login with "
                              f"`xoromail relay users remove {login.name}`")
        if profile.name not in mailboxes:
            spool = Spool(spool_root(spool_base, profile.name))
            mailboxes[profile.name] = open_mailbox(profile, spool, options, _tagged(log, profile.name))
        mailbox = mailboxes[profile.name]
        policy = SenderPolicy(mailbox=profile.email, display_name=profile.display_name,
                              allowed=frozenset(a.lower() for a in login.senders), rewrite=rewrite, login=login.name)
        routes[login.name] = Route(policy, mailbox.spool, mailbox.worker.wake, mailbox.worker.refuse_size)
        passwords[login.name] = read_password(login.name)
    return Office(logins=LoginTable(passwords), routes=routes, mailboxes=list(mailboxes.values()))
