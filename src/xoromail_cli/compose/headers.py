"""Header lines within the RFC limits: no line over 998 octets (RFC 5322 §2.1.1), folded near 78, and no
encoded word over 75 characters (RFC 2047 §2).

The standard library's `email.header.Header` folds only at spaces, so a long word or a long encoded
display name stays one line (a 1,293-octet From line was seen); `formataddr(charset=...)` makes one
encoded word of any length. Here every value is cut into tokens that each fit a folded line.
"""

from __future__ import annotations

import re
from base64 import b64encode
from collections.abc import Iterable, Sequence
from email.utils import formataddr

from xoromail_cli.addresses import check_header_value

FOLD_AT = 78
"""RFC 5322 §2.1.1: lines SHOULD be no longer than 78 characters."""
MAX_ENCODED_WORD = 75
"""RFC 2047 §2: an encoded word is at most 75 characters."""
_PREFIX, _SUFFIX = "=?utf-8?b?", "?="
_WORD_BYTES = (MAX_ENCODED_WORD - len(_PREFIX) - len(_SUFFIX)) // 4 * 3
"""UTF-8 bytes per encoded word: 63 base64 characters carry 45 bytes (RFC 2047 §2, §4.1)."""
_LOOKS_ENCODED = re.compile(r"=\?[^?\s]*\?[bBqQ]\?[^?\s]*\?=")
_LONGEST_PLAIN_WORD = FOLD_AT - 2
"""A word longer than this cannot sit on a folded line of its own: it is encoded (and so split)."""


def needs_encoding(value: str) -> bool:
    """Not ASCII, too long a word to fold, or ASCII a mail reader would decode (`=?utf-8?b?…?=` as typed)."""
    if not value.isascii() or _LOOKS_ENCODED.search(value):
        return True
    return any(len(word) > _LONGEST_PLAIN_WORD for word in value.split())


def encoded_words(value: str) -> list[str]:
    """`value` as base64 encoded words of at most 75 characters, never splitting a character.

    Decoders join adjacent encoded words and drop the folding white space between them (RFC 2047 §6.2),
    so the text reads back exactly as given, spaces included. A word is cut after a space when one is
    near its end, so a reader that keeps that white space (Python's address parser does) at worst shows
    a doubled space, not a word torn in two.
    """
    words: list[str] = []
    chunk = b""
    for character in value:
        encoded = character.encode("utf-8")
        if len(chunk) + len(encoded) > _WORD_BYTES:
            cut = chunk.rfind(b" ") + 1
            cut = cut if cut > _WORD_BYTES // 2 else len(chunk)  # after a space, when one is near the end
            words.append(_word(chunk[:cut]))
            chunk = chunk[cut:]
        chunk += encoded
    if chunk or not words:
        words.append(_word(chunk))
    return words


def phrase(display_name: str) -> list[str]:
    """A display name as tokens: words that can stand as they are (atoms) stay readable, each run of
    the others becomes as few encoded words as fit 75 characters, the spaces of the run inside them.

    Adjacent encoded words are then rare: RFC 2047 §6.2 readers drop the white space between them, but
    some parsers (Python's address parser among them) keep it, so a split mid-run can read with a space.
    """
    words = display_name.split(" ")
    if "" in words:  # leading, trailing or doubled spaces: encode it all so none is lost
        return encoded_words(display_name)
    tokens: list[str] = []
    run: list[str] = []
    for word in words:
        if _ATOM.fullmatch(word) and not _LOOKS_ENCODED.search(word):
            if run:
                tokens += encoded_words(" ".join(run))
                run = []
            tokens.append(word)
        else:
            run.append(word)
    if run:
        tokens += encoded_words(" ".join(run))
    return tokens


_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,70}")
"""RFC 5322 §3.2.3 atext, short enough to fold: such a word needs neither quotes nor encoding."""


def _word(chunk: bytes) -> str:
    return _PREFIX + b64encode(chunk).decode("ascii") + _SUFFIX


def fold(name: str, tokens: Iterable[str]) -> bytes:
    """`Name: token token …` with one space between tokens, folded (that space becomes CRLF + space)
    before a token that would pass 78 columns. An empty token (two spaces in a row) is never folded
    before, so no line is white space only and unfolding gives the value back as typed."""
    lines: list[str] = []
    line = f"{name}:"
    first = True
    for token in tokens:
        if not first and token and len(line) + 1 + len(token) > FOLD_AT:
            lines.append(line)
            line = f" {token}"
        else:
            line = f"{line} {token}"
        first = False
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def unstructured(name: str, value: str) -> bytes:
    """A header of free text (Subject, Content-Description): words folded, or encoded words when needed."""
    check_header_value(name, value)
    if needs_encoding(value):
        return fold(name, encoded_words(value))
    return fold(name, value.split(" "))


def address_list(name: str, addresses: Sequence[str]) -> bytes:
    """To, Cc, Bcc, Reply-To: folded between addresses. An address is never split or encoded: an
    internationalised one goes as UTF-8 (RFC 6532), since an encoded word there would break it."""
    for address in addresses:
        check_header_value(name, address)
    tokens = [f"{address}," for address in addresses[:-1]] + list(addresses[-1:])
    return fold(name, tokens or [""])


def mailbox(name: str, display_name: str, address: str) -> bytes:
    """`From: Display Name <address>`: the name quoted when ASCII, else encoded words of at most 75 characters."""
    check_header_value(name, display_name)
    check_header_value(name, address)
    if not display_name:
        return fold(name, [address])
    if needs_encoding(display_name):
        return fold(name, [*phrase(display_name), f"<{address}>"])
    return fold(name, formataddr((display_name, address)).split(" "))


_SEGMENT = 60
"""Characters of percent-encoded value per RFC 2231 continuation, so each sits on a short line."""


def rfc2231_parameter(name: str, value: str) -> list[str]:
    """`name*=utf-8''…` (RFC 2231 §4), split into `name*0*=`, `name*1*=`… continuations (§3) when long.

    A segment never splits a character's %XX triplets, so every segment decodes on its own.
    """
    from urllib.parse import quote

    segments: list[str] = []
    current = ""
    for character in value:
        encoded = quote(character, safe="")
        if current and len(current) + len(encoded) > _SEGMENT:
            segments.append(current)
            current = ""
        current += encoded
    segments.append(current)
    if len(segments) == 1:
        return [f"{name}*=utf-8''{segments[0]}"]
    return [f"{name}*{number}*={'utf-8' + chr(39) * 2 if number == 0 else ''}{segment}"
            for number, segment in enumerate(segments)]
