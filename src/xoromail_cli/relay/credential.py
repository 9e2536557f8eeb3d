"""The relay's own login, kept in the secret store beside the profile's secrets (kinds `relay_user`, `relay_password`).

It is not the mailbox's password: the ERP gets a credential that opens this relay only. When none is stored
and none is given, one is generated and shown once, and only to a person at a terminal (never into a log).
"""

from __future__ import annotations

import secrets

from xoromail_cli.credentials import read_secret, write_secret
from xoromail_cli.errors import ConfigError, UsageError
from xoromail_cli.relay.auth_limits import check_password_strength
from xoromail_cli.relay.server import RelayCredential

USER_KIND, PASSWORD_KIND = "relay_user", "relay_password"  # secret-store kinds, not the secrets
DEFAULT_USER = "erp"


def relay_credential(profile_name: str, user: str | None, password: str | None, *,
                     may_show: bool) -> tuple[RelayCredential, bool]:
    """The credential to accept, and whether it was generated now (the caller shows it once)."""
    if password is not None and not password:
        raise UsageError("the relay password read from stdin is empty", "pipe the password in: … --password-stdin")
    if password is not None:
        check_password_strength(password)  # before it is stored
    stored_user = read_secret(profile_name, USER_KIND)
    stored_password = read_secret(profile_name, PASSWORD_KIND)
    name = user or stored_user or DEFAULT_USER
    if password is None and stored_password is None:
        if not may_show:
            raise ConfigError(f"profile {profile_name!r} has no relay password yet",
                              "pass --user NAME --password-stdin once, or start `xoromail relay` once in a "
                              "terminal to have one generated and shown")
        password = secrets.token_urlsafe(18)
        write_secret(profile_name, PASSWORD_KIND, password)
        write_secret(profile_name, USER_KIND, name)
        return RelayCredential(name, password), True
    if password is not None:
        write_secret(profile_name, PASSWORD_KIND, password)
    if name != stored_user:
        write_secret(profile_name, USER_KIND, name)
    kept = password if password is not None else stored_password or ""
    check_password_strength(kept)  # one stored by an older relay may be short
    return RelayCredential(name, kept), False
