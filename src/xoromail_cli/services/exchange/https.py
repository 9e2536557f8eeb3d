"""HTTPS for exchangelib: the system trust store plus the profile's CA file, whatever the environment says.

requests lets `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` replace a session's `verify` (psf/requests#3829), and
exchangelib builds its own sessions, so the trust store is set where exchangelib documents it: its
`BaseProtocol.HTTP_ADAPTER_CLS`. The adapter looks up the SSL context of the request's host and port, which
the transport registers while it is open; for any other host it verifies as requests always does.
"""

from __future__ import annotations

import ssl
import threading
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from xoromail_cli.errors import ConfigError, NoInputError

_contexts: dict[tuple[str, int], ssl.SSLContext] = {}
_lock = threading.Lock()


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system's trust store (or SSL_CERT_FILE), plus the profile's CA file; always verifying."""
    context = ssl.create_default_context()
    try:
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
    except ssl.SSLError as exc:
        raise ConfigError(f"CA file {ca_file} holds no usable PEM certificate ({exc.reason or exc})",
                          "pass a PEM file with the CA certificate(s) to --ca-file") from None
    except OSError as exc:
        raise NoInputError(f"cannot read CA file {ca_file}: {exc.strerror}",
                           "check the path and permissions of the profile's ca_file") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _key(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or 443


def register(url: str, context: ssl.SSLContext) -> None:
    """Use `context` for every exchangelib request to the URL's host and port."""
    install_adapter()
    with _lock:
        _contexts[_key(url)] = context


def unregister(url: str) -> None:
    with _lock:
        _contexts.pop(_key(url), None)


def context_for(url: str) -> ssl.SSLContext | None:
    with _lock:
        return _contexts.get(_key(url))


@lru_cache(maxsize=1)
def install_adapter() -> type[Any]:
    """Make exchangelib's sessions use `TrustStoreAdapter` (once per process)."""
    import requests.adapters
    from exchangelib.protocol import BaseProtocol

    class TrustStoreAdapter(requests.adapters.HTTPAdapter):
        """Verifies with the registered context; a CA bundle from the environment cannot replace it."""

        def build_connection_pool_key_attributes(self, request: Any, verify: Any,
                                                 cert: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
            context = context_for(request.url)
            if context is None:
                return super().build_connection_pool_key_attributes(request, verify, cert)
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, True, cert)
            pool_kwargs["ssl_context"] = context
            return host_params, pool_kwargs

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            if context_for(url) is None:
                super().cert_verify(conn, url, verify, cert)
                return
            conn.cert_reqs = "CERT_REQUIRED"
            conn.ca_certs = None
            conn.ca_cert_dir = None

    BaseProtocol.HTTP_ADAPTER_CLS = TrustStoreAdapter
    return TrustStoreAdapter
