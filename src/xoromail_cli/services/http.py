"""One HTTP layer for every HTTPS service (Exchange, Google, Microsoft 365): one trust policy, one requests
adapter, one trace hook and one way of saying what went wrong on the network.

The trust policy is the one SMTP already keeps (`network.tls_context`), so every connection a profile makes
trusts the same certificates:

- certificates are always verified (host name included), with TLS 1.2 or newer; nothing turns that off;
- trusted are the system store (OpenSSL's defaults: `SSL_CERT_FILE` / `SSL_CERT_DIR` point it elsewhere) plus
  the profile's `ca_file`;
- `REQUESTS_CA_BUNDLE` and `CURL_CA_BUNDLE` are ignored: they neither replace nor add to that trust. requests
  would let them replace a session's `verify` (psf/requests#3829), which would make a variable meant for another
  program decide, unseen, what a cron job trusts; SMTP cannot see them at all. A company CA goes in `ca_file`.

requests is imported only when a session or an adapter is built, on the paths that talk HTTPS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services.network import TEMPORARY_HINT, UNTRUSTED_HINT, network_failure, tls_context

if TYPE_CHECKING:
    import ssl

    import requests

    from xoromail_cli.services.base import TraceCallback

IGNORED_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
"""Environment variables requests would read for trust; the policy above ignores them."""
USER_AGENT = "xoromail"
TRACE_LIMIT = 2000
"""Characters of a body shown by `validate --trace` (a MimeContent runs to megabytes)."""
SECRET_HEADERS = ("authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate")
"""Shown with their scheme only: Basic's base64 password, NTLM messages, bearer tokens."""
COOKIE_HEADERS = ("cookie", "set-cookie")


@dataclass(frozen=True)
class Endpoint:
    """How to talk to one HTTPS service: the SSL context that decides trust, and what the trace may show."""

    context: ssl.SSLContext
    timeout: float | None = None
    """Every request's timeout, whatever the library asks (google-auth's default is 120 s, oauthlib has none);
    None leaves it to the caller (exchangelib sets its own)."""
    trace: TraceCallback | None = None
    bodies: bool = False
    """Whether the trace shows bodies (EWS's SOAP); never for OAuth, whose bodies carry tokens and secrets."""


def endpoint(ca_file: str | None, *, timeout: float | None = None, trace: TraceCallback | None = None,
             bodies: bool = False) -> Endpoint:
    """The endpoint of a profile: its trust (`network.tls_context`: ConfigError/NoInputError for a bad CA file)."""
    return Endpoint(tls_context(ca_file), timeout, trace, bodies)


def session(ca_file: str | None, *, timeout: float | None = None,
            trace: TraceCallback | None = None) -> requests.Session:
    """A new requests session under the trust policy, refusing plain http:// (tokens never travel in clear)."""
    import requests

    http = requests.Session()
    http.headers["User-Agent"] = USER_AGENT
    return mount(http, endpoint(ca_file, timeout=timeout, trace=trace))


def mount(http: requests.Session, where: Endpoint) -> requests.Session:
    """Put the trust policy on a session a library made (google-auth-oauthlib's OAuth2Session is one)."""
    quiet_secret_logs()
    http.mount("https://", adapter_class()(where))
    http.mount("http://", _refusing_adapter())
    return http


_registered: dict[tuple[str, int], Endpoint] = {}
_lock = threading.Lock()


