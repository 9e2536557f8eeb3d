"""Look for a secret on disk the way an attacker with a copy of the folder would: as is, and in base64."""

from __future__ import annotations

import base64
from pathlib import Path


def forms(secret: str) -> list[bytes]:
    """The secret's bytes, and its base64 (standard and URL-safe) at each of the three byte alignments, so a
    secret in the middle of a longer base64 text is found too."""
    raw = secret.encode("utf-8")
    found = [raw]
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw)
            start = (shift * 4 + 2) // 3  # characters that carry padding bits
            core = encoded[start:len(encoded) - 3]
            if len(core) >= 8:
                found.append(core)
    return found


def files_holding(root: Path, *secrets: str) -> list[str]:
    """Every file under `root` that holds one of the secrets in any of its forms: "path (form)"."""
    hits = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        for secret in secrets:
            hits += [f"{path} ({form!r})" for form in forms(secret) if form in data]
    return hits
