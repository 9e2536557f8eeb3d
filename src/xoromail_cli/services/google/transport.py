"""Sending through the Gmail API: `users.messages.send` with the whole RFC 5322 message in `raw`.

One authorized HTTPS session serves a batch. Gmail reads the recipients from the headers (Bcc included,
removed on delivery), so the message goes with `data_with_bcc()` and a retry to some recipients only is
impossible (`subset_retries = False`).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import ExitCode, StageFailedError
from xoromail_cli.services.base import ConnectionLostError, Delivery, StageCallback
from xoromail_cli.services.google import oauth
from xoromail_cli.services.google.hints import SETUP_AGAIN, delivery_for_error, http_failure
from xoromail_cli.services.http import before_request

if TYPE_CHECKING:
    import requests

    from xoromail_cli.services.base import SecretStore, TraceCallback
    from xoromail_cli.services.google.settings import GoogleSettings

UPLOAD_LIMIT = 36_700_160
"""The Gmail API's 35 MB limit for a message upload (users.messages.send, "Maximum file size: 35MB")."""
MAX_MESSAGE_SIZE = UPLOAD_LIMIT * 3 // 4 - 1024
"""The request carries the message base64url-encoded (4/3 larger) inside a small JSON body."""


class GmailTransport:
    """A Transport (services.base) for one Google account; tokens come from and go back to `secrets`."""

    name = "google"
    accepted_as: Literal["sent", "written"] = "sent"
    max_message_size: int | None = MAX_MESSAGE_SIZE
    subset_retries = False

    def __init__(self, settings: GoogleSettings, sender: str, secrets: SecretStore, *, ca_file: str | None = None,
                 timeout: float = 30.0, trace: TraceCallback | None = None, force_refresh: bool = False) -> None:
        self.settings = settings
        self.sender = sender
        self._secrets = secrets
        self._ca_file = ca_file
        self._timeout = timeout
        self._trace = trace
        self._force_refresh = force_refresh
        self._http: requests.Session | None = None
        self._access: oauth.AccessToken | None = None
        self._fresh = False
        """The access token in use came from a refresh of this session (so a 401 is not cured by another)."""
        self.refreshes = 0
        """Token refreshes this session made (a batch makes at most one, unless it outlives the token)."""

    def open(self, on_stage: StageCallback | None = None) -> None:
        """Stage "token": reuse the stored access token while valid, else refresh it (validate forces one)."""
        from xoromail_cli.services import http

        self.close()
        self._http = http.session(self._ca_file, timeout=self._timeout, trace=self._trace)
        cached = oauth.AccessToken.from_secret(self._secrets.get(oauth.ACCESS_TOKEN))
        if not self._secrets.get(oauth.REFRESH_TOKEN):
            raise StageFailedError("token", "this profile is not signed in to Google", SETUP_AGAIN,
                                   ExitCode.CONFIG)
        if cached is not None and cached.valid() and not self._force_refresh:
            self._access = cached
            detail = f"stored access token valid until {cached.expiry:%Y-%m-%d %H:%M} UTC"
        else:
            self._access = self._refresh()
            detail = f"refreshed the access token at {self.settings.token_uri} (valid until " \
                     f"{self._access.expiry:%H:%M} UTC)"
        if on_stage:
            on_stage("token", f"{detail}; sending as {self.settings.account or self.sender}")

    def _refresh(self) -> oauth.AccessToken:
        assert self._http is not None
        self.refreshes += 1
        self._fresh = True
        return oauth.refresh(self.settings, self._secrets, self._http, timeout=self._timeout, trace=self._trace)

    def send(self, envelope: Envelope, before_data: Callable[[], None] | None = None) -> Delivery:
        """POST the message; after a 401 with a stored token, one refresh and one more try (nothing was accepted).

        A token this session refreshed is not refreshed again: a batch refreshes at most once (a token lasts an
        hour; at the preset's 50 a minute, Workspace's 2,000 a day take 40 minutes).
        """
        if self._http is None or self._access is None:
            raise ConnectionLostError("the Gmail session is not open", committed=False)
        raw = base64.urlsafe_b64encode(envelope.data_with_bcc()).decode("ascii")
        try:
            if not self._access.valid() and not self._fresh:
                self._access = self._refresh()
            response = self._post(raw, len(envelope.recipients), before_data)
            if response.status_code == 401 and not self._fresh:
                self._access = self._refresh()
                response = self._post(raw, len(envelope.recipients), None)
        except StageFailedError as failure:  # the refresh failed: every later message would too
            temporary = failure.exit_code == ExitCode.TEMPFAIL
            return Delivery(status="temporary" if temporary else "failed", reply=failure.message,
                            exit_code=failure.exit_code,
                            hint=failure.hint, stops_batch=not temporary, reconnect=True)
        body = _json(response)
        if response.status_code == 200:
            message_id = body.get("id", "?") if isinstance(body, dict) else "?"
            return Delivery(status="sent", reply=f"Gmail API 200: message id {message_id}")
        return delivery_for_error(response.status_code, body, response.headers, refreshed=self._fresh)

    def _post(self, raw: str, recipients: int, before_data: Callable[[], None] | None) -> requests.Response:
        assert self._http is not None and self._access is not None
        url = self.settings.send_url
        if self._trace:  # the HTTP layer shows the request itself, with the bearer token and the body hidden
            self._trace("·", f"users.messages.send: raw message {len(raw)} characters, {recipients} recipients")
        if before_data:
            before_data()
        try:
            response = self._http.post(url, json={"raw": raw},
                                       headers={"Authorization": f"Bearer {self._access.token}"})
        except Exception as exc:  # noqa: BLE001  # requests' errors: lost before or after the request went out
            failure = http_failure("send", exc, url, self._timeout)
            raise ConnectionLostError(failure.message, committed=not before_request(exc), hint=failure.hint) from None
        return response

    def close(self) -> None:
        if self._http is not None:
            with contextlib.suppress(Exception):  # closing never raises, whatever the pool says
                self._http.close()
            self._http = None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
