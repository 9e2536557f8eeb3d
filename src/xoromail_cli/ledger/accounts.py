"""Who a ledger row belongs to: the sending mailbox (the From address), not a profile's name nor the service.

Kept apart from the ledger itself so that computing it loads no database driver (dry runs load no sqlite3).
"""

from __future__ import annotations


def account_key(email: str) -> str:
    """Whose rows these are: the mailbox that sends (the From address, in lower case). The same mailbox on any
    host, through any service (Web Mail today, Microsoft 365 tomorrow), shares one history, so moving a
    profile to another service never sends a batch again; two companies on one machine never meet."""
    return email.strip().lower()


def legacy_domain(email: str) -> str:
    """The Message-ID domain older rows of this account carry (`<…@domain>`, see mime.make_message_id)."""
    return email.rpartition("@")[2].strip().lower()
