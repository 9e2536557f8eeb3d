"""The thin adapter that makes Google one `services.base.Service`, written against the refactored Profile
(`profile.settings` is a GoogleSettings; `email`, `ca_file`, `timeout` are the common fields)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import ConfigError, XoromailError
from xoromail_cli.services.base import Limits, Notify, Question, ServiceBase, SetupOption, SignInResult
from xoromail_cli.services.google import hints, oauth
from xoromail_cli.services.google.settings import (
    DEFAULT_REDIRECT_PORT,
    DEFAULT_SIGN_IN_TIMEOUT,
    GoogleSettings,
    check_https_url,
    check_port,
    check_timeout,
    read_client_secrets,
)

if TYPE_CHECKING:
    from datetime import datetime

    from xoromail_cli.profile import Profile
    from xoromail_cli.services.base import SecretStore, Service, TraceCallback
    from xoromail_cli.services.expiry import ExpiryNote
    from xoromail_cli.services.google.transport import GmailTransport

PER_MINUTE = 50
"""Below the API's 6,000 quota units a minute per user at 100 units a send (60 a minute)."""
LIMITS = Limits(label="Gmail API (Google Workspace)", per_minute=PER_MINUTE, daily_messages=2_000,
                daily_recipients=10_000)
CLIENT_STEPS = (
    "Google sign-in needs your own OAuth client (once per company; see docs/setup-google.md):\n"
    "  1. console.cloud.google.com → create a project (or pick one).\n"
    "  2. APIs & Services → Library → Gmail API → Enable.\n"
    "  3. OAuth consent screen: Internal for a Workspace domain, else External; add the scope gmail.send.\n"
    "     A consent screen left in \"Testing\" ends every sign-in after 7 days: publish it (\"In production\").\n"
    "  4. Credentials → Create credentials → OAuth client ID → Application type \"Desktop app\".\n"
    "  5. Download its JSON and give its path here."
)
SETUP_OPTIONS = (
    SetupOption(flag="--client-secrets", key="client_secrets",
                help="the OAuth client's JSON (a \"Desktop app\" client from the "
                "Google Cloud console)", metavar="FILE", kind="path"),
    SetupOption(flag="--service-account", key="service_account",
                help="Google Workspace without a browser: a service account's key JSON with domain-wide delegation "
                "for gmail.send (kept in the secret store; the file may then be deleted)", metavar="KEY.json",
                kind="path"),
    SetupOption(flag="--no-browser", key="no_browser",
                help="print the sign-in URL instead of opening a browser (headless "
                "servers: forward the redirect port with ssh -L)", metavar=None, kind="flag"),
    SetupOption(flag="--redirect-port", key="redirect_port",
                help="loopback port the browser returns to after Allow (not a mail "
                f"server port; default {DEFAULT_REDIRECT_PORT})", metavar="PORT", kind="int"),
    SetupOption(flag="--sign-in-timeout", key="sign_in_timeout",
                help="seconds to wait for the sign-in in the browser (default "
                f"{DEFAULT_SIGN_IN_TIMEOUT:g})", metavar="SECONDS", kind="float"),
    SetupOption(flag="--api-url", key="api_url",
                help="Gmail API base URL (default https://gmail.googleapis.com; a proxy or a "
                "test server)", metavar="URL", kind="text"),
)


