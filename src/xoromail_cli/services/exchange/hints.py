"""Exchange's hint table: exchangelib exceptions and EWS response codes → cause, hint and exit code.

exchangelib raises its own exceptions (and wraps requests' ones into them); every one is mapped here so
none leaves the transport as a traceback. Messages quote Exchange's own text, never a credential.
"""

from __future__ import annotations

from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services.advisories import exchange_ews
from xoromail_cli.services.base import Delivery
from xoromail_cli.services.exchange.settings import USUAL_PATH, is_exchange_online
from xoromail_cli.services.network import network_failure as shared_failure

MICROSOFT_365 = "xoromail setup --service microsoft365"
SEND_AS_HINT = ("Exchange does not let this account send as the From address: the From address must be the "
                "mailbox you sign in with, or that mailbox needs Send As rights for it (Exchange admin center → "
                "mailbox → delegation)")
NO_MAILBOX_HINT = ("the profile's email address has no mailbox on this Exchange server: set --email to the "
                   "mailbox's primary SMTP address")
QUOTA_HINT = ("the mailbox is over its storage quota, so Exchange cannot save the copy in Sent Items: empty "
              "Deleted Items / Sent Items or ask an admin to raise the quota")
SIZE_HINT = "the message is larger than Exchange accepts: send smaller attachments or ask an admin for the limit"
BUSY_HINT = "Exchange is throttling this account (ErrorServerBusy): wait the time it asked for, then try again"
LOCKED_HINT = ("the account is locked out (too many wrong passwords): wait for the lockout to expire or ask an "
               "admin to unlock it, then re-check the password before trying again")
ACCESS_HINT = "Exchange refused access for this account: check that it may use EWS and owns the mailbox"


def credentials_hint(url: str) -> str:
    hint = ("re-check the domain, username and password (NTLM signs in as DOMAIN\\user, Basic as "
            "user@domain)")
    if is_exchange_online(url):
        hint += (f"; this is Exchange Online, which has refused Basic (password) sign-in for EWS since "
                 f"October 2022: {exchange_ews()}; use `{MICROSOFT_365}` instead")
    return hint


def url_hint(url: str) -> str:
    return f"check the Exchange URI: EWS usually answers at https://<server>{USUAL_PATH}, here it was {url}"


NAME_HINT = "check the Exchange URI's server name (e.g. mail.company.com)"
WHERE_HINT = "check the Exchange URI's server and port, and the firewall"
TLS_HINT = "the server does not speak HTTPS on this port: check the Exchange URI"


def network_failure(stage: str, exc: OSError, host: str, port: int, timeout: float) -> StageFailedError:
    """DNS, TCP and TLS failures of our own probe, explained as SMTP's are (every probe stage is connecting)."""
    known = shared_failure(stage, exc, host, port, timeout, where_hint=WHERE_HINT, tls_hint=TLS_HINT,
                           name_hint=NAME_HINT, connect_stages=("dns", "connect", "tls"))
    assert known is not None  # an OSError in a connecting stage is always one of the shared classes
    return known


def code_of(exc: BaseException) -> str:
    """The EWS response code an exchangelib exception stands for (its class name), e.g. ErrorSendAsDenied."""
    return type(exc).__name__


