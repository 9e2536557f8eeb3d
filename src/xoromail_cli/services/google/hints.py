"""What Google's answers mean, in one place: Gmail API errors, OAuth errors and HTTPS failures.

Each function takes what the library or the server said and returns the project's error (or a Delivery)
with a one-line cause quoting Google's own message and a hint that says what to do. No secret is quoted:
Google's error bodies never echo tokens, and request URLs carry none (tokens travel in headers and bodies).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services.base import Delivery
from xoromail_cli.services.http import Hints, failure

SETUP_AGAIN = "run `xoromail setup --service google` again to sign in"
EXPIRED_HINT = (
    "the Google sign-in has expired or was revoked (a consent screen left in \"Testing\" ends sign-ins after "
    "7 days; a changed password or access removed at myaccount.google.com/permissions ends them too): "
    + SETUP_AGAIN + ", and publish the consent screen (\"In production\") so it stops expiring"
)
CLIENT_HINT = (
    "Google does not accept the OAuth client (deleted, or its secret was reset): download the client's JSON again "
    "from https://console.cloud.google.com/apis/credentials and " + SETUP_AGAIN.removeprefix("run ")
)
SCOPE_HINT = (
    "the sign-in did not grant sending: " + SETUP_AGAIN + " and leave \"Send email on your behalf\" ticked"
)
ENABLE_API_HINT = "enable the Gmail API in the Cloud project that owns the OAuth client or the service account"
QUOTA_HINT = (
    "Gmail's sending limit is reached (Workspace: 2,000 messages a day; API: about 60 sends a minute): "
    "wait (up to 24 hours for the daily limit), or spread the batch"
)
TEMPORARY_HINT = "a temporary failure at Google: try again later"
SERVICE_ACCOUNT_SCOPE = "https://www.googleapis.com/auth/gmail.send"
SERVICE_ACCOUNT_SETUP = "xoromail setup --service google --service-account KEY.json --email ADDRESS"


def delegation_hint(client_id: str) -> str:
    """`unauthorized_client` for a service account: domain-wide delegation is not granted (or not this scope)."""
    return ("domain-wide delegation is not granted for sending: a Workspace super admin opens admin.google.com → "
            "Security → Access and data control → API controls → Manage Domain Wide Delegation → Add new, pastes "
            f"the service account's client ID {client_id} and exactly the scope {SERVICE_ACCOUNT_SCOPE}, and "
            "authorises (it can take a few minutes, rarely hours, to apply); then run setup again")


SUBJECT_HINT = (
    "Google does not know this mailbox as an active user of the service account's Workspace: check --email (a user "
    "of the domain where delegation was granted, not an alias or group, not a consumer @gmail.com address); a "
    "suspended or deleted user must be restored in the Admin console (Directory → Users)"
)
KEY_DELETED_HINT = (
    "the service account's key was deleted or disabled in the Cloud console: create a new JSON key (IAM & Admin → "
    "Service accounts → the account → Keys → Add key) and store it with `" + SERVICE_ACCOUNT_SETUP + "`"
)
QUOTA_REASONS = ("dailylimitexceeded", "userratelimitexceeded", "ratelimitexceeded", "quotaexceeded")
QUOTA_TEXTS = ("sending quota exceeded", "sending limit", "user-rate limit exceeded")


@dataclass(frozen=True)
class ApiError:
    """A Google JSON error body, read forgivingly (proxies answer with HTML)."""

    status: int
    message: str
    reasons: tuple[str, ...]
    link: str | None

    @classmethod
    def parse(cls, status: int, body: Any) -> ApiError:
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            return cls(status, f"HTTP {status}", (), None)
        reasons = [str(item.get("reason", "")) for item in error.get("errors", []) if isinstance(item, dict)]
        link = None
        for detail in error.get("details", []):
            if isinstance(detail, dict):
                reasons.append(str(detail.get("reason", "")))
                metadata = detail.get("metadata")
                if isinstance(metadata, dict) and isinstance(metadata.get("activationUrl"), str):
                    link = metadata["activationUrl"]
        message = " ".join(str(error.get("message") or f"HTTP {status}").split())
        if link is None:
            found = re.search(r"https://console\.(?:developers|cloud)\.google\.com/\S+?(?=\s|$)", message)
            link = found.group(0) if found else None
        return cls(status, message, tuple(reason for reason in reasons if reason), link)

    def has(self, *reasons: str) -> bool:
        lowered = {reason.lower() for reason in self.reasons}
        return any(reason.lower() in lowered for reason in reasons)

    @property
    def is_quota(self) -> bool:
        text = self.message.lower()
        return self.has(*QUOTA_REASONS) or any(needle in text for needle in QUOTA_TEXTS)


def retry_after(headers: Any) -> float | None:
    """Seconds from a Retry-After header (Google sends seconds; an HTTP date is left to the back-off)."""
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def delivery_for_error(status: int, body: Any, headers: Any, *, refreshed: bool) -> Delivery:
    """Classify a failed `users.messages.send` so the sender knows whether to retry, stop or go on."""
    error = ApiError.parse(status, body)
    reply = f"Gmail API {status}: {error.message}"
    wait = retry_after(headers)
    if error.is_quota:
        return Delivery(status="temporary", reply=reply, exit_code=ExitCode.TEMPFAIL, hint=QUOTA_HINT, stops_batch=True,
                        retry_after=wait)
    if status == 429 or status >= 500:
        return Delivery(status="temporary", reply=reply, exit_code=ExitCode.TEMPFAIL, hint=TEMPORARY_HINT,
                        retry_after=wait)
    if status == 401:
        hint = (EXPIRED_HINT if refreshed else SETUP_AGAIN)
        return Delivery(status="failed", reply=reply + (" (after a fresh token)" if refreshed else ""),
                        exit_code=ExitCode.NOPERM,
                        hint=hint, stops_batch=True, reconnect=True)
    if status == 403 and error.has("accessNotConfigured", "SERVICE_DISABLED"):
        where = error.link or "https://console.cloud.google.com/apis/library/gmail.googleapis.com"
        return Delivery(status="failed", reply=reply, exit_code=ExitCode.CONFIG, hint=f"{ENABLE_API_HINT}: {where}, "
                        "wait a few minutes, then try again", stops_batch=True)
    if status == 403 and (error.has("insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT")
                          or "insufficient authentication scopes" in error.message.lower()):
        return Delivery(status="failed", reply=reply, exit_code=ExitCode.NOPERM, hint=SCOPE_HINT, stops_batch=True)
    if status == 403:
        return Delivery(status="failed", reply=reply, exit_code=ExitCode.NOPERM, stops_batch=True,
                        hint="Google refused this account sending this message: check that the From address is "
                             "the signed-in account or one of its \"Send mail as\" addresses")
    if status == 404:
        return Delivery(status="failed", reply=reply, exit_code=ExitCode.UNAVAILABLE, stops_batch=True,
                        hint="no Gmail API at this address: check --api-url (default https://gmail.googleapis.com)")
    if status == 413:
        return Delivery(status="failed", reply=reply, exit_code=ExitCode.DATAERR,
                        hint="the message is too large for the Gmail API (35 MB): send fewer or smaller attachments")
    return Delivery(status="failed", reply=reply, exit_code=ExitCode.DATAERR,
                    hint="Gmail refused this message: check its addresses and headers (Google's reply says which)")


def oauth_failure(stage: str, exc: BaseException, url: str, timeout: float) -> StageFailedError:
    """A failed token request (sign-in, refresh, revoke), from google-auth, oauthlib or requests."""
    cause = exc.__cause__
    if cause is not None and type(exc).__name__ == "TransportError":  # google.auth wraps requests' errors
        return http_failure(stage, cause, url, timeout)
    if _is_requests_error(exc):
        return http_failure(stage, exc, url, timeout)
    text = _oauth_text(exc)
    lowered = text.lower()
    if "invalid_grant" in lowered or type(exc).__name__ == "InvalidGrantError":
        return StageFailedError(stage, f"Google refused the sign-in: {text}", EXPIRED_HINT, ExitCode.NOPERM)
    if any(word in lowered for word in ("invalid_client", "unauthorized_client")) or \
            type(exc).__name__ in ("InvalidClientError", "UnauthorizedClientError"):
        return StageFailedError(stage, f"Google refused the OAuth client: {text}", CLIENT_HINT, ExitCode.CONFIG)
    if "access_denied" in lowered or type(exc).__name__ == "AccessDeniedError":
        return StageFailedError(stage, "the sign-in was cancelled in the browser (access_denied)",
                                SETUP_AGAIN + " and click Allow", ExitCode.NOPERM)
    return StageFailedError(stage, f"the token request failed: {text}", SETUP_AGAIN, ExitCode.PROTOCOL)


def _oauth_text(exc: BaseException) -> str:
    """google-auth's RefreshError carries (message, response); oauthlib's errors carry `error: description`."""
    if type(exc).__name__ == "RefreshError" and exc.args:
        return " ".join(str(exc.args[0]).split())
    error = getattr(exc, "error", None)
    description = getattr(exc, "description", None)
    if error:
        return f"{error}: {description}" if description else str(error)
    return " ".join(str(exc).split()) or type(exc).__name__


def _is_requests_error(exc: BaseException) -> bool:
    return any(klass.__module__.startswith("requests") for klass in type(exc).__mro__[:-1])


HTTP_HINTS = Hints(where="check the network, firewall or proxy (HTTPS, port 443), and --api-url when set",
                   tls="check --api-url and the proxy", name="check the address (--api-url) and DNS",
                   untrusted="the server's certificate is not trusted: pass the issuing CA with --ca-file "
                             "(a TLS-inspecting proxy's CA, or a test server's)")


def http_failure(stage: str, exc: BaseException, url: str, timeout: float) -> StageFailedError:
    """DNS, connect, TLS and timeouts of an HTTPS call, classified once for every service (`services.http`)."""
    return failure(stage, exc, url, timeout, HTTP_HINTS)
