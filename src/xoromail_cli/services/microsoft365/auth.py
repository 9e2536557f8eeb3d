"""Signing in to Microsoft 365 with msal, and keeping msal's token cache in the secret store.

Delegated: device code (works headless and with MFA) or the interactive loopback flow; app-only: client
credentials with a secret or a certificate. The cache (kind `token_cache`, large: the store chunks it) is
read once, and written back only when msal changed it, under a lock file so two cron runs never clobber it.
A valid access token is taken from the cache without building msal's application, which would fetch the
OpenID configuration: a batch that finds a fresh token makes no sign-in request at all.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from xoromail_cli.errors import AuthError, ConfigError
from xoromail_cli.services.microsoft365 import hints

if TYPE_CHECKING:
    import msal
    import requests

    from xoromail_cli.services.base import SecretStore, TraceCallback
    from xoromail_cli.services.microsoft365.settings import Microsoft365Settings

TOKEN_CACHE = "token_cache"  # noqa: S105  # a secret kind, not a secret
CLIENT_SECRET = "client_secret"  # noqa: S105  # a secret kind, not a secret
EARLY_REFRESH = 300
"""msal treats an access token with less than five minutes left as expired; so do we."""
Notify = Callable[[str], None]


@dataclass(frozen=True)
class SignedIn:
    """Who the token belongs to: the account that signed in (None for app-only) and the profile's mailbox."""

    account: str | None
    mailbox: str

    @property
    def other_account(self) -> bool:
        """An admin who consented and signed in with their own account, not the mailbox's."""
        return self.account is not None and self.account.lower() != self.mailbox.lower()

    def warning(self) -> str | None:
        if not self.other_account:
            return None
        return (f"signed in as {self.account}, not as the profile's mailbox {self.mailbox}: Graph sends from "
                f"{self.account}'s mailbox (or fails without Send As rights); sign in as {self.mailbox}")


