"""Connect and Allow: the installed-app OAuth flow, token refresh, revocation and disconnect.

The sign-in runs google-auth-oauthlib's real `InstalledAppFlow` (loopback redirect; the out-of-band flow is
gone since 2022) on a loopback server of ours (`loopback.py`: the page says whether the user allowed or
cancelled, and the port can be used again at once). It never prints: the URL and the `ssh -L` advice go to
`notify`.
Secrets (refresh token, access token with expiry, client secret) go only to a `SecretStore`.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services.google.hints import SCOPE_HINT, SETUP_AGAIN, oauth_failure
from xoromail_cli.services.google.loopback import wait_on_loopback

if TYPE_CHECKING:
    import requests

    from xoromail_cli.services.base import SecretStore, TraceCallback
    from xoromail_cli.services.google.settings import GoogleSettings

SEND_SCOPE = "https://www.googleapis.com/auth/gmail.send"
SCOPES = ("openid", "https://www.googleapis.com/auth/userinfo.email", SEND_SCOPE)
"""The narrowest that send, plus who signed in. Full URLs, because Google answers with them and oauthlib
refuses a token whose scopes differ from the request's. Never `https://mail.google.com/` (restricted)."""
REFRESH_TOKEN = "refresh_token"  # noqa: S105  # names of secret-store entries, not secrets
ACCESS_TOKEN = "access_token"  # noqa: S105  # names of secret-store entries, not secrets
CLIENT_SECRET = "client_secret"  # noqa: S105  # names of secret-store entries, not secrets
SERVICE_ACCOUNT_KEY = "service_account_key"
"""A Workspace service account's key JSON (`service_account.py`), instead of a refresh token."""
SECRET_KINDS = (REFRESH_TOKEN, ACCESS_TOKEN, CLIENT_SECRET, SERVICE_ACCOUNT_KEY)
EARLY = timedelta(seconds=60)
"""An access token this close to its expiry is refreshed rather than risked mid-batch."""


@dataclass(frozen=True)
class AccessToken:
    token: str = field(repr=False)
    expiry: datetime
    """UTC, aware."""

    def valid(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(UTC)) + EARLY < self.expiry

    def to_secret(self) -> str:
        return json.dumps({"token": self.token, "expiry": self.expiry.isoformat()})

    @classmethod
    def from_secret(cls, value: str | None) -> AccessToken | None:
        """None for a missing or unreadable entry: then we simply refresh."""
        try:
            data = json.loads(value or "")
            expiry = datetime.fromisoformat(data["expiry"])
            return cls(str(data["token"]), expiry if expiry.tzinfo else expiry.replace(tzinfo=UTC))
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True, kw_only=True)
class SignIn:
    """The outcome of Connect and Allow; its tokens never appear in its repr."""

    account: str | None
    refresh_token: str = field(repr=False)
    access: AccessToken
    refresh_expires: datetime | None
    """When Google said the refresh token dies (`refresh_token_expires_in`, consent screens in Testing)."""
    scopes: tuple[str, ...]


def sign_in(settings: GoogleSettings, client_secret: str, *, notify: Callable[[str], None],
            open_browser: bool = True, ca_file: str | None = None, timeout: float = 30.0,
            login_hint: str | None = None) -> SignIn:
    """Run Connect and Allow; wait on the loopback port up to `settings.sign_in_timeout` seconds.

    Raises StageFailedError("sign-in", …): 75 when the time runs out, 69 when the port is taken,
    77 when Google or the user refused, 76 for TLS. Nothing is stored here.
    """
    from google_auth_oauthlib.flow import InstalledAppFlow

    from xoromail_cli.services import http

    use_browser = open_browser and _browser_available()
    wait = settings.sign_in_timeout

    class _Flow(InstalledAppFlow):  # type: ignore[misc]  # google-auth-oauthlib is untyped
        """Hands the URL to `notify` instead of printing it, and waits on a loopback server of its own."""

        def authorization_url(self, **kwargs: Any) -> tuple[str, str]:
            url, state = super().authorization_url(**kwargs)
            port = urlsplit(self.redirect_uri).port or settings.redirect_port
            notify(_sign_in_message(url, port, wait, use_browser))
            return url, state

        def run_local_server(self, *, host: str, bind_addr: str, port: int, open_browser: bool,
                             timeout_seconds: float, **kwargs: Any) -> Any:
            return wait_on_loopback(self, host=host, bind_addr=bind_addr, port=port, open_browser=open_browser,
                                    timeout_seconds=timeout_seconds, **kwargs)

    config = {"installed": {"client_id": settings.client_id, "client_secret": client_secret,
                            "auth_uri": settings.auth_uri, "token_uri": settings.token_uri,
                            "redirect_uris": ["http://localhost"]}}
    flow = _Flow.from_client_config(config, scopes=list(SCOPES))
    http.mount(flow.oauth2session, http.endpoint(ca_file, timeout=timeout))
    token = _run(flow, settings, use_browser, wait, timeout, {"login_hint": login_hint} if login_hint else {})
    return _sign_in_result(token)