def _key(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or (443 if parts.scheme != "http" else 80)


def register(url: str, where: Endpoint) -> None:
    """For a library that builds its own sessions from `adapter_class()` (exchangelib): requests to the URL's
    host and port use `where` while it is registered."""
    with _lock:
        _registered[_key(url)] = where


def unregister(url: str) -> None:
    with _lock:
        _registered.pop(_key(url), None)


def registered(url: str) -> Endpoint | None:
    with _lock:
        return _registered.get(_key(url))


@lru_cache(maxsize=1)
def _system() -> Endpoint:
    """Hosts nobody registered (a redirect elsewhere) are verified against the system store alone."""
    return endpoint(None)


@lru_cache(maxsize=1)
def adapter_class() -> type[Any]:
    """The one requests adapter: it verifies with the endpoint's context and ignores every other source of
    trust (the request's `verify`, the CA variables), applies the endpoint's timeout and feeds its trace.

    Built with an endpoint it serves that endpoint; built without one (as exchangelib builds adapters) it looks
    the request's host up in `register`, and falls back to the system store."""
    import requests.adapters

    class TrustingAdapter(requests.adapters.HTTPAdapter):
        def __init__(self, where: Endpoint | None = None, **kwargs: Any) -> None:
            self.endpoint = where
            super().__init__(**kwargs)

        def endpoint_for(self, url: str) -> Endpoint:
            return self.endpoint or registered(url) or _system()

        def build_connection_pool_key_attributes(self, request: Any, verify: Any,
                                                 cert: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
            host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, True, cert)
            pool_kwargs["ssl_context"] = self.endpoint_for(request.url).context
            pool_kwargs.pop("ca_certs", None)
            pool_kwargs.pop("ca_cert_dir", None)
            return host_params, pool_kwargs

        def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
            super().cert_verify(conn, url, True, cert)  # the client certificate, if any, still applies
            conn.cert_reqs = "CERT_REQUIRED"  # the context decides; no bundle is loaded into it
            conn.ca_certs = None
            conn.ca_cert_dir = None

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {**self.poolmanager.pool_classes_by_scheme,
                                                       "https": watched_pool_class()}

        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            where = self.endpoint_for(request.url)
            kwargs["verify"] = True  # never off, never a bundle from the environment: the context decides
            if where.timeout is not None:
                kwargs["timeout"] = where.timeout
            response = _bounded(request, lambda: _with_body(
                super(TrustingAdapter, self).send(request, *args, **kwargs), streamed=bool(kwargs.get("stream"))),
                kwargs.get("timeout"))
            if where.trace is not None:
                trace_round_trip(where.trace, request, response, bodies=where.bodies,
                                 streamed=bool(kwargs.get("stream")))
            return response

    return TrustingAdapter


def _with_body(response: Any, *, streamed: bool) -> Any:
    """The response with its body read, so the request's deadline covers it (requests would read it after the
    adapter returned). A streamed body belongs to its reader; a 401's stays unread for requests-ntlm, which
    takes the TLS certificate from its socket."""
    if not streamed and response.status_code != 401:
        _ = response.content
    return response


def deadline_seconds(timeout: float, body: object) -> float:
    """A whole request's bound: twice the timeout (connecting, then the server's answer) plus the body's upload
    at the slowest allowed rate."""
    from xoromail_cli.services.deadline import transfer_seconds

    size = len(body) if isinstance(body, bytes | str) else 0
    return timeout + transfer_seconds(size, timeout)


def _bounded(request: Any, send: Callable[[], Any], timeout: object) -> Any:
    """Send under a watchdog: the timeout bounds each read, the watchdog the whole exchange, however slowly a
    server drips its reply; then it is a ReadTimeout like any other (75)."""
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        return send()  # a (connect, read) pair or none: the caller's own bounds apply
    from requests import exceptions

    from xoromail_cli.services.deadline import Watchdog

    seconds = deadline_seconds(float(timeout), request.body)
    with Watchdog(seconds) as dog:
        try:
            response = send()
        except exceptions.RequestException as exc:
            if dog.fired:
                raise exceptions.ReadTimeout(f"no complete reply within {seconds:g} s", request=request) from exc
            raise
        if dog.fired:  # cut short: http.client takes a head ended by the shutdown for a whole one, body empty
            response.close()
            raise exceptions.ReadTimeout(f"no complete reply within {seconds:g} s", request=request)
        return response


@lru_cache(maxsize=1)
def watched_pool_class() -> type[Any]:
    """urllib3's HTTPS pool, whose connections put their socket under the running request's watchdog."""
    from urllib3.connection import HTTPSConnection
    from urllib3.connectionpool import HTTPSConnectionPool

    from xoromail_cli.services.deadline import Watchdog

    class WatchedConnection(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            Watchdog.watch(self.sock)

        def request(self, *args: Any, **kwargs: Any) -> None:
            Watchdog.watch(self.sock)  # a kept-alive connection, reused
            super().request(*args, **kwargs)

    class WatchedPool(HTTPSConnectionPool):
        ConnectionCls = WatchedConnection

    return WatchedPool


def _refusing_adapter() -> Any:
    """Any http:// URL fails before a byte is sent."""
    from requests.adapters import BaseAdapter
    from requests.exceptions import InvalidSchema

    class RefusingAdapter(BaseAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            raise InvalidSchema(f"refusing plain http:// for {request.url}")

        def close(self) -> None:
            pass

    return RefusingAdapter()


SECRET_LOGGERS = ("requests_oauthlib", "oauthlib", "google_auth_oauthlib", "google.auth", "google.oauth2")
"""Libraries whose DEBUG/INFO records quote token request bodies, auth headers or the redirect's code."""


def quiet_secret_logs() -> None:
    """Keep those records from any handler an embedding program sets up: only warnings pass."""
    import logging

    for name in SECRET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


# The trace hook ----------------------------------------------------------------------------------------------

def redacted_headers(headers: Mapping[str, str]) -> str:
    """Headers one a line; credentials keep their scheme only, cookies nothing."""
    lines = []
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in COOKIE_HEADERS:
            value = "<redacted>"
        elif lowered in SECRET_HEADERS:
            value = f"{value.split(' ', 1)[0]} <redacted>"
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def _body(content: bytes | str | None, bodies: bool) -> str:
    if not content:
        return ""
    if not bodies:
        return f"(body of {len(content)} {'bytes' if isinstance(content, bytes) else 'characters'} not shown)"
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    return text if len(text) <= TRACE_LIMIT else f"{text[:TRACE_LIMIT]}… ({len(text)} characters)"


def trace_round_trip(trace: TraceCallback, request: Any, response: Any, *, bodies: bool, streamed: bool) -> None:
    """Show one request and its response, as `validate --trace` prints them. A 401's body is left unread:
    requests-ntlm takes the TLS certificate for channel binding from that response's socket, and a streamed
    body belongs to its reader."""
    url = request.url.split("?", 1)[0]  # a query string may carry a code or a state
    trace("→", f"{request.method} {url}\n{redacted_headers(request.headers)}\n\n{_body(request.body, bodies)}")
    unread = streamed or response.status_code == 401
    body = "(body not read)" if unread else _body(response.content, bodies)
    trace("←", f"{response.status_code} {response.reason}\n{redacted_headers(response.headers)}\n\n{body}")


# The failure classifier ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hints:
    """A service's own words for where to look; the causes and exit codes are shared."""

    where: str
    """A connection refused or unanswered: the address, port, firewall or proxy."""
    tls: str
    """A TLS handshake that failed for another reason than trust."""
    name: str
    """A host name that does not resolve."""
    untrusted: str = UNTRUSTED_HINT


def failure(stage: str, exc: BaseException, url: str, timeout: float | None, hints: Hints) -> StageFailedError:
    """A requests exception (DNS, refused, TLS, timeouts, a lost connection) as the stage failure users see,
    with the same causes and exit codes as SMTP's; the request itself is never quoted."""
    from requests import exceptions

    parts = urlsplit(url)
    host = parts.hostname or url
    port = parts.port or 443
    wait = timeout or 0.0
    if isinstance(exc, exceptions.InvalidSchema | exceptions.InvalidURL | exceptions.MissingSchema):
        return StageFailedError(stage, f"unusable address {url.split('?', 1)[0]}", "use an https:// address",
                                ExitCode.CONFIG)
    if isinstance(exc, exceptions.ConnectTimeout):
        return StageFailedError(stage, f"no answer from {host}:{port} within {wait:g} s", hints.where,
                                ExitCode.UNAVAILABLE)
    if isinstance(exc, exceptions.Timeout):
        return StageFailedError(stage, f"{host} did not reply within {wait:g} s", TEMPORARY_HINT, ExitCode.TEMPFAIL)
    root = root_cause(exc)
    if root is not None:
        known = network_failure(stage, root, host, port, wait, where_hint=hints.where, tls_hint=hints.tls,
                                name_hint=hints.name, untrusted_hint=hints.untrusted,
                                connect_stages=(stage,) if before_request(exc) else ())
        if known is not None:
            return known
    if isinstance(exc, exceptions.ConnectionError):
        return StageFailedError(stage, f"the connection to {host} was lost ({type(root or exc).__name__})",
                                TEMPORARY_HINT, ExitCode.TEMPFAIL)
    return StageFailedError(stage, f"cannot reach {host}: {type(exc).__name__}", hints.where, ExitCode.UNAVAILABLE)


def root_cause(exc: BaseException) -> OSError | None:
    """The socket or TLS error under a requests exception (requests wraps urllib3, which wraps the socket's
    error as `reason`, argument or cause), the most specific first."""
    import socket
    import ssl

    seen: list[BaseException] = []
    queue: list[BaseException] = [exc]
    while queue and len(seen) < 20:
        current = queue.pop(0)
        if any(current is known for known in seen):
            continue
        seen.append(current)
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        queue += [item for item in nested if isinstance(item, BaseException)]
    for kind in (socket.gaierror, ssl.SSLCertVerificationError, ssl.SSLError, ConnectionRefusedError, TimeoutError,
                 OSError):
        for found in seen:
            if isinstance(found, kind) and not _is_wrapper(found):
                return found
    return None


def _is_wrapper(exc: BaseException) -> bool:
    """requests' and urllib3's own exceptions derive from OSError too; only the socket's are causes."""
    return type(exc).__module__.split(".")[0] in ("requests", "urllib3")


def before_request(exc: BaseException) -> bool:
    """Whether a requests failure came before the request was handed over, so nothing was sent: DNS, a refused
    or unanswered connection, a failed TLS handshake, an unusable URL."""
    import socket
    import ssl

    from requests import exceptions

    if isinstance(exc, exceptions.ConnectTimeout | exceptions.SSLError | exceptions.InvalidSchema
                  | exceptions.InvalidURL | exceptions.MissingSchema):
        return True
    if not isinstance(exc, exceptions.ConnectionError) or isinstance(exc, exceptions.ReadTimeout):
        return False
    root = root_cause(exc)
    if isinstance(root, socket.gaierror | ssl.SSLError | ConnectionRefusedError):
        return True
    return _never_connected(exc)


def _never_connected(exc: BaseException) -> bool:
    """urllib3 says so by class: NewConnectionError (and its NameResolutionError) means no connection stood."""
    current: BaseException | None = exc
    for _ in range(6):
        if current is None:
            return False
        reason = getattr(current, "reason", None)
        for candidate in (current, reason):
            if candidate is not None and type(candidate).__name__ in ("NewConnectionError", "NameResolutionError",
                                                                     "ConnectTimeoutError"):
                return True
        nested = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = nested or current.__cause__ or current.__context__
    return False