class TokenSource:
    """Access tokens for one profile's app registration, from the cache first, then from Microsoft."""

    def __init__(self, settings: Microsoft365Settings, secrets: SecretStore, *, mailbox: str,
                 ca_file: str | None = None, timeout: float | None = None,
                 session: requests.Session | None = None, lock_path: Path | None = None,
                 trace: TraceCallback | None = None) -> None:
        self.settings = settings
        self.trace = trace
        self.secrets = secrets
        self.mailbox = mailbox
        self.timeout = timeout
        self.lock_path = lock_path
        self._ca_file = ca_file
        self._session = session
        self._cache: msal.SerializableTokenCache | None = None
        self._app: msal.ClientApplication | None = None

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            from xoromail_cli.services import http

            self._session = http.session(self._ca_file, timeout=self.timeout, trace=self.trace)
        return self._session

    # cache ---------------------------------------------------------------------------------------------
    @property
    def cache(self) -> msal.SerializableTokenCache:
        if self._cache is None:
            import msal

            cache = msal.SerializableTokenCache()
            stored = self.secrets.get(TOKEN_CACHE)
            if stored:
                with contextlib.suppress(ValueError):  # a damaged cache is as good as none: sign in again
                    cache.deserialize(stored)
            self._cache = cache
        return self._cache

    def save(self) -> None:
        """Write the cache back when msal changed it (a refresh, a new sign-in), under the cache lock."""
        cache = self._cache
        if cache is None or not cache.has_state_changed:
            return
        with self._locked():
            self.secrets.set(TOKEN_CACHE, cache.serialize())
        cache.has_state_changed = False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.lock_path is None:
            yield
            return
        import fcntl

        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock_path.open("a", encoding="utf-8") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def cached_token(self, scopes: list[str], min_lifetime: int = EARLY_REFRESH) -> str | None:
        """An access token for `scopes` already in the cache and valid `min_lifetime` s more: no network call."""
        import msal

        now = time.time()
        environment = urlsplit(self.settings.authority).hostname
        for entry in self.cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN, target=scopes,
                                       query={"client_id": self.settings.client_id, "environment": environment}):
            if int(entry.get("expires_on", 0)) - min_lifetime > now:
                return str(entry["secret"])
        return None

    def signed_in(self) -> SignedIn:
        """The account in the cache (read from its ID token when it signed in)."""
        if self.settings.mode == "app":
            return SignedIn(None, self.mailbox)
        import msal

        accounts = list(self.cache.search(msal.TokenCache.CredentialType.ACCOUNT,
                                          query={"environment": urlsplit(self.settings.authority).hostname}))
        return SignedIn(str(accounts[0]["username"]) if accounts else None, self.mailbox)

    def last_refreshed(self) -> datetime | None:
        """When the refresh token was last renewed (refresh tokens expire after 90 days unused)."""
        import msal

        times = [int(entry.get("last_modification_time", 0))
                 for entry in self.cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN,
                                                query={"client_id": self.settings.client_id})]
        newest = max(times, default=0)
        return datetime.fromtimestamp(newest, UTC) if newest else None

    # msal ---------------------------------------------------------------------------------------------
    def app(self) -> msal.ClientApplication:
        """msal's application; building it fetches the OpenID configuration (network)."""
        if self._app is None:
            self._app = self._call(self._build_app)
        return self._app

    def _build_app(self) -> msal.ClientApplication:
        import msal

        common: dict[str, Any] = {"authority": self.settings.authority, "token_cache": self.cache,
                                  "http_client": self.session, "instance_discovery": False,
                                  "timeout": self.timeout}
        try:
            if self.settings.mode == "app":
                return msal.ConfidentialClientApplication(self.settings.client_id,
                                                          client_credential=self._credential(), **common)
            return msal.PublicClientApplication(self.settings.client_id, **common)
        except ValueError as exc:  # a failed OpenID discovery; the server's answer is in the chained error
            detail = f"{exc.__context__} {exc}" if exc.__context__ else str(exc)
            raise hints.sign_in_error(detail, self.settings) from None

    def _credential(self) -> str | dict[str, str]:
        if self.settings.certificate:
            return load_certificate(self.settings.certificate)
        secret = self.secrets.get(CLIENT_SECRET)
        if not secret:
            raise ConfigError("no client secret is stored for this app-only profile",
                              "run `xoromail setup --service microsoft365 --client-secret-stdin`, or use "
                              "--certificate PEM")
        return secret

    def _call(self, action: Callable[[], Any]) -> Any:
        """Run an msal call; network trouble becomes a StageFailedError (the request is never quoted)."""
        import requests

        try:
            return action()
        except requests.RequestException as exc:
            raise hints.network_failure("sign-in", exc, self.settings.authority, self.timeout) from None

    def token(self, scopes: list[str] | None = None, *, force_refresh: bool = False,
              min_lifetime: int = EARLY_REFRESH) -> str:
        """An access token: cached when still valid, else refreshed silently; raises when a sign-in is needed.

        `min_lifetime`: the seconds the token must still be valid (High Volume Email refuses one with less than
        600 s left); msal itself would hand back a cached token with 300 s left, so a longer one forces a refresh."""
        scopes = scopes or self.settings.graph_scopes
        if not force_refresh:
            cached = self.cached_token(scopes, min_lifetime)
            if cached:
                return cached
            force_refresh = min_lifetime > EARLY_REFRESH
        app = self.app()
        if self.settings.mode == "app":
            result = self._call(lambda: app.acquire_token_for_client(scopes))
        else:
            accounts = app.get_accounts()
            if not accounts:
                raise AuthError("nobody is signed in for this profile", hints.SETUP_AGAIN)
            result = self._call(lambda: app.acquire_token_silent_with_error(
                scopes, accounts[0], force_refresh=force_refresh))
            if result is None:
                raise AuthError("the stored sign-in has no token for this use", hints.SETUP_AGAIN)
        self.save()
        return _token_or_raise(result, self.settings)

    def sign_in(self, notify: Notify, *, open_browser: bool = True) -> SignedIn:
        """Sign in interactively (device code or browser), or prove app-only credentials; keep the cache."""
        if self.settings.mode == "app":
            self.token(force_refresh=True)
            return self.signed_in()
        app = self.app()
        assert isinstance(app, _public_client())
        scopes = self.settings.graph_scopes
        if self.settings.send_via == "smtp":
            scopes = self.settings.smtp_scopes
        if self.settings.sign_in == "browser":
            result = self._call(lambda: self._browser(app, scopes, notify, open_browser))
        else:
            result = self._call(lambda: self._device_code(app, scopes, notify))
        _token_or_raise(result, self.settings)
        self.save()
        claims = result.get("id_token_claims") or {}
        account = claims.get("preferred_username") or claims.get("upn") or claims.get("email")
        return SignedIn(str(account) if account else None, self.mailbox)

    def _device_code(self, app: msal.PublicClientApplication, scopes: list[str], notify: Notify) -> Any:
        flow = app.initiate_device_flow(scopes=scopes)
        if "user_code" not in flow:
            raise hints.sign_in_error(flow, self.settings)
        wait = min(float(self.settings.sign_in_timeout), float(flow.get("expires_in") or "inf"))
        notify(f"{flow['message']} xoromail waits {waiting_time(wait)} for it (--sign-in-timeout to change it).")
        deadline = time.monotonic() + wait
        return app.acquire_token_by_device_flow(
            flow, exit_condition=lambda flow: time.monotonic() > deadline)

    def _browser(self, app: msal.PublicClientApplication, scopes: list[str], notify: Notify,
                 open_browser: bool) -> Any:
        """msal's loopback flow, but the URL is always shown (a server has no browser; `ssh -L` helps)."""
        from msal.oauth2cli.authcode import AuthCodeReceiver

        with AuthCodeReceiver(port=self.settings.redirect_port or 0) as receiver:
            port = receiver.get_port()
            flow = app.initiate_auth_code_flow(scopes, redirect_uri=f"http://localhost:{port}",
                                               response_mode="form_post")
            notify(f"Open this address in a browser and sign in as {self.mailbox}: {flow['auth_uri']}\n"
                   f"(it returns to http://localhost:{port}; from another computer, forward the port first: "
                   f"ssh -L {port}:localhost:{port} THIS-SERVER)")
            if open_browser:
                import webbrowser

                with contextlib.suppress(Exception):  # no browser here: the printed address is the way
                    webbrowser.open(flow["auth_uri"])
            response = receiver.get_auth_response(state=flow["state"], timeout=self.settings.sign_in_timeout)
            if not response:
                return {"error": "expired_token",
                        "error_description": f"no sign-in within {self.settings.sign_in_timeout:g} s"}
            return app.acquire_token_by_auth_code_flow(flow, response, scopes=scopes)


