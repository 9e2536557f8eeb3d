"""What Microsoft's sign-in (AADSTS) and Graph errors mean, and what to do: one table, one place.

Texts follow the Microsoft identity platform's error codes and Graph's error codes (shared provider facts).
No secret ever reaches these functions: they see msal's error dict and Graph's error body only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import AuthError, ConfigError, ExitCode, StageFailedError, TemporaryError, XoromailError
from xoromail_cli.services.base import Delivery
from xoromail_cli.services.http import Hints, failure

if TYPE_CHECKING:
    from xoromail_cli.services.microsoft365.settings import Microsoft365Settings

SETUP_AGAIN = "run `xoromail setup --service microsoft365` again to sign in"
_AADSTS = re.compile(r"AADSTS(\d+)")


def _consent(s: Microsoft365Settings) -> str:
    return (f"the app needs consent: a tenant admin opens {s.admin_consent_url()} and accepts (or grants admin "
            "consent under Entra admin center → App registrations → the app → API permissions), then "
            + SETUP_AGAIN)


def _mfa(s: Microsoft365Settings) -> str:
    return ("the tenant requires multi-factor authentication for this sign-in: complete it in the browser; "
            + SETUP_AGAIN + ", or use app-only sign-in (--client-secret-stdin / --certificate) for unattended "
            "servers")


SSH_TUNNEL = ("on a server without a browser, forward the port first: `ssh -L PORT:localhost:PORT server`, "
              "then open the printed link on your own computer")


def _setup(s: Microsoft365Settings, options: str) -> str:
    return f"`xoromail setup --service microsoft365 --tenant {s.tenant} --client-id {s.client_id} {options}`"


BROWSER_FLOW = "--sign-in browser --redirect-port 8765"
DEVICE_CODE_FLOW = "--sign-in device-code"


def other_flow(code: int, s: Microsoft365Settings) -> str:
    """The setup options of the sign-in flow a Conditional Access block (53003, 53000, 53001) leaves open."""
    if code == 53003 and s.sign_in == "device-code" and s.mode != "app":
        return BROWSER_FLOW
    return DEVICE_CODE_FLOW


def _conditional_access(s: Microsoft365Settings) -> str:
    """AADSTS53003: a Conditional Access policy blocked this flow (most often the device-code flow)."""
    if other_flow(53003, s) == BROWSER_FLOW:
        return ("a Conditional Access policy blocked the device-code sign-in (Microsoft recommends blocking that "
                "flow): sign in with the browser flow instead, "
                + _setup(s, BROWSER_FLOW) + f" ({SSH_TUNNEL.replace('PORT', '8765')}); "
                "for unattended use, app-only: " + _setup(s, "--certificate APP.pem")
                + "; or ask an admin to exclude this app from the policy")
    return ("a Conditional Access policy blocked this sign-in: try the device-code flow from another device, "
            + _setup(s, DEVICE_CODE_FLOW) + ", or app-only for unattended use, "
            + _setup(s, "--certificate APP.pem") + "; or ask an admin to exclude this app or location")


def _unmanaged_device(s: Microsoft365Settings) -> str:
    """AADSTS53000/53001: the policy wants a compliant (managed) or domain-joined device for the browser flow."""
    return ("a Conditional Access policy requires a managed (compliant or domain-joined) device, and this machine "
            "is not one: sign in with a device code and enter it on a managed device, "
            + _setup(s, DEVICE_CODE_FLOW) + "; for unattended use, app-only: "
            + _setup(s, "--certificate APP.pem") + " (app-only sign-in is not bound to a device)")


def _app_not_found(s: Microsoft365Settings) -> str:
    return (f"client ID {s.client_id} is not an app registration of tenant {s.tenant}: copy the 'Application "
            "(client) ID' from the app registration's Overview page (not an email, not the object ID), and check "
            "--tenant and --cloud")


def _tenant_not_found(s: Microsoft365Settings) -> str:
    return (f"tenant {s.tenant!r} does not exist in this cloud: use the tenant's domain (e.g. "
            "contoso.onmicrosoft.com) or its Directory (tenant) ID from the Entra admin center's Overview, and "
            "--cloud usgov/china for national clouds")


def _bad_secret(s: Microsoft365Settings) -> str:
    return ("the client secret is wrong: use the secret's *Value* (shown once, when it is created under "
            "Certificates & secrets), not its Secret ID; store it again with "
            "`xoromail setup --service microsoft365 --client-secret-stdin`")


def _expired_secret(s: Microsoft365Settings) -> str:
    return ("the client secret has expired: create a new one under Entra admin center → App registrations → "
            "Certificates & secrets, and store its Value with `xoromail setup --service microsoft365 "
            "--client-secret-stdin` (or switch to --certificate)")


def _expired_sign_in(s: Microsoft365Settings) -> str:
    return ("the sign-in has expired or was revoked (Microsoft refresh tokens expire after 90 days unused, and "
            "end when the password changes or an admin revokes sessions): " + SETUP_AGAIN)


_Rule = tuple[type[XoromailError], Callable[["Microsoft365Settings"], str]]
SIGN_IN_RULES: dict[int, _Rule] = {
    65001: (AuthError, _consent),
    50076: (AuthError, _mfa),
    50079: (AuthError, _mfa),
    53003: (AuthError, _conditional_access),
    53000: (AuthError, _unmanaged_device),
    53001: (AuthError, _unmanaged_device),
    700016: (ConfigError, _app_not_found),
    90002: (ConfigError, _tenant_not_found),
    7000215: (AuthError, _bad_secret),
    7000222: (AuthError, _expired_secret),
    70008: (AuthError, _expired_sign_in),
    700082: (AuthError, _expired_sign_in),
}


def aadsts_codes(result: Mapping[str, Any] | str) -> list[int]:
    """The AADSTS codes in msal's error dict (or in an exception text that quotes the server's answer)."""
    if isinstance(result, Mapping):
        codes = [int(code) for code in result.get("error_codes") or [] if str(code).isdigit()]
        return codes or [int(c) for c in _AADSTS.findall(str(result.get("error_description", "")))]
    return [int(code) for code in _AADSTS.findall(result)]


def first_line(description: str) -> str:
    """AADSTS descriptions end with Trace ID / Correlation ID / Timestamp lines; keep the message."""
    return description.replace("\\r\\n", "\n").replace("\r\n", "\n").split("\n", 1)[0].strip()


def sign_in_error(result: Mapping[str, Any] | str, settings: Microsoft365Settings) -> XoromailError:
    """msal's `{"error": …, "error_description": …}` (or a discovery failure's text) as the user sees it."""
    codes = aadsts_codes(result)
    if isinstance(result, Mapping):
        error = str(result.get("error", "error"))
        cause = first_line(str(result.get("error_description") or error))
    else:
        error = ""
        match = _AADSTS.search(result)
        cause = first_line(result[match.start():].split('"', 1)[0]) if match else first_line(result)
    for code in codes:
        if code in SIGN_IN_RULES:
            kind, hint = SIGN_IN_RULES[code]
            return kind(f"Microsoft sign-in failed: {cause}", hint(settings))
    if error == "invalid_grant":
        return AuthError(f"Microsoft sign-in failed: {cause}", _expired_sign_in(settings))
    if error == "authorization_pending":
        return TemporaryError("nobody entered the sign-in code in time",
                              "run setup again and enter the code within --sign-in-timeout seconds")
    if error in ("expired_token", "authorization_declined", "code_expired"):
        return TemporaryError(f"the sign-in was not completed: {cause}", SETUP_AGAIN)
    if error in ("temporarily_unavailable", "server_error"):
        return TemporaryError(f"Microsoft sign-in is unavailable: {cause}", "try again in a few minutes")
    return AuthError(f"Microsoft sign-in failed: {cause}",
                     "check the tenant, client ID and the app's permissions (see docs/setup-microsoft365.md)")


HTTP_HINTS = Hints(where="check the network, a required proxy (HTTPS_PROXY), and --authority-host / --graph-url "
                         "when set",
                   tls="check --authority-host / --graph-url",
                   name="check the network's DNS, and --authority-host / --graph-url when set",
                   untrusted="nothing was sent; if a proxy inspects TLS, pass its CA with --ca-file")


def network_failure(stage: str, exc: BaseException, url: str, timeout: float | None) -> StageFailedError:
    """A requests exception (DNS, refused, TLS, timeout), classified once for every service (`services.http`)."""
    return failure(stage, exc, url, timeout, HTTP_HINTS)


# Graph -----------------------------------------------------------------------------------------------------

def graph_delivery(status: int, body: Mapping[str, Any], retry_after: float | None, *, mode: str,
                   mailbox: str) -> Delivery:
    """Classify Graph's answer to one sendMail (202 is accepted, not yet delivered)."""
    if status == 202:
        return Delivery(status="sent", reply="202 Accepted")
    found = body.get("error")
    error: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    code = str(error.get("code") or "")
    message = str(error.get("message") or "")
    reply = f"{status} {code}: {message}".strip(": ")
    for test, builder in _GRAPH_RULES:
        if test(status, code, message):
            return builder(reply, retry_after, mode, mailbox)
    if status >= 500:
        return Delivery(status="temporary", reply=reply, exit_code=ExitCode.TEMPFAIL, retry_after=retry_after,
                        hint="Microsoft Graph had a temporary problem: try again later")
    return Delivery(status="failed", reply=reply, exit_code=ExitCode.PROTOCOL, stops_batch=True,
                    hint="Microsoft Graph refused the request (see docs/setup-microsoft365.md)")


