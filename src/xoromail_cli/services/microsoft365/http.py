"""One requests session for msal and Graph, trusting the system store plus the profile's CA file.

requests lets `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` replace a session's `verify` (psf/requests#3829), so the
trust is not given as `verify`: an adapter puts our own SSL context in every connection pool, and an
environment bundle can only add to it. Certificates are always verified. Imported only on the Microsoft 365
path (requests is slow to import).
"""

from __future__ import annotations

import os
import ssl
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests


def trust_context(ca_file: str | None) -> ssl.SSLContext:
    """The system trust store plus the profile's CA file, always verifying: the one context every service uses."""
    from xoromail_cli.services.network import tls_context as shared

    return shared(ca_file)


def make_session(ca_file: str | None) -> requests.Session:
    """A session whose HTTPS connections all verify against `trust_context(ca_file)`."""
    import requests
    from requests.adapters import HTTPAdapter

    context = trust_context(ca_file)

    class TrustAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = context
            super().init_poolmanager(*args, **kwargs)

        def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
            kwargs["ssl_context"] = context
            return super().proxy_manager_for(proxy, **kwargs)

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            # Always verify, with our context; a bundle from the environment is loaded in addition.
            conn.cert_reqs = "CERT_REQUIRED"
            conn.ca_certs = verify if isinstance(verify, str) and os.path.isfile(verify) else None
            conn.ca_cert_dir = None

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("verify") is False:
                kwargs["verify"] = True  # nobody turns verification off on this path
            return super().send(request, *args, **kwargs)

    session = requests.Session()
    session.mount("https://", TrustAdapter())
    session.headers["User-Agent"] = "xoromail"
    return session