def _public_client() -> type[msal.PublicClientApplication]:
    import msal

    client: type[msal.PublicClientApplication] = msal.PublicClientApplication
    return client


def _token_or_raise(result: Any, settings: Microsoft365Settings) -> str:
    if isinstance(result, dict) and "access_token" in result:
        return str(result["access_token"])
    if isinstance(result, dict):
        raise hints.sign_in_error(result, settings)
    raise AuthError("Microsoft sign-in returned no token", hints.SETUP_AGAIN)


def load_certificate(path: str) -> dict[str, str]:
    """msal's credential from one PEM file holding the private key and its certificate, checked first (RSA, owner-
    only permissions, the key matching the certificate, valid today: `certificate.load`)."""
    from xoromail_cli.services.microsoft365 import certificate

    return certificate.load(path).credential()


def certificate_warning(path: str) -> str | None:
    """The private key should be readable by its owner only."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return None
    if mode & 0o077:
        return f"{path} holds a private key and is readable by others: chmod 600 {path}"
    return None



def sign_in(settings: Microsoft365Settings, secrets: SecretStore, *, mailbox: str, notify: Notify,
            ca_file: str | None = None, timeout: float | None = None, open_browser: bool = True,
            lock_path: Path | None = None) -> SignedIn:
    """Setup's sign-in: shows the device code or the address through `notify` (the CLI prints it) and keeps
    the token cache in `secrets`. App-only profiles prove their secret or certificate instead."""
    source = TokenSource(settings, secrets, mailbox=mailbox, ca_file=ca_file, timeout=timeout, lock_path=lock_path)
    return source.sign_in(notify, open_browser=open_browser)


def waiting_time(seconds: float) -> str:
    """"5 minutes", "90 seconds": how long a sign-in prompt waits, as a person reads it."""
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"
