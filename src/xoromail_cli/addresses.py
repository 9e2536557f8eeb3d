"""Address and header-value checks shared by config, setup, send and batch.

Header injection (CVE-2024-6923, CVE-2026-1299) is stopped here, before the `email` package ever sees
the value: any CR, LF, NUL or other control character (but tab) in a value meant for a header is refused, and so
is an invisible direction or format character (U+202E and its kind), which would make a Subject or a sender's
name read differently from what it says.
"""

from __future__ import annotations

import re

from xoromail_cli.errors import DataError

_FORBIDDEN = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")
"""Any control character but tab (VT, FF and NEL end a line for the `email` package), and lone surrogates."""
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
"""Invisible direction and format characters (the Trojan Source set, CVE-2021-42574, and the byte-order mark): in
a Subject or a sender's name, U+202E shows `Invoice <U+202E>fdp.exe` as `Invoice exe.pdf`."""
_UNENCODABLE = re.compile("[\x00\ud800-\udfff]")
"""NUL and lone surrogates (JSON "\\ud800", bytes that are not UTF-8 on the command line): no text part carries them."""
_LIST_SPLIT = re.compile(r"""((?:"(?:[^"\\]|\\.)*"|<[^<>]*>|[^;,])*)""")
"""One list item: quoted names and <addresses> keep their commas (`"Müller, Anna" <a@x.de>`)."""
_NAMED = re.compile(r"(.*?)<([^<>]*)>")
"""`Name <addr>` (the name may be quoted)."""
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")
"""The everyday dot-atom form; anything else goes through the `email` package's full RFC 5322 parser."""


def check_header_value(field: str, value: str) -> str:
    """Return `value` unchanged, or refuse it if it could start a new header line or cannot be encoded."""
    found = _FORBIDDEN.search(value)
    if found:
        raise DataError(
            f"{field} contains a line break or control character ({_name(found.group())})",
            "header values must be a single line of text; remove line breaks and control characters from the "
            "data (possible header injection)",
            field=field,
        )
    found = _BIDI.search(value)
    if found:
        raise DataError(
            f"{field} contains an invisible direction or format character ({_name(found.group())})",
            "header values are shown as written, and these can disguise the text: remove bidirectional controls "
            "(U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C) and byte-order marks (U+FEFF) from the value",
            field=field,
        )
    return value


def check_text(field: str, value: str) -> str:
    """Return `value` unchanged, or refuse what no message can carry: NUL and lone surrogates."""
    found = _UNENCODABLE.search(value)
    if found:
        raise DataError(f"{field} contains {_name(found.group())}, which no email can carry",
                        "the data is damaged or not UTF-8: fix the value where it comes from (the ERP export)",
                        field=field)
    return value


def _name(char: str) -> str:
    if "\ud800" <= char <= "\udfff":
        return f"a lone surrogate U+{ord(char):04X}, not valid UTF-8"
    return "NUL" if char == "\x00" else f"U+{ord(char):04X}"


def parse_address(value: str, field: str = "address") -> str:
    """Validate one bare address (`user@example.com`) and return it stripped."""
    check_header_value(field, value)
    text = value.strip()
    named = _NAMED.fullmatch(text)
    if named and named.group(1).strip():
        address = named.group(2).strip()
        raise DataError(f"{field} {value!r} has a display name: xoromail takes the address alone",
                        f"write only the address ({address}); the display name is left out", field=field)
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not text:
        raise DataError(f"{field} is empty", "write it as name@example.com", field=field)
    if "@" in text:  # without one there is no domain to judge: the checks below say what is wrong
        _check_domain(text.rpartition("@")[2], field, value)
    if _PLAIN_ADDRESS.fullmatch(text):
        return text
    from email.errors import HeaderParseError
    from email.headerregistry import Address

    try:
        address = Address(addr_spec=text)
    except (HeaderParseError, ValueError, IndexError) as exc:
        hint = ("addresses with non-ASCII characters before the @ need SMTPUTF8, which xoromail does not send"
                if not text.partition("@")[0].isascii() else "write it as name@example.com")
        raise DataError(f"{field} {value!r} is not a valid email address ({str(exc).rstrip(')')})", hint,
                        field=field) from None
    if not address.username or not address.domain or " " in text:
        raise DataError(f"{field} {value!r} is not a valid email address",
                        "write it as name@example.com", field=field)
    if address.domain.isascii():
        return str(address.addr_spec)
    return f"{address.username}@{_ascii_domain(address.domain, field, value)}"


def _check_domain(domain: str, field: str, value: str) -> None:
    """The rule hosts get (host_name_problem): no label over 63 characters (after IDNA), none empty."""
    problem = host_name_problem(domain) if domain.strip() else None
    if problem:
        raise DataError(f"{field} {value!r} is not a valid email address: in the part after the @, {problem}",
                        "each part of the domain between dots has 1 to 63 characters: check the part after the @",
                        field=field)


def _ascii_domain(domain: str, field: str, value: str) -> str:
    """bücher.de → xn--bcher-kva.de: what the wire (and smtplib) can carry."""
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise DataError(f"{field} {value!r} has a domain that is not a valid international name",
                        "check the part after the @", field=field) from None


def parse_address_list(value: str, field: str = "address") -> list[str]:
    """Split `a@x; b@y, c@z` into validated addresses; empty parts are ignored."""
    check_header_value(field, value)
    parts = [match.group(1) for match in _LIST_SPLIT.finditer(value)]
    return [parse_address(part, field) for part in parts if part.strip()]


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def host_name_problem(host: str) -> str | None:
    """Why `host` cannot be looked up (a label over 63 characters, an empty label, over 253 in all), or None.
    IP addresses pass; the resolver's own IDNA codec would otherwise fail with a traceback."""
    name = host.strip().strip("[]").rstrip(".")
    if ":" in name or not name:
        return None if name else "it is empty"
    labels = name.split(".")
    if any(len(label) > 63 for label in labels):
        return "a part between dots is longer than 63 characters"
    if any(not label for label in labels):
        return "it has an empty part (two dots in a row)"
    try:  # the IDNA codec (and unicodedata with it) is loaded only for an international name
        ascii_name = name if name.isascii() else name.encode("idna").decode("ascii")
    except UnicodeError:
        if any(len(_punycode(label)) > 63 for label in labels):
            return "a part between dots is longer than 63 characters once written for DNS (IDNA, xn--...)"
        return "it is not a valid (international) host name"
    if len(ascii_name) > 253:
        return "it is longer than 253 characters"
    return None


def _punycode(label: str) -> str:
    return label if label.isascii() else "xn--" + label.lower().encode("punycode").decode("ascii")
