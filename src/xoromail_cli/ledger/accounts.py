"""Who a ledger row belongs to: the sending account (service and From address), not a profile's name.

Kept apart from the ledger itself so that computing it loads no database driver (dry runs load no sqlite3).
"""

from __future__ import annotations


def account_key(service: str, email: str) -> str:
    """Whose rows these are: the service and the From address, so the same account on any host (with
    settings files of its own) shares its history, and two companies on one machine never do."""
    return f"{service.strip().lower()}:{email.strip().lower()}"


def legacy_domain(email: str) -> str:
    """The Message-ID domain older rows of this account carry (`<…@domain>`, see mime.make_message_id)."""
    return email.rpartition("@")[2].strip().lower()