def _throttled(reply: str, retry_after: float | None, mode: str, mailbox: str) -> Delivery:
    wait = f"{retry_after:g} s" if retry_after is not None else "a while"
    return Delivery(status="temporary", reply=reply, exit_code=ExitCode.TEMPFAIL, retry_after=retry_after,
                    hint=f"Microsoft Graph is throttling this app or mailbox: wait {wait} and send more slowly "
                         "(Exchange Online allows 30 messages a minute)")


def _expired_token(reply: str, retry_after: float | None, mode: str, mailbox: str) -> Delivery:
    return Delivery(status="temporary", reply=reply, exit_code=ExitCode.NOPERM, reconnect=True,
                    hint="the access token was refused: it is renewed before the next try; if this repeats, "
                         + SETUP_AGAIN)


def _access_denied(reply: str, retry_after: float | None, mode: str, mailbox: str) -> Delivery:
    if mode == "app":
        hint = (f"the app may not send as {mailbox}: grant the *application* permission Mail.Send with admin "
                "consent, and check that no RBAC for Applications scope or application access policy excludes "
                "this mailbox (docs/setup-microsoft365.md)")
    else:
        hint = ("the signed-in account may not send mail: grant the *delegated* permission Mail.Send (with "
                "consent) to the app registration, then " + SETUP_AGAIN)
    return Delivery(status="failed", reply=reply, exit_code=ExitCode.NOPERM, stops_batch=True, hint=hint)


