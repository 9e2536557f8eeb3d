"""Sample send jobs shared by the sending, idempotency and dispatch tests."""

from __future__ import annotations

from xoromail_cli.batch import SendJob, make_job
from xoromail_cli.events import EVENTS

EVENT = EVENTS["overdue-invoice"]


def jobs(count: int, refused: str | None = None) -> list[SendJob]:
    result = []
    for number in range(1, count + 1):
        to = refused if refused and number == 2 else f"customer{number}@client.test"
        result.append(make_job(EVENT, number, to=[to], variables={
            "customer_name": f"Customer {number}", "invoice_number": f"INV-{number}", "amount_due": "10",
            "due_date": "2026-11-01"}))
    return result
