"""Google Workspace without a browser: a service account with domain-wide delegation signs in as the mailbox.

The token request is google-auth's own (`google.oauth2.service_account.Credentials` with `subject` = the mailbox
and the one scope `gmail.send`): a JWT (RS256) signed with the account's key, traded at the key's `token_uri`
for an access token. No refresh token exists, so nothing can expire after 7 days or be lost; the key JSON is a
secret (kind `service_account_key`, in the secret store) and the file may be deleted after setup. google-auth is
imported only when a token is fetched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import ConfigError, DataError, ExitCode, NoInputError, StageFailedError
from xoromail_cli.services.google import hints
from xoromail_cli.services.google.oauth import ACCESS_TOKEN, EARLY, SERVICE_ACCOUNT_KEY

if TYPE_CHECKING:
    import requests

    from xoromail_cli.services.base import SecretStore, TraceCallback
    from xoromail_cli.services.google.oauth import AccessToken
    from xoromail_cli.services.google.settings import GoogleSettings

KEY_KIND = SERVICE_ACCOUNT_KEY
SCOPE = hints.SERVICE_ACCOUNT_SCOPE
KEY_HINT = ("download a JSON key of the service account from the Google Cloud console (IAM & Admin → Service "
            "accounts → the account → Keys → Add key → Create new key → JSON)")
_FIELDS = ("client_email", "client_id", "private_key", "token_uri")


@dataclass(frozen=True)
class ServiceAccountKey:
    """The public parts of a key JSON; `text` (with the private key) never shows in a repr."""

    client_email: str
    client_id: str
    token_uri: str
    text: str = field(repr=False)


def parse_key(text: str, where: str = "the service account key") -> ServiceAccountKey:
    try:
        document = json.loads(text)
    except ValueError:
        raise DataError(f"{where} is not JSON", KEY_HINT, field="service_account") from None
    if not isinstance(document, dict) or document.get("type") != "service_account":
        raise DataError(f"{where} is not a service account key (its \"type\" is not \"service_account\")",
                        KEY_HINT + "; an OAuth client's JSON goes to --client-secrets", field="service_account")
    missing = [name for name in _FIELDS if not isinstance(document.get(name), str) or not document[name]]
    if missing:
        raise DataError(f"{where} lacks {', '.join(missing)}", KEY_HINT, field="service_account")
    if "PRIVATE KEY-----" not in document["private_key"]:
        raise DataError(f"{where} holds no private key", KEY_HINT, field="service_account")
    return ServiceAccountKey(document["client_email"], document["client_id"], document["token_uri"], text)


def read_key(path: str | Path) -> ServiceAccountKey:
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise NoInputError(f"cannot read the service account key {file}: {getattr(exc, 'strerror', None) or exc}",
                           KEY_HINT) from None
    return parse_key(text, str(file))


def stored_key(secrets: SecretStore) -> str:
    text = secrets.get(KEY_KIND)
    if not text:
        raise StageFailedError("token", "no service account key is stored for this profile",
                               "run `" + hints.SERVICE_ACCOUNT_SETUP + "` again", ExitCode.CONFIG)
    return text


def access_token(settings: GoogleSettings, secrets: SecretStore, mailbox: str, http_session: requests.Session, *,
                 timeout: float, trace: TraceCallback | None = None) -> AccessToken:
    """Sign a JWT for `mailbox` and trade it at the token endpoint; the new access token goes back to `secrets`."""
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    from xoromail_cli.services.google.oauth import AccessToken as Token

    info: dict[str, Any] = json.loads(stored_key(secrets))
    info["token_uri"] = settings.token_uri  # the profile's endpoint (a proxy or a test server may stand in)
    try:
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]  # google-auth: unannotated
            info, scopes=[SCOPE], subject=mailbox)
    except ValueError:
        raise StageFailedError("token", "the stored service account key cannot be read", hints.KEY_DELETED_HINT,
                               ExitCode.CONFIG) from None
    if trace:
        trace("·", f"signing a JWT as {info.get('client_email')} for {mailbox} (scope {SCOPE}) and trading it at "
                   f"{settings.token_uri}")
    request = Request(session=http_session)
    try:
        credentials.refresh(request)
    except Exception as exc:  # noqa: BLE001  # google-auth's RefreshError / TransportError, mapped below
        raise failure(exc, settings, mailbox, timeout) from None
    finally:
        request.session = None  # type: ignore[assignment]  # else its __del__ closes our session
    expiry = credentials.expiry.replace(tzinfo=UTC) if credentials.expiry else datetime.now(UTC) + EARLY * 2
    token = Token(str(credentials.token), expiry)
    secrets.set(ACCESS_TOKEN, token.to_secret())
    return token


def failure(exc: BaseException, settings: GoogleSettings, mailbox: str, timeout: float) -> StageFailedError:
    """Google's answers to a JWT grant, each with its fix (docs/setup-google.md, docs/explain.md)."""
    text = " ".join(str(exc.args[0] if exc.args else exc).split())
    lowered = text.lower()
    if type(exc).__name__ == "RefreshError":
        if "unauthorized_client" in lowered:
            return StageFailedError("token", f"Google refused the service account for {mailbox}: {text}",
                                    hints.delegation_hint(settings.client_id), ExitCode.NOPERM)
        if "invalid jwt signature" in lowered:
            return StageFailedError("token", f"Google refused the service account key: {text}",
                                    hints.KEY_DELETED_HINT, ExitCode.NOPERM)
        if "invalid email or user id" in lowered or "not a valid email" in lowered:
            return StageFailedError("token", f"Google refused the mailbox {mailbox}: {text}", hints.SUBJECT_HINT,
                                    ExitCode.NOPERM)
    return hints.oauth_failure("token", exc, settings.token_uri, timeout)


def describe(settings: GoogleSettings) -> str:
    return f"service account {settings.service_account} (client ID {settings.client_id}, domain-wide delegation)"


def check_token_uri(key: ServiceAccountKey) -> str:
    from xoromail_cli.services.google.settings import check_https_url

    try:
        return check_https_url(key.token_uri, "token_uri")
    except DataError as error:
        raise ConfigError(f"the service account key's token_uri is not https: {key.token_uri!r}", KEY_HINT,
                          field="service_account") from error

