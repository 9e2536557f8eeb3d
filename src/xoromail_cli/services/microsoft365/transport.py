"""The Graph transport: sign in silently at `open`, then one sendMail per message over one session.

Graph reads the recipients from the headers, so the message goes with its Bcc header (`data_with_bcc()`,
Exchange strips it) and a retry to some recipients only is impossible (`subset_retries = False`). A message
too large for one request goes as a draft with upload sessions (`drafts`) when the token carries
`Mail.ReadWrite`; without it, `max_message_size` stays at one request's worth and `size_hint` names the
permission, so such a message is refused before any of it is uploaded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import ExitCode, StageFailedError, XoromailError
from xoromail_cli.services.base import Delivery, SecretStore, StageCallback, TraceCallback
from xoromail_cli.services.microsoft365 import hints
from xoromail_cli.services.microsoft365.auth import TokenSource
from xoromail_cli.services.microsoft365.drafts import (
    MAX_UPLOADED_MESSAGE,
    NEEDS_READ_WRITE_HINT,
    READ_WRITE,
    DraftSender,
    granted,
)
from xoromail_cli.services.microsoft365.graph import MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES, send_mail_path

if TYPE_CHECKING:
    from xoromail_cli.services.microsoft365.graph import GraphClient
    from xoromail_cli.services.microsoft365.settings import Microsoft365Settings


class Microsoft365Transport:
    """Sends through Microsoft Graph as the profile's mailbox."""

    name = "microsoft365"
    accepted_as: Literal["sent", "written"] = "sent"
    subset_retries = False

    def __init__(self, settings: Microsoft365Settings, secrets: SecretStore, *, mailbox: str,
                 ca_file: str | None = None, timeout: float | None = None, trace: TraceCallback | None = None,
                 lock_path: Path | None = None, tokens: TokenSource | None = None) -> None:
        self.settings = settings
        self.mailbox = mailbox
        self.timeout = timeout
        self.trace = trace
        self.tokens = tokens or TokenSource(settings, secrets, mailbox=mailbox, ca_file=ca_file,
                                            timeout=timeout, lock_path=lock_path, trace=trace)
        self._graph: GraphClient | None = None
        self._force_refresh = False
        self.max_message_size: int | None = MAX_MESSAGE_BYTES
        self.size_hint: str | None = NEEDS_READ_WRITE_HINT
        """What to do about a message over `max_message_size` (the relay says it at DATA, `send` per message)."""

    def open(self, on_stage: StageCallback | None = None) -> None:
        """Get an access token (cached, else refreshed) and check who it belongs to."""
        if self.settings.send_via != "graph":
            raise StageFailedError("sign-in", "this profile sends through SMTP, not Graph",
                                   "use the SMTP transport with access_token_for_smtp", ExitCode.CONFIG)
        cached = not self._force_refresh and self.tokens.cached_token(self.settings.graph_scopes) is not None
        uploads = READ_WRITE in (granted(self._token()) or ())
        self.max_message_size = MAX_UPLOADED_MESSAGE if uploads else MAX_MESSAGE_BYTES
        self.size_hint = None if uploads else NEEDS_READ_WRITE_HINT
        self._force_refresh = False
        who = self.tokens.signed_in()
        accepted = {self.mailbox.lower(), (self.settings.account or "").lower()}
        if who.account is not None and who.account.lower() not in accepted:
            raise StageFailedError("sign-in", f"signed in as {who.account}, not as the profile's mailbox "
                                   f"{self.mailbox}", f"sign in again as {self.mailbox} ({hints.SETUP_AGAIN}); "
                                   f"if {who.account} sends as {self.mailbox} with Send As rights on purpose, "
                                   f"pass --sign-in-account {who.account} to setup", ExitCode.NOPERM)
        if on_stage:
            source = "from the cache" if cached else "refreshed from Microsoft"
            account = who.account or f"app {self.settings.client_id}"
            on_stage("sign-in", f"access token for {account} ({source})")
        if self._graph is None:
            from xoromail_cli.services.microsoft365.graph import GraphClient

            self._graph = GraphClient(self.settings.graph_base, self.tokens.session, timeout=self.timeout,
                                      trace=self.trace)

    def _token(self) -> str:
        try:
            return self.tokens.token(force_refresh=self._force_refresh)
        except StageFailedError:
            raise
        except XoromailError as exc:
            raise StageFailedError("sign-in", exc.message, exc.hint, exc.exit_code) from None

    def send(self, envelope: Envelope, before_data: Callable[[], None] | None = None) -> Delivery:
        data = envelope.data_with_bcc()
        if self._graph is None:
            self.open()
        assert self._graph is not None
        limit = self.max_message_size or MAX_MESSAGE_BYTES
        if len(data) > limit:
            where = ("" if limit > MAX_MESSAGE_BYTES else
                     f" (one request: about {MAX_REQUEST_BYTES // 1_000_000} MB once base64-encoded)")
            return Delivery(status="failed", reply=f"message of {len(data):,} bytes is larger than the {limit:,} "
                            f"bytes Graph takes here{where}; nothing was sent", exit_code=ExitCode.DATAERR,
                            hint=self.size_hint or "make the attachments smaller, or send large files as links")
        try:
            token = self._token()
        except StageFailedError as exc:
            return Delivery(status="failed", reply=exc.message, exit_code=exc.exit_code, hint=exc.hint,
                            stops_batch=True)
        if len(data) > MAX_MESSAGE_BYTES:
            return self._drafts().send(token, data, before_data)
        answer = self._graph.send_mime(send_mail_path(self.settings.mode, self.mailbox), token, data,
                                       before_data)
        delivery = hints.graph_delivery(answer.status, answer.body, answer.retry_after, mode=self.settings.mode,
                                        mailbox=self.mailbox)
        if delivery.reconnect:
            self._force_refresh = True
        return delivery

    def _drafts(self) -> DraftSender:
        prefix = "/me" if self.settings.mode == "delegated" else f"/users/{quote(self.mailbox, safe='@')}"
        return DraftSender(self.tokens.session, self.settings.graph_base, prefix, timeout=self.timeout,
                           mode=self.settings.mode, mailbox=self.mailbox)

    def close(self) -> None:
        graph, self._graph = self._graph, None
        if graph is not None:
            with contextlib.suppress(Exception):  # closing must never raise; nothing useful to report
                graph.close()

