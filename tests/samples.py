"""Sample send jobs shared by the sending, idempotency and dispatch tests."""

from __future__ import annotations

from typing import Any

from xoromail_cli.compose.events import EVENTS
from xoromail_cli.profile import Profile
from xoromail_cli.sending.batch import SendJob, make_job
from xoromail_cli.services.smtp.settings import SmtpSettings

EVENT = EVENTS["overdue-invoice"]


def jobs(count: int, refused: str | None = None) -> list[SendJob]:
    result = []
    for number in range(1, count + 1):
        to = refused if refused and number == 2 else f"customer{number}@client.test"
        result.append(make_job(EVENT, number, to=[to], variables={
            "customer_name": f"Customer {number}", "invoice_number": f"INV-{number}", "amount_due": "10",
            "due_date": "2026-11-01"}))
    return result


def smtp_profile(**values: Any) -> Profile:
    """A profile of the SMTP service, written as flat as the first release's settings were."""
    smtp_keys = {key: values.pop(key) for key in ("host", "port", "security", "username", "preset") if key in values}
    return Profile(settings=SmtpSettings(**smtp_keys), **values)
