"""A Microsoft identity platform and Microsoft Graph on 127.0.0.1, over HTTPS, for the real msal to talk to.

It answers with the JSON shapes and AADSTS texts that login.microsoftonline.com and graph.microsoft.com send
(shared provider facts): OpenID configuration, device code pending → approved, authorization code with PKCE,
refresh token, client credentials (secret or certificate assertion), ID tokens with `preferred_username`, and
Graph `sendMail` that checks the bearer token and decodes the MIME. Failures are asked for by the test.
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
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.support.fakes.aadsts import CLIENT_ID as CLIENT_ID  # the fake's identity, re-exported for the tests
from tests.support.fakes.aadsts import PENDING, aadsts_body
from tests.support.fakes.aadsts import TENANT as TENANT
from tests.support.fakes.graph_drafts import DraftStore, draft_request, is_draft_path, upload_put
from tests.support.fakes.http_server import HangingUpServer

TENANT_ID = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
CLIENT_SECRET = "Zq8~fake.client-secret.value_0123456789"
USER = "billing@company.test"
ADMIN = "admin@company.test"

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Issued:
    user: str | None
    scope: str
    expires_at: float
    permissions: frozenset[str] = frozenset()
    """What the token's `scp` (delegated) or `roles` (app-only) claim grants, e.g. Mail.Send."""


@dataclass(kw_only=True)
class SentMail:
    path: str
    sender: str
    """Who the token belongs to (the signed-in user, or "app")."""
    mime: bytes
    content_type: str
    client_port: int


@dataclass
class GraphReply:
    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


class MicrosoftServer:
    """Start with `with MicrosoftServer(context) as server:`; `server.authority_host` and `graph_url` for msal."""

    def __init__(self, tls_context: ssl.SSLContext, *, user: str = USER, certificate_pem: bytes | None = None,
                 token_lifetime: int = 3600) -> None:
        self.tls_context = tls_context
        self.user = user
        """Who approves a device code or a browser sign-in."""
        self.certificate_pem = certificate_pem
        self.token_lifetime = token_lifetime
        self.secret_expired = False
        self.failures: list[tuple[int, str | None]] = []
        """(AADSTS code, grant type or None for any) answered to the next matching token request."""
        self.graph_replies: list[GraphReply] = []
        self.drop_send = False
        """Read the whole sendMail request, then close the connection without answering (a lost answer)."""
        self.max_mime_bytes: int | None = None
        """The mailbox's MaxSendSize: a larger message is answered 400 ErrorMessageSizeExceeded."""
        self.sent: list[SentMail] = []
        self.token_requests: list[str] = []
        self.requests_seen: list[str] = []
        """Every request's method and path, in order (proves when no network call was made)."""
        self.access_tokens: dict[str, Issued] = {}
        self.app_roles = ["Mail.Send"]
        """The application permissions granted with admin consent: the app token's `roles` claim."""
        self.drafts = DraftStore()
        self.refresh_tokens: dict[str, tuple[str, str]] = {}
        self.device_codes: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self._httpd: HangingUpServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------------------------------------
    def __enter__(self) -> MicrosoftServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        httpd = HangingUpServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.socket = self.tls_context.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._httpd is not None:
            self._httpd.hang_up()  # and close the open keep-alive connections, as a restarted server would
        if self._thread is not None:
            self._thread.join(5)

    @property
    def base(self) -> str:
        assert self._httpd is not None
        return f"https://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def authority_host(self) -> str:
        return self.base

    @property
    def graph_url(self) -> str:
        return self.base + "/v1.0"

    # what tests do -----------------------------------------------------------------------------------------
    def approve(self, user_code: str, user: str | None = None) -> None:
        """The person at microsoft.com/devicelogin enters the code and signs in."""
        with self.lock:
            for flow in self.device_codes.values():
                if flow["user_code"] == user_code:
                    flow["user"] = user or self.user

    def fail(self, code: int, grant_type: str | None = None) -> None:
        self.failures.append((code, grant_type))

    def expire_all_access_tokens(self) -> None:
        with self.lock:
            for issued in self.access_tokens.values():
                issued.expires_at = 0

    # token issuing ------------------------------------------------------------------------------------------
    def issue(self, user: str | None, scope: str, nonce: str | None = None) -> dict[str, Any]:
        names = [part.rsplit("/", 1)[-1] for part in scope.split() if "/" in part]
        granted = frozenset(self.app_roles if user is None else [n for n in names if n != ".default"])
        claims = {"aud": "https://graph.microsoft.com", "tid": TENANT_ID, "exp": int(time.time()) + 3600,
                  **({"roles": sorted(granted)} if user is None else {"scp": " ".join(sorted(granted)), "upn": user})}
        access = ".".join((b64url(b'{"typ":"JWT","alg":"RS256"}'), b64url(json.dumps(claims).encode()),
                           secrets.token_urlsafe(24)))  # Graph's tokens are JWTs; the signature is not checked here
        with self.lock:
            self.access_tokens[access] = Issued(user, scope, time.time() + self.token_lifetime, granted)
        reply: dict[str, Any] = {"token_type": "Bearer", "scope": scope, "expires_in": self.token_lifetime,
                                 "ext_expires_in": self.token_lifetime, "access_token": access}
        if user is None:
            return reply
        oid = hashlib.sha256(user.encode()).hexdigest()[:32]
        refresh = "0.ARfake." + secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[refresh] = (user, scope)
        now = int(time.time())
        claims = {"aud": CLIENT_ID, "iss": f"{self.base}/{TENANT_ID}/v2.0", "iat": now, "nbf": now,
                  "exp": now + 3600, "name": user.split("@")[0].title(), "oid": oid, "sub": oid[::-1],
                  "preferred_username": user, "tid": TENANT_ID, "ver": "2.0"}
        if nonce:
            claims["nonce"] = nonce
        id_token = ".".join((b64url(b'{"alg":"RS256","typ":"JWT"}'), b64url(json.dumps(claims).encode()),
                             b64url(b"signature")))
        reply.update(refresh_token=refresh, id_token=id_token,
                     client_info=b64url(json.dumps({"uid": oid, "utid": TENANT_ID}).encode()))
        return reply

    def bearer(self, header: str | None) -> Issued | None:
        token = (header or "").removeprefix("Bearer ")
        with self.lock:
            issued = self.access_tokens.get(token)
        if issued is None or issued.expires_at < time.time():
            return None
        return issued