def _run(flow: Any, settings: GoogleSettings, use_browser: bool, wait: float, timeout: float,
         extra: dict[str, str]) -> dict[str, Any]:
    """The flow itself, with every way it can fail turned into one StageFailedError."""
    from google_auth_oauthlib.flow import WSGITimeoutError

    try:
        flow.run_local_server(host="localhost", bind_addr="127.0.0.1", port=settings.redirect_port,
                              open_browser=use_browser, timeout_seconds=wait,
                              prompt="consent", **extra)  # consent: Google returns a refresh token every time
    except WSGITimeoutError:
        raise StageFailedError("sign-in", f"no sign-in arrived within {wait:g} s; nothing was saved",
                               "run setup again and click Allow in time (or raise --sign-in-timeout); on a "
                               "server, forward the port from your laptop first (see docs/setup-google.md)",
                               ExitCode.TEMPFAIL) from None
    except Warning as changed:  # oauthlib: the granted scopes differ from the requested ones
        token = dict(getattr(changed, "token", {}) or {})
        if SEND_SCOPE not in set(getattr(changed, "new_scope", None) or ()):
            raise StageFailedError("sign-in", "the sign-in did not grant sending (gmail.send)", SCOPE_HINT,
                                   ExitCode.NOPERM) from None
        return token
    except OSError as exc:
        if exc.errno is not None and "in use" in str(exc.strerror).lower():
            raise StageFailedError("sign-in", f"the loopback port {settings.redirect_port} is in use",
                                   "choose another with --redirect-port", ExitCode.UNAVAILABLE) from None
        raise oauth_failure("sign-in", exc, settings.token_uri, timeout) from None
    except Exception as exc:  # noqa: BLE001  # oauthlib/requests errors of the code exchange, mapped below
        if type(exc).__name__ == "MismatchingStateError":
            raise StageFailedError("sign-in", "the browser came back with another sign-in's state",
                                   SETUP_AGAIN + " and use the newest URL only", ExitCode.PROTOCOL) from None
        raise oauth_failure("sign-in", exc, settings.token_uri, timeout) from None
    return dict(flow.oauth2session.token)


def _sign_in_result(token: dict[str, Any]) -> SignIn:
    refresh_token = token.get("refresh_token")
    access_token = token.get("access_token")
    if not refresh_token or not access_token:
        raise StageFailedError("sign-in", "Google returned no refresh token", SETUP_AGAIN, ExitCode.PROTOCOL)
    now = datetime.now(UTC)
    expires_in = float(token.get("expires_in") or 3600)
    lifetime = token.get("refresh_token_expires_in")
    scopes = token.get("scope") or ()
    return SignIn(account=_id_token_email(token.get("id_token")), refresh_token=str(refresh_token),
                  access=AccessToken(str(access_token), now + timedelta(seconds=expires_in)),
                  refresh_expires=now + timedelta(seconds=float(lifetime)) if lifetime else None,
                  scopes=tuple(scopes.split() if isinstance(scopes, str) else scopes))


def _id_token_email(id_token: object) -> str | None:
    """The `email` claim. The signature is not checked: the token came straight from the token endpoint over
    verified TLS, which OpenID Connect Core §3.1.3.7 accepts instead of a signature check."""
    if not isinstance(id_token, str):
        return None
    from google.auth import jwt

    try:
        claims = jwt.decode(id_token, verify=False)  # type: ignore[no-untyped-call]  # google-auth: unannotated
    except ValueError:
        return None
    email = claims.get("email")
    return str(email) if email else None


def _browser_available() -> bool:
    import webbrowser

    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def _sign_in_message(url: str, port: int, wait: float, opened: bool) -> str:
    first = ("A browser window opens for the Google sign-in; if it does not, open this URL:" if opened else
             "Open this URL in a browser, sign in with the sending account and click Allow:")
    return (f"{first}\n{url}\nWaiting up to {wait:g} s for the browser to come back to http://localhost:{port}/ "
            f"(the loopback port; change it with --redirect-port).\nOn a server without a browser, first run "
            f"on your laptop: ssh -L {port}:localhost:{port} {socket.gethostname()} — then open the URL there.")


def store(result: SignIn, client_secret: str, secrets: SecretStore) -> None:
    """Put the sign-in's secrets where they belong (staged until setup commits)."""
    secrets.set(CLIENT_SECRET, client_secret)
    secrets.set(REFRESH_TOKEN, result.refresh_token)
    secrets.set(ACCESS_TOKEN, result.access.to_secret())


def remember(settings: GoogleSettings, result: SignIn) -> GoogleSettings:
    """The settings with who signed in and until when (neither is a secret)."""
    expires = result.refresh_expires.replace(microsecond=0).isoformat() if result.refresh_expires else None
    return replace(settings, account=result.account, sign_in_expires=expires)