BROWSER = "browser"
SERVICE_ACCOUNT = "service_account"
SIGN_IN_LABELS = (
    "a person's Google account, signed in once in a browser (your own OAuth client; a consent screen left in "
    "\"Testing\" ends the sign-in after 7 days)",
    "a Google Workspace service account with domain-wide delegation: nobody signs in (for cron and the relay; no "
    "refresh token, no 7-day Testing expiry)",
)
"""The wizard's first Google question, one label per way (`BROWSER`, `SERVICE_ACCOUNT`)."""
SERVICE_ACCOUNT_STEPS = (
    "A service account signs in as the mailbox with domain-wide delegation (see docs/setup-google.md):\n"
    "  1. console.cloud.google.com → IAM & Admin → Service accounts → Create; enable the Gmail API in its project.\n"
    "  2. The account → Keys → Add key → Create new key → JSON: download it.\n"
    "  3. admin.google.com (a super admin) → Security → Access and data control → API controls → Manage Domain "
    "Wide Delegation → Add new: the key's client_id and the scope " + hints.SERVICE_ACCOUNT_SCOPE + ".\n"
    "  4. Give the key file's path here: the whole key goes to the secret store; the file may be deleted afterwards."
)


def _client_secrets_path(text: str) -> str:
    read_client_secrets(text)
    return text


def _service_account_path(text: str) -> str:
    """The key is read and checked where its path is typed (an OAuth client's JSON is refused here)."""
    from xoromail_cli.services.google import service_account

    service_account.read_key(text.strip())
    return str(Path(text.strip()).expanduser())


@dataclass(frozen=True)
class Connected:
    """What the sign-in step of setup leaves: settings with the account, and what setup should say."""

    settings: GoogleSettings
    warnings: tuple[str, ...]


