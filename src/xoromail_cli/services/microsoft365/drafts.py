"""Messages too large for one Graph request: a draft, an upload session per large attachment, then send.

Graph's `sendMail` carries about 4 MB; files of 3 to 150 MB go through an attachment upload session
(outlook-large-attachments.md): the message without its large files becomes a draft (`POST …/messages`, the
MIME form), each large file gets `createUploadSession` and is PUT in ranges of at most 4 MB to the
pre-authenticated upload URL (no bearer token: it is in the URL), then `POST …/messages/{id}/send`. The draft
itself is one request too: when smaller files together make it too large, the largest of them are attached
apart (`POST …/messages/{id}/attachments`, a fileAttachment each, or an upload session). Drafts and
upload sessions need the permission `Mail.ReadWrite`; without it, such a message is refused before any of it
is uploaded, with a hint that names the permission. Until the send call, nothing has been sent: a failure
before it is never "in doubt", and the draft is deleted.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import json
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage, Message
from typing import TYPE_CHECKING, Any

from xoromail_cli.errors import ExitCode
from xoromail_cli.services.base import ConnectionLostError, Delivery
from xoromail_cli.services.http import before_request
from xoromail_cli.services.microsoft365 import hints

if TYPE_CHECKING:
    import requests

LARGE_FILE = 3 * 1024 * 1024
"""Attachments larger than this go through an upload session (Graph: "between 3 MB and 150 MB")."""
CHUNK = 10 * 320 * 1024
"""Bytes of one PUT: under Graph's 4 MB a request, a multiple of 320 KiB."""
ONE_REQUEST = 4_000_000
"""Bytes one Graph request carries (about 4 MB, user-sendmail.md; graph.MAX_REQUEST_BYTES)."""
ATTACHMENT_JSON = 64 * 1024
"""Room kept in a fileAttachment's request for its JSON around the base64 bytes (name, type)."""
MAX_UPLOADED_MESSAGE = 150 * 1024 * 1024
"""The most one message may be when its files are uploaded (Exchange Online's own limit may be lower)."""
READ_WRITE = "Mail.ReadWrite"
NEEDS_READ_WRITE_HINT = (
    "Graph takes about 4 MB a request; larger attachments need an upload session, and that needs the "
    f"permission {READ_WRITE}: grant it to the app registration (application permission for app-only, with admin "
    "consent), or make the attachments smaller"
)