def _send_as(reply: str, retry_after: float | None, mode: str, mailbox: str) -> Delivery:
    return Delivery(status="failed", reply=reply, exit_code=ExitCode.NOPERM, stops_batch=True, refuses_sender=True,
                    hint=f"the signed-in account may not send as {mailbox}: sign in as that mailbox, or have an "
                         "Exchange admin give the account Send As rights for it")


def _no_mailbox(reply: str, retry_after: float | None, mode: str, mailbox: str) -> Delivery:
    return Delivery(status="failed", reply=reply, exit_code=ExitCode.UNAVAILABLE, stops_batch=True,
                    hint=f"{mailbox} has no Exchange Online mailbox (no licence, on-premises, or a typo): check "
                         "--email; an on-premises mailbox needs the Exchange or SMTP service")


def _quota(reply: str, retry_after: float | None, mode: str, mailbox: str) -> Delivery:
    return Delivery(status="failed", reply=reply, exit_code=ExitCode.TEMPFAIL, stops_batch=True,
                    hint="the mailbox reached Exchange Online's sending limit (10,000 recipients a day): wait up "
                         "to 24 hours, or spread the batch")


def _bad_message(reply: str, retry_after: float | None, mode: str, mailbox: str) -> Delivery:
    return Delivery(status="failed", reply=reply, exit_code=ExitCode.DATAERR,
                    hint="Microsoft Graph did not accept this message (size or MIME): check its attachments")


def _bad_recipients(reply: str, retry_after: float | None, mode: str, mailbox: str) -> Delivery:
    return Delivery(status="failed", reply=reply, exit_code=ExitCode.DATAERR,
                    hint="Microsoft Graph refused the message's recipients: check each address for typos")


_GraphRule = tuple[Callable[[int, str, str], bool], Callable[[str, float | None, str, str], Delivery]]
_GRAPH_RULES: list[_GraphRule] = [
    (lambda status, code, text: status in (429, 503, 504), _throttled),
    (lambda status, code, text: status == 401, _expired_token),
    (lambda status, code, text: "quota" in code.lower() or "quota" in text.lower(), _quota),
    (lambda status, code, text: code == "ErrorSendAsDenied", _send_as),
    (lambda status, code, text: code in ("MailboxNotEnabledForRESTAPI", "ErrorInvalidUser",
                                         "ResourceNotFound") or status == 404, _no_mailbox),
    (lambda status, code, text: status == 403 or code == "ErrorAccessDenied", _access_denied),
    (lambda status, code, text: status == 413 or code.startswith(("ErrorMimeContent", "ErrorMessageSize")),
     _bad_message),
    (lambda status, code, text: code in ("ErrorInvalidRecipients", "ErrorInvalidRecipientsAddress"), _bad_recipients),
]
