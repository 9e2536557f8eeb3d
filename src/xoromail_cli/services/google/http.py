"""One requests session for every HTTPS call of this service, trusting the system store plus the CA file.

requests lets `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` replace a session's own `verify` (psf/requests#3829),
so the CA file is not given as `verify`: the adapter's pool carries an SSLContext that already trusts it, and
the adapter sends every request with `verify=True` whatever the environment or caller says.
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests


SECRET_LOGGERS = ("requests_oauthlib", "oauthlib", "google_auth_oauthlib", "google.auth", "google.oauth2")
"""Libraries whose DEBUG/INFO records quote token request bodies, Basic auth headers or the redirect's code."""


def quiet_secret_logs() -> None:
    """Keep those records from any handler an embedding program sets up: only warnings pass."""
    import logging

    for name in SECRET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system trust store plus the profile's CA file, always verifying: the one context every service uses."""
    from xoromail_cli.services.network import tls_context as shared

    return shared(ca_file)


def session(ca_file: str | None, timeout: float) -> requests.Session:
    """A new session whose HTTPS connections trust `ca_file` too, immune to CA variables in the environment."""
    import requests

    return trusting(requests.Session(), ca_file, timeout)


def trusting(http: requests.Session, ca_file: str | None, timeout: float) -> requests.Session:
    """Mount our adapters on an existing session (google-auth-oauthlib's OAuth2Session is one).

    Every request gets `timeout` (google-auth's own default is 120 s, and oauthlib's token request has none).
    """
    from requests.adapters import HTTPAdapter

    quiet_secret_logs()
    context = tls_context(ca_file)

    class _TrustingAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = context
            super().init_poolmanager(*args, **kwargs)

        def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
            kwargs["verify"] = True  # never off, never replaced by $REQUESTS_CA_BUNDLE: the context decides
            kwargs["timeout"] = timeout
            return super().send(request, *args, **kwargs)

    http.mount("https://", _TrustingAdapter())
    http.mount("http://", _refusing_adapter())
    return http


def _refusing_adapter() -> Any:
    """Tokens never travel over plain HTTP: any http:// URL fails before a byte is sent."""
    from requests.adapters import BaseAdapter
    from requests.exceptions import InvalidSchema

    class _Refuse(BaseAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            raise InvalidSchema(f"refusing plain http:// for {request.url}")

        def close(self) -> None:
            pass

    return _Refuse()
