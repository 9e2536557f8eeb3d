"""What the relay tells people about a message it could not deliver now: its own advice, not `send`'s.

`send` advises a re-run; the relay retries by itself, so its log lines say when, and what ends a pause or a
hold sooner (`xoromail queue retry`, `queue release`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xoromail_cli.compose.envelope import Envelope
    from xoromail_cli.relay.spool import Spool
    from xoromail_cli.sending.results import MessageResult

RELAY_EVENT = "relay"
"""The ledger's event name for relayed messages (`log` shows them with their Message-ID and reply)."""
IN_DOUBT_HELD = "in doubt: the answer was lost after the data went out (--no-retry-in-doubt)"
INTERRUPTED_HELD = ("in doubt: the relay stopped while sending it (killed or crashed during the upload); held for "
                    "a person (--no-retry-in-doubt)")
_SEND_ONLY = re.compile(r"re-?run|next run|--wait|--resend", re.IGNORECASE)
"""Clauses of a service's hint that speak to a person running `send`, not to one running the relay."""


def relay_key(envelope: Envelope) -> str:
    """The idempotency key: the Message-ID, the recipients and a digest of the content (`content_digest`).

    A Message-ID is not trusted to be unique (an ERP may derive it from the invoice number, and reuse it for
    the corrected invoice): a different message under the same Message-ID is delivered. The same message
    submitted again (the ERP retrying after a lost 250) has the same key and is delivered once."""
    recipients = ",".join(sorted(address.lower() for address in envelope.recipients))
    return f"{RELAY_EVENT}:{envelope.message_id}:{recipients}:{content_digest(envelope.data)}"


_STABLE_HEADERS = (b"from", b"to", b"cc", b"subject")
_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))', re.IGNORECASE)
_MAX_BOUNDARIES = 16
"""Boundaries made neutral in a digest: a message nests a few; more only slow the digest of a hostile one."""


def _neutral_boundaries(head: bytes, body: bytes) -> bytes:
    """The body with each MIME boundary declared in the message (its own, a nested multipart's) replaced by
    its rank: a client that makes a new random boundary at each send (.NET's `--boundary_N_<guid>`, Python's
    `===…==`) sends the same content again."""
    found: list[bytes] = []
    for part in (head, body):
        for match in _BOUNDARY.finditer(part):
            boundary = match.group(1) or match.group(2)
            if boundary not in found and len(found) < _MAX_BOUNDARIES:
                found.append(boundary)
    if not found:
        return body
    rank = {boundary: b"boundary-%d" % number for number, boundary in enumerate(found)}
    pattern = re.compile(b"|".join(re.escape(boundary) for boundary in sorted(found, key=len, reverse=True)))
    return pattern.sub(lambda match: rank[match.group(0)], body)


def content_digest(data: bytes) -> str:
    """SHA-256 (16 hex digits) of the body and of From, To, Cc and Subject; a retry's new Date or Received
    header, or its new MIME boundaries, leave it the same."""
    import hashlib

    end = data.find(b"\r\n\r\n")
    head, body = (data[:end], data[end + 4:]) if end >= 0 else (data, b"")
    digest = hashlib.sha256()
    for line in head.replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ").split(b"\r\n"):
        name = line.partition(b":")[0].strip().lower()
        if name in _STABLE_HEADERS:
            digest.update(line + b"\n")
    digest.update(b"\n")
    digest.update(_neutral_boundaries(head, body))
    return digest.hexdigest()[:16]


def generated_message_id(data: bytes, sender: str, recipients: tuple[str, ...], domain: str) -> str:
    """The Message-ID the relay gives a message that came without one (.NET's SmtpClient sends none): made
    from the envelope and `content_digest`, so the same submission again (the ERP retrying after a lost 250,
    with a new Date) gets the same one, and with it the same idempotency key: it is delivered once."""
    import hashlib

    envelope = ",".join([sender.lower(), *sorted(address.lower() for address in recipients)])
    digest = hashlib.sha256(f"{envelope}\n{content_digest(data)}".encode()).hexdigest()[:32]
    return f"<relay.{digest}@{domain}>"


def relay_advice(hint: str | None, delay: float) -> str:
    """The service's hint without what only `send` can do, then what the relay does and what ends it sooner."""
    kept = [part.strip() for part in (hint or "").split(";") if part.strip() and not _SEND_ONLY.search(part)]
    kept.append(f"the relay tries again by itself in {delay:.0f} s; once the cause is fixed, "
                "`xoromail queue retry` ends the wait now")
    return "; ".join(kept)


def held_in_doubt_hint(spool_id: str) -> str:
    return (f"it may have arrived: ask the recipient, then `xoromail queue release {spool_id}` sends it again "
            f"(a possible duplicate) or `xoromail queue drop {spool_id}` forgets it")


def held_in_doubt(spool: Spool, results: list[MessageResult]) -> dict[str, str]:
    """Hold the queued messages an earlier run left in flight (by their idempotency key): key → spool id.
    One already known to be in doubt is held already, or was released by a person: it is left as it is."""
    from xoromail_cli.errors import XoromailError

    wanted = {result.key for result in results if result.key}
    held: dict[str, str] = {}
    for entry in spool.entries():
        if entry.where != "queue" or entry.state.in_doubt:
            continue
        try:
            key = relay_key(spool.load(entry.id).envelope)  # the key as delivery made it, whatever it covers
        except XoromailError:
            continue  # delivered, dropped or damaged meanwhile
        if key in wanted and key not in held:
            spool.set_state(entry.id, replace(entry.state, attempts=entry.state.attempts + 1,
                                              last_reply=INTERRUPTED_HELD, in_doubt=True, held=INTERRUPTED_HELD))
            held[key] = entry.id
    return held
