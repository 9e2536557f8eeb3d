"""The Microsoft fake's drafts and attachment upload sessions, answering as Graph and Outlook do.

outlook-large-attachments.md and attachment-createuploadsession.md (microsoft-graph-docs): a draft from MIME
(`POST …/messages`, 201 with its id), `POST …/messages/{id}/attachments/createUploadSession` with
`{"AttachmentItem": {"attachmentType": "file", "name", "size"}}` (201: `uploadUrl`, `expirationDateTime`,
`nextExpectedRanges: ["0-"]`), or for a file under 3 MB `POST …/messages/{id}/attachments` with a
fileAttachment (201), then PUTs to the pre-authenticated `uploadUrl` with `Content-Range: bytes
{start}-{end}/{total}` and no Authorization header (200 with `nextExpectedRanges: ["{next}"]`, the last 201
with a Location), then `POST …/messages/{id}/send` (202). Drafts and upload sessions need `Mail.ReadWrite`
(403 ErrorAccessDenied without it); one request carries at most 4 MB (413), one file at most 150 MB.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

MAX_REQUEST = 4 * 1024 * 1024
MAX_ATTACHMENT = 150 * 1024 * 1024
_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_DRAFT = re.compile(r"^/v1\.0/(me|users/[^/]+)/messages"
                    r"(?:/([^/]+)(/send|/attachments/createUploadSession|/attachments)?)?$")


@dataclass(kw_only=True)
class Upload:
    draft: str
    name: str
    size: int
    content_type: str
    received: bytearray = field(default_factory=bytearray)


@dataclass
class Draft:
    owner: str
    mime: bytes
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)
    """(name, content type, bytes) of each file attached through an upload session or a fileAttachment."""


@dataclass
class DraftStore:
    drafts: dict[str, Draft] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)
    sent: list[Draft] = field(default_factory=list)
    upload_puts: list[tuple[str, bool]] = field(default_factory=list)
    """(Content-Range, whether an Authorization header came) of every PUT, in order."""


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    return status, {"error": {"code": code, "message": message}}, {}


DENIED = _error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")


def is_draft_path(path: str) -> bool:
    return _DRAFT.match(path) is not None


def draft_request(store: DraftStore, base: str, path: str, body: bytes, permissions: frozenset[str],
                  owner: str) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
    """Answer POST …/messages, …/createUploadSession and …/send as Graph does."""
    if "Mail.ReadWrite" not in permissions:
        return DENIED
    if len(body) > MAX_REQUEST:
        return _error(413, "RequestEntityTooLarge", "The maximum request length supported is 4MB.")
    match = _DRAFT.match(path)
    assert match is not None
    draft_id, action = match.group(2), match.group(3)
    if draft_id is None:
        return _create(store, body, owner)
    draft = store.drafts.get(draft_id)
    if draft is None:
        return _error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    if action == "/send":
        store.sent.append(store.drafts.pop(draft_id))
        return 202, "", {}
    if action == "/attachments":
        return _file_attachment(draft, body)
    return _session(store, base, draft_id, body)


def _file_attachment(draft: Draft, body: bytes) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
    """`POST …/messages/{id}/attachments` with a fileAttachment (a file under 3 MB, its bytes in base64)."""
    import json

    try:
        item = json.loads(body)
        name, data = str(item["name"]), base64.b64decode(item["contentBytes"], validate=True)
        kind = item["@odata.type"]
    except (ValueError, KeyError, TypeError):
        return _error(400, "ErrorInvalidRequest", "The request is invalid: name and contentBytes are required.")
    if kind != "#microsoft.graph.fileAttachment":
        return _error(400, "ErrorInvalidRequest", "@odata.type must be #microsoft.graph.fileAttachment.")
    content_type = str(item.get("contentType") or "application/octet-stream")
    draft.attachments.append((name, content_type, data))
    return 201, {"@odata.type": kind, "id": "AAMkAD" + secrets.token_urlsafe(12), "name": name,
                 "contentType": content_type, "size": len(data), "isInline": False}, {}


def _create(store: DraftStore, body: bytes, owner: str) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
    try:
        mime = base64.b64decode(body, validate=True)
    except ValueError:
        return _error(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
    draft_id = "AAMkAD" + secrets.token_urlsafe(12)
    store.drafts[draft_id] = Draft(owner, mime)
    return 201, {"id": draft_id, "isDraft": True}, {}


def _session(store: DraftStore, base: str, draft_id: str,
             body: bytes) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
    import json

    try:
        item = json.loads(body)["AttachmentItem"]
        name, size = str(item["name"]), int(item["size"])
        kind = item["attachmentType"]
    except (ValueError, KeyError, TypeError):
        return _error(400, "ErrorInvalidRequest", "The request is invalid: AttachmentItem is required.")
    if kind != "file" or size <= 0:
        return _error(400, "ErrorInvalidRequest", "attachmentType must be file, with a size.")
    if size > MAX_ATTACHMENT:
        return _error(400, "ErrorInvalidRequest", "The attachment exceeds the 150 MB an upload session takes.")
    session = "AAMkAD" + secrets.token_urlsafe(12)
    store.uploads[session] = Upload(draft=draft_id, name=name, size=size,
                                    content_type=str(item.get("contentType") or "application/octet-stream"))
    expires = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime(time.time() + 900))
    url = f"{base}/api/v2.0/AttachmentSessions/{session}?authtoken={secrets.token_urlsafe(24)}"
    return 201, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.uploadSession",
                 "uploadUrl": url, "expirationDateTime": expires, "nextExpectedRanges": ["0-"]}, {}


def upload_put(store: DraftStore, base: str, path: str, headers: Any,
               body: bytes) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
    """A PUT of one byte range to the pre-authenticated upload URL (no Authorization header wanted)."""
    session = path.split("?", 1)[0].rsplit("/", 1)[-1]
    store.upload_puts.append((headers.get("Content-Range", ""), headers.get("Authorization") is not None))
    upload = store.uploads.get(session)
    if upload is None or "authtoken=" not in path:
        return _error(404, "ErrorItemNotFound", "The upload session was not found or has expired.")
    if headers.get("Authorization") is not None:
        return _error(401, "InvalidAuthenticationToken", "The upload URL is pre-authenticated: send no token.")
    found = _RANGE.fullmatch(headers.get("Content-Range", ""))
    if found is None or len(body) > MAX_REQUEST:
        return _error(400, "ErrorInvalidContentRange", "Content-Range is missing or invalid.")
    start, end, total = (int(value) for value in found.groups())
    if start != len(upload.received) or end - start + 1 != len(body) or total != upload.size:
        return _error(416, "ErrorInvalidContentRange",
                      f"The range does not start at the next expected byte {len(upload.received)}.")
    upload.received += body
    if len(upload.received) < upload.size:
        return 200, {"expirationDateTime": "2026-12-07T12:00:00.0000000Z",
                     "nextExpectedRanges": [str(len(upload.received))]}, {}
    del store.uploads[session]
    store.drafts[upload.draft].attachments.append((upload.name, upload.content_type, bytes(upload.received)))
    attachment = "AAMkAD" + secrets.token_urlsafe(8)
    return 201, "", {"Location": f"{base}/api/v2.0/Messages('{upload.draft}')/Attachments('{attachment}')"}