class GoogleService(ServiceBase[GoogleSettings]):
    name: str = "google"
    label: str = "Email services"
    secret_kinds: tuple[str, ...] = oauth.SECRET_KINDS
    setup_options: tuple[SetupOption, ...] = SETUP_OPTIONS
    settings_type = GoogleSettings

    def settings_from_table(self, table: Mapping[str, Any]) -> GoogleSettings:
        return GoogleSettings.from_table(table)

    def build_settings(self, answers: Mapping[str, Any], existing: object | None, email: str) -> GoogleSettings:
        """Merge flags or wizard answers over the existing settings; the client-secrets JSON gives the endpoints."""
        base = self.own(existing)
        changes: dict[str, Any] = {}
        if answers.get("service_account"):
            changes.update(_service_account_changes(str(answers["service_account"])))
        elif answers.get("client_secrets"):
            client = read_client_secrets(answers["client_secrets"])
            changes.update(client_id=client.client_id, auth_uri=client.auth_uri, token_uri=client.token_uri,
                           client_secrets_file=str(Path(answers["client_secrets"]).expanduser().resolve()),
                           service_account=None, service_account_file=None)
        elif base is None:
            raise ConfigError("no OAuth client given", "pass --client-secrets FILE, or --service-account KEY.json for "
                              "a Workspace service account (see docs/setup-google.md)")
        if answers.get("api_url"):
            changes["api_url"] = check_https_url(answers["api_url"], "api_url")
        if answers.get("redirect_port") is not None:
            changes["redirect_port"] = check_port(answers["redirect_port"])
        if answers.get("sign_in_timeout") is not None:
            changes["sign_in_timeout"] = check_timeout(answers["sign_in_timeout"])
        if base is None:
            return GoogleSettings(**changes)
        return replace(base, **changes)

    def missing(self, answers: Mapping[str, Any], existing: object | None, secret_known: bool,
                email: str | None = None) -> list[str]:
        known = answers.get("client_secrets") or answers.get("service_account") or isinstance(existing, GoogleSettings)
        return [] if known else ["--client-secrets (or --service-account)"]

    def next_question(self, answers: Mapping[str, Any], existing: object | None, email: str) -> Question | None:
        """How it signs in (a person in a browser, or a Workspace service account), then that way's questions."""
        own = existing if isinstance(existing, GoogleSettings) else None
        if "client_secrets" not in answers and "service_account" not in answers and "signs_in" not in answers:
            default = SERVICE_ACCOUNT if own is not None and own.service_account else BROWSER
            return Question(key="signs_in", prompt="How should xoromail sign in to Google?", default=default,
                            choices=(BROWSER, SERVICE_ACCOUNT), labels=SIGN_IN_LABELS)
        if answers.get("signs_in") == SERVICE_ACCOUNT:
            if "service_account" not in answers:
                return Question(key="service_account", prompt="Path of the service account's key JSON",
                                default=own.service_account_file if own is not None else None,
                                check=_service_account_path, explain=SERVICE_ACCOUNT_STEPS)
            return None
        if "service_account" in answers:  # given as a flag: nobody signs in, nothing more to ask
            return None
        return self._browser_question(answers, own)

    def _browser_question(self, answers: Mapping[str, Any], existing: GoogleSettings | None) -> Question | None:
        known = existing.client_secrets_file if existing is not None else None
        if "client_secrets" not in answers:
            return Question(key="client_secrets", prompt="Path of the OAuth client's JSON (client_secret_….json)",
                            default=known,
                            check=_client_secrets_path, explain=CLIENT_STEPS)
        if "no_browser" not in answers:
            return Question(key="no_browser", prompt="Open a browser on this machine for the Google sign-in?",
                            default="yes" if oauth._browser_available() else "no", choices=("yes", "no"),
                            check=lambda text: text.strip().lower() in ("n", "no"))
        if answers.get("no_browser") and "redirect_port" not in answers:
            port = str(existing.redirect_port if existing is not None else DEFAULT_REDIRECT_PORT)
            return Question(key="redirect_port", prompt="Loopback port for the sign-in redirect", default=port,
                            check=check_port,
                            explain="From your laptop, forward it before opening the URL: "
                                    f"ssh -L {port}:localhost:{port} <this server>")
        return None

    def connect(self, settings: GoogleSettings, email: str, secrets: SecretStore, *,
                notify: Callable[[str], None], open_browser: bool = True, ca_file: str | None = None,
                timeout: float = 30.0) -> Connected:
        """Setup's sign-in step: Connect and Allow, then stage the secrets (setup commits them only after a
        passing validation). The client secret comes from the JSON, else from the secret store (a re-sign-in)."""
        client_secret = secrets.get(oauth.CLIENT_SECRET)
        if settings.client_secrets_file:
            try:
                client_secret = read_client_secrets(settings.client_secrets_file).client_secret
            except XoromailError:
                if client_secret is None:
                    raise
        if not client_secret:
            raise ConfigError("no client secret for the OAuth client", "pass --client-secrets FILE again")
        result = oauth.sign_in(settings, client_secret, notify=notify, open_browser=open_browser, ca_file=ca_file,
                               timeout=timeout, login_hint=email)
        oauth.store(result, client_secret, secrets)
        remembered = oauth.remember(settings, result)
        warnings = (oauth.account_mismatch(result.account, email), oauth.expiry_note(result.refresh_expires))
        return Connected(remembered, tuple(warning for warning in warnings if warning))

    def describe(self, profile: Profile) -> str:
        settings = self.settings_of(profile)
        if settings.service_account:
            from xoromail_cli.services.google.service_account import describe

            return f"Gmail API at {settings.api_url} as {profile.email} through {describe(settings)}"
        who = settings.account or profile.email
        return f"Gmail API at {settings.api_url} as {who} (OAuth client {settings.client_id.split('-')[0]}…)"

    def planned_stages(self, profile: Profile, send: bool) -> list[str]:
        return ["config", "token", "send"] if send else ["config", "token"]

    def check_offline(self, profile: Profile) -> None:
        from xoromail_cli.services.network import tls_context

        self.settings_of(profile)
        tls_context(profile.ca_file)

    def open_transport(self, profile: Profile, secrets: SecretStore, *, timeout: float | None = None,
                       trace: TraceCallback | None = None, validating: bool = False) -> GmailTransport:
        """`validating` refreshes the token, so validate's token stage proves the refresh token still works."""
        from xoromail_cli.services.google.transport import GmailTransport

        return GmailTransport(self.settings_of(profile), profile.email, secrets, ca_file=profile.ca_file,
                              timeout=timeout if timeout is not None else profile.timeout, trace=trace,
                              force_refresh=validating)

    def notes(self, profile: Profile) -> list[str]:
        settings = self.settings_of(profile)
        notes = (oauth.expiry_note(settings.sign_in_expires), oauth.account_mismatch(settings.account, profile.email))
        return [note for note in notes if note]

    def limits(self, profile: Profile) -> Limits | None:
        return LIMITS

    def sending_provider(self, profile: Profile) -> str | None:
        return "google"

    def expiring(self, profile: Profile, now: datetime, secrets: SecretStore | None) -> list[ExpiryNote]:
        """A sign-in whose consent screen is in Testing: its refresh token dies after 7 days."""
        from xoromail_cli.services.expiry import ExpiryNote, day_of, xoromail_for

        settings = self.own(profile.settings)
        expires = day_of(settings.sign_in_expires) if settings is not None else None
        if settings is None or expires is None or settings.service_account:
            return []
        return [ExpiryNote(
            kind="google-testing", subject="the Google sign-in (consent screen in \"Testing\": 7 days)",
            expires=expires,
            renew="publish the app (OAuth consent screen → Publish app, or Internal for a Workspace domain), or use "
                  "a Workspace service account that needs no sign-in, then sign in again",
            command=f"{xoromail_for(profile)} setup --service google")]

    def sign_in(self, profile: Profile, secrets: SecretStore, *, notify: Notify,
                answers: Mapping[str, Any]) -> SignInResult | None:
        settings = self.settings_of(profile)
        if settings.service_account:  # nobody signs in: the key is staged, validation's token stage proves it
            from xoromail_cli.services.google import service_account

            if answers.get("service_account"):
                secrets.set(oauth.SERVICE_ACCOUNT_KEY, service_account.read_key(answers["service_account"]).text)
            for kind in (oauth.REFRESH_TOKEN, oauth.CLIENT_SECRET, oauth.ACCESS_TOKEN):
                secrets.delete(kind)
            return SignInResult(settings, ())
        secrets.delete(oauth.SERVICE_ACCOUNT_KEY)
        connected = self.connect(self.settings_of(profile), profile.email, secrets, notify=notify,
                                 open_browser=not answers.get("no_browser"), ca_file=profile.ca_file,
                                 timeout=profile.timeout)
        return SignInResult(connected.settings, tuple(connected.warnings))

    def disconnect(self, profile: Profile, secrets: SecretStore) -> str:
        """Revoke at Google, then delete every secret of the profile (for `xoromail disconnect`)."""
        settings = self.settings_of(profile)
        if settings.service_account:
            for kind in oauth.SECRET_KINDS:
                secrets.delete(kind)
            from xoromail_cli.credentials import store_name

            return (f"the service account key was removed from {store_name()}; to revoke it everywhere, delete the "
                    f"key of {settings.service_account} in the Cloud console, or remove client ID "
                    f"{settings.client_id} from the Admin console's domain-wide delegation")
        return oauth.disconnect(settings, secrets, ca_file=profile.ca_file, timeout=profile.timeout).detail


def _service_account_changes(path: str) -> dict[str, Any]:
    """The settings a service account key gives: its numeric client ID (what the Admin console's delegation
    names), its token endpoint and its email; a user sign-in's traces are cleared."""
    from xoromail_cli.services.google import service_account

    key = service_account.read_key(path)
    return {"client_id": key.client_id, "token_uri": service_account.check_token_uri(key),
            "service_account": key.client_email, "service_account_file": str(Path(path).expanduser().resolve()),
            "client_secrets_file": None, "account": None, "sign_in_expires": None}


SERVICE = GoogleService()
if TYPE_CHECKING:
    KEEPS_PROTOCOL: Service = SERVICE
    """mypy checks here, in the service's own package, that it keeps the whole `Service` protocol."""
