"""What the relay tells people about a message it could not deliver now: its own advice, not `send`'s.

`send` advises a re-run; the relay retries by itself, so its log lines say when, and what ends a pause or a
hold sooner (`xoromail queue retry`, `queue release`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

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
_BOUNDARY = re.compile(rb'\s*=\s*(?:"([^"\r\n]{1,200})"|([^\s;"]{1,200}))')
"""What follows `boundary` in a Content-Type: the parameter's value, quoted or not."""
_MAX_BOUNDARIES, _MAX_MENTIONS, _MAX_PLACES = 16, 1000, 10_000
"""A message nests a few multiparts, each with a few parts; more, a body full of the word, or a boundary of
one character, only slow the digest of a hostile one (what is past the limits is digested as it is)."""


def _boundaries(parts: tuple[bytes | bytearray, bytes | bytearray]) -> list[bytes]:
    """The MIME boundaries the message declares (its own, its nested multiparts'), found at C speed
    (`find`, no regular expression over the whole body: the digest runs beside the event loop)."""
    found: list[bytes] = []
    mentions = 0
    for part in parts:
        for word in (b"boundary", b"BOUNDARY", b"Boundary"):
            at = part.find(word)
            while at >= 0 and len(found) < _MAX_BOUNDARIES and mentions < _MAX_MENTIONS:
                mentions += 1
                match = _BOUNDARY.match(part, at + len(word))
                value = (match.group(1) or match.group(2)) if match else None
                if value and value not in found:
                    found.append(bytes(value))
                at = part.find(word, at + len(word))
    return found


def _digest_body(digest: Any, head: bytes | bytearray, body: bytes | bytearray) -> None:
    """Feed the body with each MIME boundary replaced by its rank: a client that makes a new random
    boundary at each send (.NET's `--boundary_N_<guid>`, Python's `===…==`) sends the same content again.
    The body is read in place (no copy of a message of the maximum size)."""
    found = _boundaries((head, body))
    places: list[tuple[int, int, int]] = []
    for rank, boundary in enumerate(found):
        at = body.find(boundary)
        while at >= 0 and len(places) < _MAX_PLACES:
            places.append((at, -len(boundary), rank))
            at = body.find(boundary, at + len(boundary))
    done = 0
    with memoryview(body) as view:
        for at, negative_length, rank in sorted(places):
            if at < done:
                continue  # inside a longer boundary replaced already
            digest.update(view[done:at])
            digest.update(b"boundary-%d" % rank)
            done = at - negative_length
        digest.update(view[done:])


def content_digest(data: bytes | bytearray) -> str:
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
    _digest_body(digest, head, body)
    return digest.hexdigest()[:16]


def generated_message_id(data: bytes | bytearray, sender: str, recipients: tuple[str, ...], domain: str) -> str:
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