def account_mismatch(account: str | None, email: str) -> str | None:
    """A warning when the signed-in account is not the From address (Gmail rewrites or refuses it)."""
    if account is None or account.lower() == email.lower():
        return None
    return (f"signed in as {account}, but the From address is {email}: Gmail rewrites or refuses a From it does "
            f"not own unless {email} is a \"Send mail as\" address of {account} (Gmail settings → Accounts); "
            f"otherwise run setup again and sign in as {email}")


def expiry_note(expires: str | datetime | None, now: datetime | None = None) -> str | None:
    """Say when a Testing-status sign-in dies and how to avoid it; None when Google gave no end."""
    if expires is None:
        return None
    when = datetime.fromisoformat(expires) if isinstance(expires, str) else expires
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    left = when - (now or datetime.now(UTC))
    state = "has expired" if left.total_seconds() <= 0 else f"expires on {when:%Y-%m-%d %H:%M} UTC"
    return (f"this Google sign-in {state} (the consent screen is in \"Testing\" status, which ends sign-ins "
            "after 7 days): publish the app (OAuth consent screen → Publish app, or make it Internal for a "
            "Workspace domain), or run setup again before then")


def refresh(settings: GoogleSettings, secrets: SecretStore, http_session: requests.Session, *,
            timeout: float, trace: TraceCallback | None = None) -> AccessToken:
    """Trade the refresh token for a new access token and write it back, so the next run reuses it."""
    from google.auth.transport.requests import Request
    from google.oauth2.credentials import Credentials

    refresh_token, client_secret = secrets.get(REFRESH_TOKEN), secrets.get(CLIENT_SECRET)
    if not refresh_token or not client_secret:
        raise StageFailedError("token", "this profile is not signed in to Google", SETUP_AGAIN, ExitCode.CONFIG)
    credentials = Credentials(  # type: ignore[no-untyped-call]  # google-auth's constructor is unannotated
        None, refresh_token=refresh_token, token_uri=settings.token_uri, client_id=settings.client_id,
        client_secret=client_secret)
    if trace:  # the HTTP layer shows the request itself, its body (the tokens) hidden
        trace("·", f"refreshing the access token at {settings.token_uri}")
    request = Request(session=http_session)  # our session: the CA file and the timeout apply
    try:
        credentials.refresh(request)  # type: ignore[no-untyped-call]  # google-auth leaves refresh() unannotated
    except Exception as exc:  # noqa: BLE001  # google-auth's RefreshError / TransportError, mapped by hints
        if trace:
            trace("·", f"the token refresh failed: {type(exc).__name__}")
        raise oauth_failure("token", exc, settings.token_uri, timeout) from None
    finally:
        request.session = None  # type: ignore[assignment]  # else its __del__ closes our session (and the batch's connection)
    expiry = credentials.expiry.replace(tzinfo=UTC) if credentials.expiry else datetime.now(UTC) + EARLY * 2
    access = AccessToken(str(credentials.token), expiry)
    secrets.set(ACCESS_TOKEN, access.to_secret())
    if credentials.refresh_token and credentials.refresh_token != refresh_token:
        secrets.set(REFRESH_TOKEN, credentials.refresh_token)
    if trace:
        trace("·", f"new access token (not shown), valid until {expiry:%H:%M:%S} UTC")
    return access


@dataclass(frozen=True)
class Disconnected:
    revoked: bool
    detail: str


def disconnect(settings: GoogleSettings, secrets: SecretStore, *, ca_file: str | None = None,
               timeout: float = 30.0) -> Disconnected:
    """Revoke the grant at Google (`/revoke` on the token endpoint's host), then delete every secret.

    The secrets go even when revocation fails (network down): the result says so, and how to remove the
    access by hand.
    """
    from xoromail_cli.services import http

    token = secrets.get(REFRESH_TOKEN) or (AccessToken.from_secret(secrets.get(ACCESS_TOKEN)) or _NO_TOKEN).token
    result = Disconnected(False, "nothing to revoke: this profile was not signed in")
    if token:
        try:
            response = http.session(ca_file, timeout=timeout).post(settings.revoke_uri, data={"token": token})
        except Exception as exc:  # noqa: BLE001  # requests errors; reported, and the secrets still go
            failure = oauth_failure("disconnect", exc, settings.revoke_uri, timeout)
            result = Disconnected(False, f"could not revoke at Google ({failure.message}): remove xoromail's "
                                  "access at https://myaccount.google.com/permissions")
        else:
            already = response.status_code == 400 and "invalid_token" in response.text
            if response.ok or already:
                result = Disconnected(True, "access revoked at Google" + (" (it was already invalid)"
                                                                           if already else ""))
            else:
                result = Disconnected(False, f"Google answered {response.status_code} to the revocation: remove "
                                      "xoromail's access at https://myaccount.google.com/permissions")
    for kind in SECRET_KINDS:
        secrets.delete(kind)
    return result


_NO_TOKEN = AccessToken("", datetime.min.replace(tzinfo=UTC))