class _Handler(BaseHTTPRequestHandler):
    fake: MicrosoftServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
        return

    def reply(self, status: int, body: dict[str, Any] | str | None = None,
              headers: dict[str, str] | None = None) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body or "").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if isinstance(body, dict) else "text/html")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        return {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}

    def do_GET(self) -> None:
        self.fake.requests_seen.append(f"GET {self.path}")
        parts = urlparse(self.path)
        tenant = parts.path.split("/")[1]
        if tenant not in (TENANT, TENANT_ID):
            self.reply(*aadsts_body(90002, tenant=tenant))
        elif parts.path.endswith("/v2.0/.well-known/openid-configuration"):
            root = f"{self.fake.base}/{tenant}/oauth2/v2.0"
            self.reply(200, {"issuer": f"{self.fake.base}/{TENANT_ID}/v2.0", "token_endpoint": f"{root}/token",
                             "authorization_endpoint": f"{root}/authorize",
                             "device_authorization_endpoint": f"{root}/devicecode",
                             "tenant_region_scope": "EU"})
        elif parts.path.endswith("/oauth2/v2.0/authorize"):
            self.authorize({key: values[0] for key, values in parse_qs(parts.query).items()})
        else:
            self.reply(404, {"error": "not_found"})

    def authorize(self, query: dict[str, str]) -> None:
        """The sign-in page, already signed in: answers with the form_post page that returns the code."""
        code = secrets.token_urlsafe(16)
        self.fake.codes[code] = {"user": self.fake.user, "challenge": query.get("code_challenge"),
                                 "nonce": query.get("nonce"), "redirect_uri": query["redirect_uri"],
                                 "scope": query.get("scope", "")}
        self.reply(200, f'<form method="post" action="{query["redirect_uri"]}">'
                        f'<input type="hidden" name="code" value="{code}">'
                        f'<input type="hidden" name="state" value="{query.get("state", "")}"></form>')

    def do_PUT(self) -> None:
        self.fake.requests_seen.append(f"PUT {urlparse(self.path).path}")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.reply(*upload_put(self.fake.drafts, self.fake.base, self.path, self.headers, body))

    def do_POST(self) -> None:
        self.fake.requests_seen.append(f"POST {self.path}")
        path = urlparse(self.path).path
        if path.startswith("/v1.0/"):
            self.graph(path)
            return
        form = self.form()
        if form.get("client_id") != CLIENT_ID:
            self.reply(*aadsts_body(700016, client=form.get("client_id", "")))
        elif path.endswith("/oauth2/v2.0/devicecode"):
            self.devicecode(form)
        elif path.endswith("/oauth2/v2.0/token"):
            self.token(form)
        else:
            self.reply(404, {"error": "not_found"})

    def devicecode(self, form: dict[str, str]) -> None:
        device_code, user_code = secrets.token_urlsafe(24), secrets.token_hex(4).upper()
        with self.fake.lock:
            self.fake.device_codes[device_code] = {"user_code": user_code, "scope": form.get("scope", ""),
                                                   "user": None}
        self.reply(200, {"device_code": device_code, "user_code": user_code, "interval": 1, "expires_in": 900,
                         "verification_uri": "https://microsoft.com/devicelogin",
                         "message": f"To sign in, use a web browser to open the page "
                                    f"https://microsoft.com/devicelogin and enter the code {user_code} to "
                                    "authenticate."})

    def token(self, form: dict[str, str]) -> None:
        grant = form.get("grant_type", "")
        self.fake.token_requests.append(grant)
        for index, (code, wanted) in enumerate(self.fake.failures):
            if wanted in (None, grant):
                del self.fake.failures[index]
                self.reply(*aadsts_body(code))
                return
        handler = {"urn:ietf:params:oauth:grant-type:device_code": self.device_grant,
                   "authorization_code": self.code_grant, "refresh_token": self.refresh_grant,
                   "client_credentials": self.client_grant}.get(grant)
        if handler is None:
            self.reply(400, {"error": "unsupported_grant_type"})
        else:
            handler(form)

    def device_grant(self, form: dict[str, str]) -> None:
        flow = self.fake.device_codes.get(form.get("device_code", ""))
        if flow is None:
            self.reply(400, {"error": "expired_token", "error_description": "AADSTS70019: expired"})
        elif flow["user"] is None:
            self.reply(400, {"error": PENDING[0], "error_description": PENDING[1], "error_codes": [PENDING[2]]})
        else:
            self.reply(200, self.fake.issue(flow["user"], flow["scope"]))

    def code_grant(self, form: dict[str, str]) -> None:
        grant = self.fake.codes.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri") or \
                b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            self.reply(400, {"error": "invalid_grant", "error_description": "AADSTS54005: OAuth2 Authorization "
                                                                            "code was already redeemed."})
            return
        self.reply(200, self.fake.issue(grant["user"], grant["scope"], grant["nonce"]))

    def refresh_grant(self, form: dict[str, str]) -> None:
        with self.fake.lock:
            known = self.fake.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if known is None:
            self.reply(*aadsts_body(70008))
            return
        self.reply(200, self.fake.issue(known[0], form.get("scope", known[1])))

    def client_grant(self, form: dict[str, str]) -> None:
        if "client_assertion" in form:
            ok = self.assertion_valid(form["client_assertion"])
        else:
            ok = form.get("client_secret") == CLIENT_SECRET
        if not ok:
            self.reply(*aadsts_body(7000215))
        elif self.fake.secret_expired:
            self.reply(*aadsts_body(7000222))
        else:
            self.reply(200, self.fake.issue(None, form.get("scope", "")))

    def assertion_valid(self, assertion: str) -> bool:
        import jwt
        from cryptography import x509

        if self.fake.certificate_pem is None:
            return False
        public_key = x509.load_pem_x509_certificate(self.fake.certificate_pem).public_key()
        try:
            claims = jwt.decode(assertion, public_key, algorithms=["RS256", "PS256"],  # type: ignore[arg-type]  # an RSA key from cryptography is what PyJWT takes
                                audience=f"{self.fake.base}/{TENANT}/oauth2/v2.0/token")
        except jwt.PyJWTError:
            return False
        return bool(claims.get("iss") == CLIENT_ID == claims.get("sub"))

    # Graph -----------------------------------------------------------------------------------------------
    def graph(self, path: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        issued = self.fake.bearer(self.headers.get("Authorization"))
        if issued is None:
            self.reply(401, {"error": {"code": "InvalidAuthenticationToken",
                                       "message": "Access token has expired or is not yet valid."}},
                       {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
            return
        if self.fake.graph_replies:
            canned = self.fake.graph_replies.pop(0)
            self.reply(canned.status, {"error": {"code": canned.code, "message": canned.message}}, canned.headers)
            return
        if self.fake.drop_send:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if is_draft_path(path):
            self.reply(*draft_request(self.fake.drafts, self.fake.base, path, body, issued.permissions,
                                      issued.user or "app"))
            return
        if not path.endswith("/sendMail") or not (path == "/v1.0/me/sendMail" or path.startswith("/v1.0/users/")):
            self.reply(400, {"error": {"code": "BadRequest", "message": "Resource not found for the segment."}})
            return
        if (issued.user is None) == (path == "/v1.0/me/sendMail"):
            self.reply(400, {"error": {"code": "BadRequest", "message": "/me request is only valid with "
                                                                       "delegated authentication flow."}})
            return
        try:
            mime = base64.b64decode(body, validate=True)
        except ValueError:
            self.reply(400, {"error": {"code": "ErrorMimeContentInvalidBase64String",
                                       "message": "Invalid base64 string for MIME content."}})
            return
        if self.fake.max_mime_bytes is not None and len(mime) > self.fake.max_mime_bytes:
            self.reply(400, {"error": {"code": "ErrorMessageSizeExceeded",
                                       "message": "The message exceeds the maximum supported size., Cannot save "
                                                  "changes made to an item to store."}})
            return
        self.fake.sent.append(SentMail(path=path, sender=issued.user or "app", mime=mime,
                                       content_type=self.headers.get("Content-Type", ""),
                                       client_port=self.client_address[1]))
        self.reply(202, "")
