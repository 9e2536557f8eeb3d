"""HTTPS for exchangelib: the system trust store plus the profile's CA file, whatever the environment says.

requests lets `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` replace a session's `verify` (psf/requests#3829), and
exchangelib builds its own sessions, so the trust store is set where exchangelib documents it: its
`BaseProtocol.HTTP_ADAPTER_CLS`. The adapter looks up the SSL context of the request's host and port, which
the transport registers while it is open; for any other host it verifies as requests always does.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from xoromail_cli.services.base import TraceCallback

TRACE_LIMIT = 2000
"""Characters of a SOAP body shown by `validate --trace` (a MimeContent runs to megabytes)."""
_SECRET_HEADERS = ("authorization", "www-authenticate", "proxy-authorization", "cookie", "set-cookie")


@dataclass(frozen=True)
class _Endpoint:
    context: ssl.SSLContext
    trace: TraceCallback | None


_endpoints: dict[tuple[str, int], _Endpoint] = {}
_lock = threading.Lock()


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """The system trust store plus the profile's CA file, always verifying: the one context every service uses."""
    from xoromail_cli.services.network import tls_context as shared

    return shared(ca_file)


def _key(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or 443


def register(url: str, context: ssl.SSLContext, trace: TraceCallback | None = None) -> None:
    """Use `context` for every exchangelib request to the URL's host and port, and show them to `trace`."""
    install_adapter()
    with _lock:
        _endpoints[_key(url)] = _Endpoint(context, trace)


def unregister(url: str) -> None:
    with _lock:
        _endpoints.pop(_key(url), None)


def _endpoint(url: str) -> _Endpoint | None:
    with _lock:
        return _endpoints.get(_key(url))


def context_for(url: str) -> ssl.SSLContext | None:
    endpoint = _endpoint(url)
    return endpoint.context if endpoint else None


def redacted_headers(headers: Mapping[str, str]) -> str:
    """Headers one a line; credentials (Basic's base64 password, NTLM tokens, cookies) keep their scheme only."""
    lines = []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in ("cookie", "set-cookie"):
            value = "<redacted>"
        elif lowered in _SECRET_HEADERS:
            value = f"{value.split(' ', 1)[0]} <redacted>"
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def _body(content: bytes | str | None) -> str:
    if not content:
        return ""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    return text if len(text) <= TRACE_LIMIT else f"{text[:TRACE_LIMIT]}… ({len(text)} characters)"


def _trace_exchange(trace: TraceCallback, request: Any, response: Any, stream: bool) -> None:
    """Show one round trip. A 401's body is left unread: requests-ntlm takes the TLS certificate for channel
    binding from that response's socket, and a streamed body belongs to its reader."""
    trace("→", f"{request.method} {request.url}\n{redacted_headers(request.headers)}\n\n{_body(request.body)}")
    body = "(body not read)" if stream or response.status_code == 401 else _body(response.content)
    trace("←", f"{response.status_code} {response.reason}\n{redacted_headers(response.headers)}\n\n{body}")


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

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            response = super().send(request, *args, **kwargs)
            endpoint = _endpoint(request.url)
            if endpoint is not None and endpoint.trace is not None:
                _trace_exchange(endpoint.trace, request, response, bool(kwargs.get("stream")))
            return response

    BaseProtocol.HTTP_ADAPTER_CLS = TrustStoreAdapter
    return TrustStoreAdapter
