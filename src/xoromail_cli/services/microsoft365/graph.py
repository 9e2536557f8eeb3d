"""Microsoft Graph `sendMail` with the whole MIME message, so headers and attachments stay exactly as built.

The message goes base64-encoded with `Content-Type: text/plain` (Graph's MIME form of sendMail). One request
carries at most about 4 MB, so larger messages are refused before anything is sent: sending them would need
a draft and an attachment upload session, which needs `Mail.ReadWrite` as well (docs/setup-microsoft365.md).
"""

from __future__ import annotations

import base64
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from xoromail_cli.services.base import ConnectionLostError
from xoromail_cli.services.http import before_request
from xoromail_cli.services.microsoft365 import hints

if TYPE_CHECKING:
    import requests

    from xoromail_cli.services.base import TraceCallback

MAX_REQUEST_BYTES = 4_000_000
"""Graph's limit for one request, about 4 MB (user-sendmail.md)."""
MAX_MESSAGE_BYTES = MAX_REQUEST_BYTES // 4 * 3
"""The largest MIME message whose base64 form fits one request: 3,000,000 bytes."""


@dataclass(frozen=True)
class GraphAnswer:
    status: int
    body: dict[str, Any]
    retry_after: float | None


def send_mail_path(mode: str, mailbox: str) -> str:
    """Delegated tokens send as the signed-in user (`/me`); app-only tokens name the mailbox."""
    return "/me/sendMail" if mode == "delegated" else f"/users/{quote(mailbox, safe='@')}/sendMail"


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, given as a number or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class GraphClient:
    """Posts MIME messages to Graph over one requests session (one TLS connection for a batch)."""

    def __init__(self, base_url: str, session: requests.Session, *, timeout: float | None = None,
                 trace: TraceCallback | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.timeout = timeout
        self.trace = trace

    def send_mime(self, path: str, token: str, mime: bytes,
                  before_data: Callable[[], None] | None = None) -> GraphAnswer:
        """POST the message; raise ConnectionLostError (committed once the request may have gone out)."""
        import requests

        url = self.base_url + path
        body = base64.b64encode(mime)
        if self.trace:  # the HTTP layer shows the request itself, with the bearer token and the body hidden
            self.trace("·", f"sendMail: MIME message of {len(mime)} bytes, base64")
        if before_data:
            before_data()
        try:
            response = self.session.post(url, data=body, timeout=self.timeout,
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "text/plain"})
        except requests.RequestException as exc:
            failure = hints.network_failure("send", exc, url, self.timeout)
            raise ConnectionLostError(failure.message, committed=not before_request(exc), hint=failure.hint) from None
        answer = GraphAnswer(response.status_code, _json(response), retry_after(response.headers.get("Retry-After")))
        error = answer.body.get("error")
        if self.trace and isinstance(error, dict):  # the layer hides bodies; Graph's error code is safe to show
            self.trace("·", f"Graph error {error.get('code', '')}: {error.get('message', '')}")
        return answer

    def close(self) -> None:
        self.session.close()


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
