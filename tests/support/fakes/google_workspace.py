"""The service-account half of Google's token endpoint: the JWT-bearer grant (RFC 7523) as Google answers it.

A Workspace here has users (some suspended), service accounts (with their public keys, some deleted) and the
Admin console's domain-wide delegation (client ID → scopes). The assertion is checked as Google does: RS256
signature with the key's public half (by `kid`), `iss` a known service account, `aud` Google's token endpoint
(google-auth always names https://oauth2.googleapis.com/token, whatever `token_uri` the request goes to), `scope`
granted to that client ID, `sub` an active user of the domain. Errors use Google's texts
(google-auth `service_account.py`; support.google.com/a/answer/162106).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SEND_SCOPE = "https://www.googleapis.com/auth/gmail.send"
UNAUTHORIZED = (401, {"error": "unauthorized_client", "error_description": "Client is unauthorized to retrieve "
                      "access tokens using this method, or client not authorized for any of the scopes requested."})
BAD_SUBJECT = (400, {"error": "invalid_grant", "error_description": "Invalid email or User ID"})
BAD_SIGNATURE = (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})


@dataclass(kw_only=True)
class ServiceAccount:
    email: str
    client_id: str
    key_id: str
    public_pem: bytes
    deleted: bool = False


@dataclass(kw_only=True)
class Workspace:
    domain: str = "company.test"
    users: set[str] = field(default_factory=lambda: {"billing@company.test"})
    suspended: set[str] = field(default_factory=set)
    accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    delegation: dict[str, set[str]] = field(default_factory=dict)
    """Admin console → API controls → Domain-wide delegation: client ID → scopes."""
    assertions: list[dict[str, Any]] = field(default_factory=list)
    """The verified claims of every assertion, in order (for tests to read `sub` and `scope`)."""

    def new_key(self, token_uri: str, *, name: str = "xoromail-sender", delegate: bool = True) -> dict[str, str]:
        """A service account with one RSA key; the key JSON the Cloud console downloads (private key included)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        email = f"{name}@xoromail-test.iam.gserviceaccount.com"
        client_id = str(100000000000000000000 + len(self.accounts))
        key_id = secrets.token_hex(20)
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        self.accounts[email] = ServiceAccount(email=email, client_id=client_id, key_id=key_id, public_pem=public)
        if delegate:
            self.delegation[client_id] = {SEND_SCOPE}
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": "xoromail-test", "private_key_id": key_id,
                "private_key": private, "client_email": email, "client_id": client_id,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
                "universe_domain": "googleapis.com"}

    def grant(self, assertion: str) -> tuple[int, dict[str, Any]] | str:
        """The error Google gives for this assertion, or the scope to issue an access token for."""
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: malformed"}
        account = self.accounts.get(str(unverified.get("iss")))
        if account is None or account.deleted or header.get("kid") != account.key_id:
            return BAD_SIGNATURE
        try:
            claims = jwt.decode(assertion, serialization.load_pem_public_key(account.public_pem),  # type: ignore[arg-type]  # an RSA key from cryptography is what PyJWT takes
                                algorithms=["RS256"], audience=AUDIENCE)
        except jwt.PyJWTError:
            return BAD_SIGNATURE
        self.assertions.append(claims)
        scopes = set(str(claims.get("scope", "")).split())
        if not scopes or not scopes <= self.delegation.get(account.client_id, set()):
            return UNAUTHORIZED
        subject = str(claims.get("sub", ""))
        if subject not in self.users or subject in self.suspended:
            return BAD_SUBJECT
        return " ".join(sorted(scopes))


def key_json(key: dict[str, str]) -> str:
    return json.dumps(key, indent=2)
