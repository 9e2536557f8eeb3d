"""Sample data: send jobs, a CSV batch, the variables of an overdue-invoice message, an SMTP profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xoromail_cli.compose.events import EVENTS
from xoromail_cli.profile import Profile
from xoromail_cli.sending.batch import SendJob, make_job
from xoromail_cli.services.smtp.settings import SmtpSettings

EVENT = EVENTS["overdue-invoice"]
OVERDUE = ["--var", "customer_name=Ann", "--var", "invoice_number=INV-1", "--var", "amount_due=99.5",
           "--var", "due_date=2026-11-01"]
"""`send` options with every variable the overdue-invoice event needs."""


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


def csv_batch(path: Path, rows: int, bad_row: int | None = None) -> Path:
    """An overdue-invoice CSV of `rows` rows to c1@client.test…; `bad_row` gets a broken address."""
    with path.open("w", encoding="utf-8") as handle:
        handle.write("to,customer_name,invoice_number,amount_due,due_date\n")
        for number in range(1, rows + 1):
            to = "broken-address" if number == bad_row else f"c{number}@client.test"
            handle.write(f"{to},Customer {number},INV-{number},{number}.00,2026-11-01\n")
    return path
