"""The loopback server Google's browser sign-in returns to: one request, a page that tells the truth.

google-auth-oauthlib's `run_local_server` shows one fixed page whatever came back, and binds without
SO_REUSEADDR, so a setup run again right after a failed sign-in finds the port still taken (the browser's
connection lingers in TIME_WAIT). This runs the same steps with the flow's public methods (authorization_url,
fetch_token): the page says "cancelled" when the user cancelled; the port is bound with SO_REUSEADDR (on Linux
and macOS that never lets a second listener in; Windows keeps its exclusive bind); `::1` is held too when the
redirect names `localhost`, so no other program can take the answer there.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import webbrowser
import wsgiref.simple_server
import wsgiref.util
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

PAGES = {
    "allowed": "Signed in: you can close this window and return to xoromail.",
    "cancelled": "Sign-in cancelled: nothing was saved. You can close this window; run xoromail setup again to "
                 "sign in.",
    "refused": "Google did not sign you in ({error}): nothing was saved. Return to xoromail, which says what to do.",
}


class _Answer:
    """The WSGI app: keeps the redirect's URI and answers with the page that fits it."""

    def __init__(self) -> None:
        self.last_request_uri: str | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        self.last_request_uri = wsgiref.util.request_uri(environ)
        start_response("200 OK", [("Content-type", "text/plain; charset=utf-8")])
        return [page_for(self.last_request_uri).encode("utf-8")]


def page_for(uri: str) -> str:
    """What the browser shows for the redirect Google sent it with."""
    error = (parse_qs(urlsplit(uri).query).get("error") or [""])[0]
    if not error:
        return PAGES["allowed"]
    if error == "access_denied":
        return PAGES["cancelled"]
    return PAGES["refused"].format(error="".join(c for c in error if c.isalnum() or c == "_")[:60])


class _Server(wsgiref.simple_server.WSGIServer):
    allow_reuse_address = sys.platform != "win32"  # Windows: SO_REUSEADDR would let another program bind too


class _Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        """Nothing on stderr: the CLI reports the outcome."""


@contextlib.contextmanager
def _ipv6_loopback_held(host: str, port: int) -> Iterator[None]:
    """While waiting, hold [::1]:port too, so `localhost` cannot reach another program's listener there."""
    if host != "localhost" or not socket.has_ipv6:
        yield
        return
    held = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(OSError):  # no IPv6 here: nothing to hold
            held.bind(("::1", port))
            held.listen(1)
        yield
    finally:
        held.close()


def wait_on_loopback(flow: Any, *, host: str, bind_addr: str, port: int, open_browser: bool,
                     timeout_seconds: float, **kwargs: Any) -> Any:
    """InstalledAppFlow.run_local_server's steps: show the URL, wait for one redirect, fetch the token."""
    from google_auth_oauthlib.flow import WSGITimeoutError

    answer = _Answer()
    server = wsgiref.simple_server.make_server(bind_addr or host, port, answer, server_class=_Server,
                                               handler_class=_Quiet)
    try:
        with _ipv6_loopback_held(host, server.server_port):
            flow.redirect_uri = f"http://{host}:{server.server_port}/"
            url, _ = flow.authorization_url(**kwargs)
            if open_browser:
                webbrowser.open(url, new=1, autoraise=True)
            server.timeout = timeout_seconds
            server.handle_request()
        if answer.last_request_uri is None:
            raise WSGITimeoutError("Timed out waiting for response from authorization server")
        flow.fetch_token(authorization_response=answer.last_request_uri.replace("http", "https", 1))
    finally:
        server.server_close()
    return flow.credentials