def _text(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def sign_in_failure(exc: BaseException, url: str) -> StageFailedError:
    """A failure of the EWS sign-in (the first authenticated request)."""
    from exchangelib.errors import (
        CASError,
        ErrorAccessDenied,
        ErrorNonExistentMailbox,
        ErrorServerBusy,
        EWSError,
        RedirectError,
        TransportError,
        UnauthorizedError,
    )

    if isinstance(exc, UnauthorizedError):
        if "locked out" in str(exc).lower():
            return StageFailedError("auth", "Exchange says the account is locked out", LOCKED_HINT,
                                    ExitCode.NOPERM)
        return StageFailedError("auth", f"Exchange refused the sign-in (HTTP 401) at {url}",
                                credentials_hint(url), ExitCode.NOPERM)
    if isinstance(exc, ErrorNonExistentMailbox):
        return StageFailedError("auth", f"ErrorNonExistentMailbox: {_text(exc)}", NO_MAILBOX_HINT,
                                ExitCode.CONFIG)
    if isinstance(exc, ErrorAccessDenied):
        return StageFailedError("auth", f"ErrorAccessDenied: {_text(exc)}", ACCESS_HINT, ExitCode.NOPERM)
    if isinstance(exc, ErrorServerBusy):
        return StageFailedError("auth", f"ErrorServerBusy: {_text(exc)}", BUSY_HINT, ExitCode.TEMPFAIL)
    if isinstance(exc, RedirectError | CASError):
        return StageFailedError("auth", f"{type(exc).__name__}: {_text(exc)}", url_hint(url), ExitCode.CONFIG)
    if isinstance(exc, TransportError) and _is_http_status(exc, 404):
        return StageFailedError("auth", f"no EWS endpoint at {url} (HTTP 404)", url_hint(url), ExitCode.CONFIG)
    if isinstance(exc, TransportError) and _lost(exc):
        return StageFailedError("auth", f"the connection to {url} was lost: {type(exc.__context__).__name__}",
                                "a temporary failure on the server or network: try again later",
                                ExitCode.TEMPFAIL)
    detail = f"{type(exc).__name__}: {_text(exc)}" if isinstance(exc, EWSError) else type(exc).__name__
    return StageFailedError("auth", f"EWS sign-in failed: {detail}",
                            "Exchange answered in a way xoromail does not know: check the Exchange URI, or "
                            "run validate --trace", ExitCode.UNAVAILABLE)


def _lost(exc: BaseException) -> bool:
    """Raised by exchangelib while handling a requests/socket error: the network, not Exchange, failed."""
    import requests

    return isinstance(exc.__context__, requests.RequestException | OSError)


def _is_http_status(exc: BaseException, status: int) -> bool:
    return f"Code: {status} " in str(exc) or f"HTTP {status}" in str(exc)


RECIPIENTS_HINT = "Exchange refused the message's recipients: check each address for typos"


def send_refusal(exc: BaseException, url: str) -> Delivery:
    """What a CreateItem refusal means for this message and for the rest of the batch."""
    from exchangelib.errors import (
        ErrorAccessDenied,
        ErrorInvalidRecipients,
        ErrorMessageSizeExceeded,
        ErrorNonExistentMailbox,
        ErrorQuotaExceeded,
        ErrorSendAsDenied,
        ErrorServerBusy,
        UnauthorizedError,
    )

    reply = f"{code_of(exc)}: {_text(exc)}"
    if isinstance(exc, ErrorServerBusy):
        back_off = getattr(exc, "back_off", None)
        return Delivery(status="temporary", reply=reply, exit_code=int(ExitCode.TEMPFAIL), hint=BUSY_HINT,
                        retry_after=float(back_off) if back_off else None)
    table: list[tuple[type[BaseException], str, ExitCode, bool]] = [
        (ErrorSendAsDenied, SEND_AS_HINT, ExitCode.NOPERM, True),
        (ErrorNonExistentMailbox, NO_MAILBOX_HINT, ExitCode.CONFIG, True),
        (ErrorQuotaExceeded, QUOTA_HINT, ExitCode.DATAERR, True),
        (ErrorMessageSizeExceeded, SIZE_HINT, ExitCode.DATAERR, False),
        (ErrorInvalidRecipients, RECIPIENTS_HINT, ExitCode.DATAERR, False),
        (ErrorAccessDenied, ACCESS_HINT, ExitCode.NOPERM, True),
    ]
    for kind, hint, exit_code, stops in table:
        if isinstance(exc, kind):
            return Delivery(status="failed", reply=reply, exit_code=int(exit_code), hint=hint, stops_batch=stops,
                            refuses_sender=kind is ErrorSendAsDenied)
    if isinstance(exc, UnauthorizedError):
        return Delivery(status="failed", reply=reply, exit_code=int(ExitCode.NOPERM), hint=credentials_hint(url),
                        stops_batch=True, reconnect=True)
    return Delivery(status="failed", reply=reply, exit_code=int(ExitCode.UNAVAILABLE),
                    hint="Exchange refused the message; see its reply")
