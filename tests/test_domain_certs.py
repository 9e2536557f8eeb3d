"""Certificate expiry notes, read from a real TLS mail server's certificate (trustme, aiosmtpd)."""

from __future__ import annotations

import smtplib
import ssl
from datetime import UTC, datetime, timedelta

from tests.support.common import ServerFactory, TLSFiles
from xoromail_cli.domain.certs import certificate_expiry_note, not_after_of


def served_not_after(smtp_server: ServerFactory, tls: TLSFiles, not_after: datetime) -> datetime:
    """Start an implicit-TLS server whose certificate ends at `not_after`; read the date back as a client."""
    context = tls.context_for("127.0.0.1", not_after=not_after)
    server = smtp_server("ssl", tls_context=context)
    client = tls.client_context()
    with smtplib.SMTP_SSL("127.0.0.1", server.port, context=client, timeout=10) as session:
        assert isinstance(session.sock, ssl.SSLSocket)
        certificate = session.sock.getpeercert()
        session.noop()
    assert certificate
    return not_after_of(certificate)


def test_a_mail_server_certificate_expiring_in_four_days_gets_a_note_with_its_date(
        smtp_server: ServerFactory, tls: TLSFiles) -> None:
    now = datetime.now(UTC)
    not_after = served_not_after(smtp_server, tls, (now + timedelta(days=4, hours=1)).replace(microsecond=0))
    note = certificate_expiry_note(not_after, "127.0.0.1", now=now)
    assert note is not None and "127.0.0.1" in note and "in 4 days" in note
    assert not_after.strftime("%Y-%m-%d") in note


def test_a_certificate_valid_for_another_two_months_gets_no_note(smtp_server: ServerFactory, tls: TLSFiles) -> None:
    now = datetime.now(UTC)
    not_after = served_not_after(smtp_server, tls, now + timedelta(days=60))
    assert certificate_expiry_note(not_after, "127.0.0.1", now=now) is None


def test_the_note_starts_at_30_days_and_says_when_the_certificate_has_expired() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert certificate_expiry_note(now + timedelta(days=30, seconds=1), "smtp.company.test", now=now) is None
    soon = certificate_expiry_note(now + timedelta(days=30), "smtp.company.test", now=now)
    assert soon is not None and "2026-12-31" in soon and "in 30 days" in soon
    expired = certificate_expiry_note(now - timedelta(hours=1), "smtp.company.test", now=now)
    assert expired is not None and "expired on 2026-12-01" in expired
