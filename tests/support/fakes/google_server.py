"""Google's OAuth endpoints and the Gmail API on 127.0.0.1 over HTTPS, answering as Google does.

One server holds the authorization endpoint (redirects to the loopback redirect URI with code and state, or
`error=access_denied`), the token endpoint (code exchange with PKCE, refresh, `invalid_grant`,
`refresh_token_expires_in`, an ID token carrying `email`), the revoke endpoint and `users.messages.send`
(checks the bearer token and its scopes, decodes `raw`, answers 401 / 403 / 429 / 5xx on demand). Error
bodies are Google's own JSON shapes and messages.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.support.fakes.http_server import HangingUpServer

CLIENT_ID = "123456789012-fake.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-fake-client-secret-value"
PROJECT = "123456789012"
GRANTED = ("openid https://www.googleapis.com/auth/userinfo.email "
           "https://www.googleapis.com/auth/gmail.send")
ENABLE_URL = f"https://console.developers.google.com/apis/api/gmail.googleapis.com/overview?project={PROJECT}"


def api_error(code: int, message: str, reason: str, status: str, domain: str = "global",
              details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Google's JSON error body (google.rpc.Status with the legacy `errors` list)."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status,
                             "errors": [{"message": message, "domain": domain, "reason": reason}]}
    if details:
        error["details"] = details
    return {"error": error}


Canned = tuple[int, dict[str, Any], dict[str, str]]
"""A reply for the next send: status, JSON body, extra headers."""
ACCESS_NOT_CONFIGURED: Canned = (403, api_error(
    403, f"Gmail API has not been used in project {PROJECT} before or it is disabled. Enable it by visiting "
    f"{ENABLE_URL} then retry. If you enabled this API recently, wait a few minutes for the action to propagate "
    "to our systems and retry.", "accessNotConfigured", "PERMISSION_DENIED", "usageLimits",
    [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED", "domain": "googleapis.com",
      "metadata": {"service": "gmail.googleapis.com", "consumer": f"projects/{PROJECT}",
                   "activationUrl": ENABLE_URL}}]), {})
INSUFFICIENT_SCOPE: Canned = (403, api_error(
    403, "Request had insufficient authentication scopes.", "insufficientPermissions", "PERMISSION_DENIED",
    details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
              "domain": "googleapis.com"}]), {})
TOO_MANY_REQUESTS: Canned = (429, {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                                     "status": "RESOURCE_EXHAUSTED"}}, {"Retry-After": "7"})
"""A plain throttle (Google's front end), not the sending limit: worth a retry after Retry-After."""
BACKEND_ERROR: Canned = (503, api_error(503, "The service is currently unavailable.", "backendError",
                                        "UNAVAILABLE"), {})
DAILY_QUOTA: Canned = (429, api_error(429, "User-rate limit exceeded.  Retry after 2026-12-02T08:00:00.000Z "
                              "(Daily sending quota exceeded)", "userRateLimitExceeded", "RESOURCE_EXHAUSTED",
                              "usageLimits"), {"Retry-After": "3600"})
INVALID_CREDENTIALS: Canned = (401, api_error(
    401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    "authError", "UNAUTHENTICATED"), {})


TOO_LARGE_PAGE = ("<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error 413 (Request Entity Too Large)!!1"
                  "</title><p><b>413.</b> <ins>That\u2019s an error.</ins><p>Your client issued a request that was too "
                  "large. <ins>That\u2019s all we know.</ins>")
"""The page Google's front end serves for a request body over the limit (HTML, not the API's JSON)."""


@dataclass(kw_only=True)
class GoogleState:
    """What the server knows and what a test asks of it; every field is read under `lock`."""

    account: str = "billing@company.test"
    granted: str = GRANTED
    deny: bool = False
    refresh_token_expires_in: int | None = None
    access_lifetime: int = 3599
    refresh_error: tuple[str, str] | None = None
    send_delay: float = 0.0
    """Seconds a send waits before answering (after taking the message), like a stalled front end."""
    send_replies: list[Canned] = field(default_factory=list)
    drop_send: bool = False
    """Read the whole send request, then close the connection without answering (a lost answer)."""
    max_request_bytes: int | None = None
    """Google's front end answers a larger request body with its HTML 413 page (the API's limit is 35 MB)."""
    """Answers for the next sends, in order, before a send succeeds again."""
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: dict[str, tuple[str, float]] = field(default_factory=dict)
    """access token → (scope, expiry as time.time())."""
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    """Query parameters of every authorization request that got a code."""
    grants: list[str] = field(default_factory=list)
    """grant_type of every token request, in order."""
    revoked: list[str] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)
    send_calls: int = 0
    connections: int = 0
    """TLS connections accepted (a batch over one session opens one)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_refresh_token(self) -> str:
        token = "1//fake-refresh-" + secrets.token_urlsafe(24)
        self.refresh_tokens.add(token)
        return token

    def messages(self) -> list[Message]:
        return [message_from_bytes(data) for data in self.sent]


def id_token(email: str, audience: str) -> str:
    """An ID token shaped like Google's (RS256 header; the signature is not checked by a client that got it
    straight from the token endpoint)."""
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": audience, "sub": "1234567890", "email": email,
              "email_verified": True, "iat": now, "exp": now + 3600}
    return f"{part({'alg': 'RS256', 'typ': 'JWT', 'kid': 'fake'})}.{part(claims)}.c2lnbmF0dXJl"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as Google's front end: a batch reuses one connection
    disable_nagle_algorithm = True  # headers and body go in two writes; without this, delayed ACKs cost 40 ms

    def setup(self) -> None:
        super().setup()
        with self.server.state.lock:
            self.server.state.connections += 1

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read state, not logs
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/o/oauth2/auth":
            self._authorize(parse_qs(url.query))
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if url.path == "/token":
            self._token({k: v[0] for k, v in parse_qs(body.decode()).items()})
        elif url.path == "/revoke":
            form = {k: v[0] for k, v in parse_qs(body.decode() or url.query).items()}
            self._revoke(form.get("token", ""))
        elif url.path == "/gmail/v1/users/me/messages/send":
            self._send(body)
        else:
            self._json(404, api_error(404, "Not Found", "notFound", "NOT_FOUND"))

    def _authorize(self, query: dict[str, list[str]]) -> None:
        args = {k: v[0] for k, v in query.items()}
        state = self.server.state
        redirect = args.get("redirect_uri", "")
        if args.get("client_id") != CLIENT_ID or not redirect.startswith(("http://localhost:", "http://127.0.0.1:")):
            self._json(400, {"error": "invalid_request", "error_description": "Error 400: redirect_uri_mismatch"})
            return
        if state.deny:
            answer = {"error": "access_denied", "state": args.get("state", "")}
        else:
            code = "4/fake-code-" + secrets.token_urlsafe(16)
            with state.lock:
                state.codes[code] = {"redirect_uri": redirect, "challenge": args.get("code_challenge", ""),
                                     "scope": args.get("scope", "")}
                state.authorize_requests.append(args)
            answer = {"state": args.get("state", ""), "code": code, "scope": state.granted}
        self.send_response(302)
        self.send_header("Location", f"{redirect}?{urlencode(answer)}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _token(self, form: dict[str, str]) -> None:
        state = self.server.state
        with state.lock:
            state.grants.append(form.get("grant_type", ""))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):  # RFC 6749 §2.3.1: Google takes the client in the body or in Basic auth
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
            self._json(401, {"error": "invalid_client", "error_description": "Unauthorized"})
            return
        if form.get("grant_type") == "authorization_code":
            self._exchange(form)
        elif form.get("grant_type") == "refresh_token":
            self._refresh(form)
        else:
            self._json(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})

    def _exchange(self, form: dict[str, str]) -> None:
        state = self.server.state
        with state.lock:
            issued = state.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if issued is None or issued["redirect_uri"] != form.get("redirect_uri") or issued["challenge"] != challenge:
            self._json(400, {"error": "invalid_grant", "error_description": "Bad Request"})
            return
        with state.lock:
            refresh_token = state.issue_refresh_token()
        answer = self._access_answer(state.granted)
        answer["refresh_token"] = refresh_token
        if state.refresh_token_expires_in is not None:
            answer["refresh_token_expires_in"] = state.refresh_token_expires_in
        self._json(200, answer)

    def _refresh(self, form: dict[str, str]) -> None:
        state = self.server.state
        alive = form.get("refresh_token", "") in state.refresh_tokens
        if state.refresh_error or not alive:
            error, description = state.refresh_error or ("invalid_grant", "Token has been expired or revoked.")
            self._json(400, {"error": error, "error_description": description})
            return
        self._json(200, self._access_answer(state.granted))

    def _access_answer(self, scope: str) -> dict[str, Any]:
        state = self.server.state
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with state.lock:
            state.access_tokens[token] = (scope, time.time() + state.access_lifetime)
        return {"access_token": token, "expires_in": state.access_lifetime, "scope": scope, "token_type": "Bearer",
                "id_token": id_token(state.account, CLIENT_ID)}

    def _revoke(self, token: str) -> None:
        state = self.server.state
        with state.lock:
            known = token in state.refresh_tokens or token in state.access_tokens
            state.refresh_tokens.discard(token)
            state.access_tokens.pop(token, None)
            if known:
                state.revoked.append(token)
                state.access_tokens.clear()  # revoking the grant ends its access tokens too
        if known:
            self._json(200, {})
        else:
            self._json(400, {"error": "invalid_token", "error_description": "Token expired or revoked"})

    def _send(self, body: bytes) -> None:
        state = self.server.state
        bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
        with state.lock:
            state.send_calls += 1
            scope, expiry = state.access_tokens.get(bearer, ("", 0.0))
            canned = state.send_replies.pop(0) if state.send_replies and expiry > time.time() else None
        if state.send_delay:
            time.sleep(state.send_delay)
        if state.drop_send:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if state.max_request_bytes is not None and len(body) > state.max_request_bytes:
            self._html(413, TOO_LARGE_PAGE)
        elif expiry <= time.time():
            self._json(*INVALID_CREDENTIALS)
        elif "gmail.send" not in scope:
            self._json(*INSUFFICIENT_SCOPE)
        elif canned is not None:
            self._json(*canned)
        else:
            self._accept(body)

    def _accept(self, body: bytes) -> None:
        raw = str(json.loads(body).get("raw", ""))
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        message = message_from_bytes(data)
        if not any(message.get(header) for header in ("To", "Cc", "Bcc")):
            self._json(400, api_error(400, "Recipient address required", "invalidArgument", "INVALID_ARGUMENT"))
            return
        with self.server.state.lock:
            self.server.state.sent.append(data)
            number = len(self.server.state.sent)
        self._json(200, {"id": f"18c{number:013x}", "threadId": f"18c{number:013x}", "labelIds": ["SENT"]})

    def _html(self, code: int, page: str) -> None:
        data = page.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(HangingUpServer):
    state: GoogleState

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (the timeout and TLS tests) are expected; the test asserts what they saw."""


class GoogleServer:
    """Start with `start()`, stop with `stop()`; `url` is its https://127.0.0.1:PORT base."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.state = GoogleState()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> GoogleServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and hang up on every open keep-alive connection, as a restarted server would."""
        self._server.hang_up()
        self._thread.join(timeout=5)

    def client_secrets(self, path: Path) -> Path:
        """The JSON the Google Cloud console downloads for a Desktop app client, pointed at this server."""
        path.write_text(json.dumps({"installed": {
            "client_id": CLIENT_ID, "project_id": "xoromail-test", "auth_uri": f"{self.url}/o/oauth2/auth",
            "token_uri": f"{self.url}/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_secret": CLIENT_SECRET, "redirect_uris": ["http://localhost"]}}), encoding="utf-8")
        return path