def granted(token: str) -> frozenset[str] | None:
    """The permissions an access token carries (`roles` of an app-only token, `scp` of a delegated one), read
    from its JWT payload without checking it (Graph checks it); None when the token is not a readable JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(claims, dict):
        return None
    roles = claims.get("roles")
    scopes = str(claims.get("scp") or "").split()
    return frozenset([*(str(role) for role in (roles if isinstance(roles, list) else [])), *scopes])


@dataclass(frozen=True)
class LargeFile:
    name: str
    content_type: str
    data: bytes


def split_large(mime: bytes, threshold: int = LARGE_FILE) -> tuple[bytes, list[LargeFile]]:
    """The message without its attachments over `threshold`, and those attachments (decoded)."""
    message: EmailMessage = email.message_from_bytes(mime, policy=email.policy.default)
    large: list[LargeFile] = []
    for part in list(message.walk()):
        if not part.is_multipart():
            continue
        kept: list[Message | str] = []
        for child in part.get_payload():
            if not isinstance(child, Message):
                continue
            payload = child.get_payload(decode=True) if child.get_content_disposition() == "attachment" else None
            if isinstance(payload, bytes) and len(payload) > threshold:
                large.append(LargeFile(child.get_filename() or "attachment", child.get_content_type(), payload))
            else:
                kept.append(child)
        part.set_payload(kept)
    return message.as_bytes(policy=email.policy.SMTP), large


def split_for_draft(mime: bytes, limit: int) -> tuple[bytes, list[LargeFile]]:
    """A draft that fits one request (at most `limit` bytes of MIME) and the files to attach apart: every
    file over 3 MB, then the largest of the others until the rest fits (three 1.5 MB PDFs are under 3 MB each
    and too large together). A body too large by itself stays as it is: Graph says so."""
    threshold = LARGE_FILE
    while True:
        kept, files = split_large(mime, threshold)
        left = _attachment_sizes(kept)
        if len(kept) <= limit or not left:
            return kept, files
        threshold = max(left) - 1


def _attachment_sizes(mime: bytes) -> list[int]:
    message = email.message_from_bytes(mime, policy=email.policy.default)
    sizes = []
    for part in message.walk():
        payload = part.get_payload(decode=True) if part.get_content_disposition() == "attachment" else None
        if isinstance(payload, bytes):
            sizes.append(len(payload))
    return sizes


def fits_one_request(size: int) -> bool:
    """Whether a file of `size` bytes, base64-encoded in a fileAttachment, fits one request (about 4 MB)."""
    return -(-size // 3) * 4 + ATTACHMENT_JSON <= ONE_REQUEST


class DraftSender:
    """One large message through a draft and upload sessions, over the transport's requests session."""

    def __init__(self, session: requests.Session, base_url: str, prefix: str, *, timeout: float | None,
                 mode: str, mailbox: str) -> None:
        self.session, self.base_url, self.prefix = session, base_url.rstrip("/"), prefix
        self.timeout, self.mode, self.mailbox = timeout, mode, mailbox

    def send(self, token: str, mime: bytes, before_data: Callable[[], None] | None = None) -> Delivery:
        draft_mime, files = split_for_draft(mime, ONE_REQUEST // 4 * 3)
        created = self._call("POST", f"{self.prefix}/messages", token, base64.b64encode(draft_mime),
                             "text/plain")
        if created[0] != 201 or not isinstance(created[1].get("id"), str):
            return self._refused(created)
        draft = f"{self.prefix}/messages/{created[1]['id']}"
        try:
            for large in files:
                refused = self._attach(token, draft, large)
                if refused is not None:
                    self._discard(token, draft)
                    return refused
        except ConnectionLostError as lost:
            self._discard(token, draft)
            raise ConnectionLostError(lost.message, committed=False, hint=lost.hint) from None
        if before_data:
            before_data()
        answer = self._call("POST", f"{draft}/send", token, b"", "application/json", committed=True)
        return self._refused(answer) if answer[0] != 202 else Delivery(status="sent", reply="202 Accepted")

    def _attach(self, token: str, draft: str, file: LargeFile) -> Delivery | None:
        """A file that fits one request as a fileAttachment (Graph: under 3 MB), a larger one by an upload
        session; None once attached, else the refusal."""
        if not fits_one_request(len(file.data)):
            return self._upload(token, draft, file)
        item = {"@odata.type": "#microsoft.graph.fileAttachment", "name": file.name,
                "contentType": file.content_type, "contentBytes": base64.b64encode(file.data).decode("ascii")}
        answer = self._call("POST", f"{draft}/attachments", token, json.dumps(item).encode(), "application/json")
        return None if answer[0] == 201 else self._refused(answer)

    def _upload(self, token: str, draft: str, large: LargeFile) -> Delivery | None:
        item = {"AttachmentItem": {"attachmentType": "file", "name": large.name, "size": len(large.data),
                                   "contentType": large.content_type}}
        opened = self._call("POST", f"{draft}/attachments/createUploadSession", token,
                            json.dumps(item).encode(), "application/json")
        url = opened[1].get("uploadUrl")
        if opened[0] != 201 or not isinstance(url, str) or not url.startswith("https://"):
            return self._refused(opened)
        total = len(large.data)
        for start in range(0, total, CHUNK):
            chunk = large.data[start:start + CHUNK]
            headers = {"Content-Type": "application/octet-stream",
                       "Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{total}"}
            answer = self._put(url, chunk, headers)  # the URL is pre-authenticated: no bearer token
            if answer[0] not in (200, 201):
                return self._refused(answer)
        return None

    def _discard(self, token: str, draft: str) -> None:
        """Best effort: a draft left behind is only clutter in the mailbox's Drafts folder."""
        import contextlib

        with contextlib.suppress(ConnectionLostError):
            self._call("DELETE", draft, token, b"", "application/json")

    def _refused(self, answer: tuple[int, dict[str, Any], float | None]) -> Delivery:
        status, body, retry_after = answer
        delivery = hints.graph_delivery(status, body, retry_after, mode=self.mode, mailbox=self.mailbox)
        if status == 403 and delivery.status == "failed":
            return Delivery(status="failed", reply=delivery.reply, exit_code=int(ExitCode.NOPERM),
                            hint=NEEDS_READ_WRITE_HINT,
                            stops_batch=True)
        return delivery

    def _call(self, method: str, path: str, token: str, body: bytes, content_type: str, *,
              committed: bool = False) -> tuple[int, dict[str, Any], float | None]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
        return self._request(method, self.base_url + path, body, headers, committed)

    def _put(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any], float | None]:
        return self._request("PUT", url, body, headers, False)

    def _request(self, method: str, url: str, body: bytes, headers: dict[str, str],
                 committed: bool) -> tuple[int, dict[str, Any], float | None]:
        import requests

        from xoromail_cli.services.microsoft365.graph import retry_after

        try:
            response = self.session.request(method, url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            failure = hints.network_failure("send", exc, url.split("?", 1)[0], self.timeout)
            raise ConnectionLostError(failure.message, committed=committed and not before_request(exc),
                                      hint=failure.hint) from None
        try:
            value = response.json()
        except ValueError:
            value = {}
        return response.status_code, value if isinstance(value, dict) else {}, retry_after(
            response.headers.get("Retry-After"))
