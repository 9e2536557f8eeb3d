"""OAuth for SMTP AUTH (XOAUTH2) to smtp.office365.com:587: the token and the AUTH string, for the SMTP transport.

For tenants that keep SMTP AUTH on but grant no Graph permission. Delegated only: app-only SMTP needs the
service principal registered in Exchange Online, which is refused here with the steps to do it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from xoromail_cli.errors import ConfigError
from xoromail_cli.services.microsoft365.auth import TokenSource

if TYPE_CHECKING:
    from xoromail_cli.services.base import SecretStore
    from xoromail_cli.services.microsoft365.settings import Microsoft365Settings


def xoauth2_string(user: str, token: str) -> str:
    """The XOAUTH2 initial response before base64 (smtplib's `auth("XOAUTH2", ...)` encodes it)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def app_only_smtp_steps(settings: Microsoft365Settings, mailbox: str) -> str:
    """What an Exchange admin must do before an app-only token may send over SMTP (not supported here)."""
    return (
        "app-only sign-in over SMTP is not supported by xoromail; send through Graph (--send-via graph) or sign "
        "in as the mailbox (delegated). An app-only SMTP setup would need: (1) the application permission "
        "SMTP.SendAsApp (Office 365 Exchange Online) with admin consent; (2) in Exchange Online PowerShell: "
        f"New-ServicePrincipal -AppId {settings.client_id} -ObjectId <Object ID of the *Enterprise "
        "Application* (Entra admin center → Enterprise applications), not of the app registration>; (3) "
        f"Add-MailboxPermission -Identity {mailbox} -User <that service principal> -AccessRights FullAccess; "
        "(4) tokens for https://outlook.office365.com/.default"
    )


def access_token_for_smtp(settings: Microsoft365Settings, secrets: SecretStore, *, mailbox: str,
                          ca_file: str | None = None, timeout: float | None = None,
                          lock_path: Path | None = None, tokens: TokenSource | None = None) -> str:
    """A token with the SMTP.Send scope (cached, else refreshed silently); raises XoromailError with a hint."""
    if settings.mode == "app":
        raise ConfigError("app-only sign-in cannot send over SMTP here", app_only_smtp_steps(settings, mailbox))
    source = tokens or TokenSource(settings, secrets, mailbox=mailbox, ca_file=ca_file, timeout=timeout,
                                   lock_path=lock_path)
    return source.token(settings.smtp_scopes)
