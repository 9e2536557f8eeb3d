from __future__ import annotations

import pytest

from tests.support.samples import EVENT, jobs
from xoromail_cli.sending.batch import make_job
from xoromail_cli.sending.keys import idempotency_key


def test_idempotency_key_uses_the_natural_key_and_recipients() -> None:
    job = jobs(1)[0]
    assert idempotency_key(EVENT, job) == "overdue-invoice:INV-1:customer1@client.test"
    assert idempotency_key(EVENT, job, "{invoice_number}-{due_date}") == (
        "overdue-invoice:INV-1-2026-11-01:customer1@client.test")


@pytest.mark.parametrize("template", ["{invoice_number:d}", "{invoice_number!r}", "no fields", "{0}"])
def test_key_templates_take_plain_fields_only(template: str) -> None:
    from xoromail_cli.errors import UsageError
    from xoromail_cli.sending.keys import check_key_template

    with pytest.raises(UsageError):
        check_key_template(EVENT, template)


def test_recipient_case_does_not_change_the_key() -> None:
    lower, upper = jobs(1)[0], make_job(EVENT, 1, to=["Customer1@Client.TEST"], variables=jobs(1)[0].variables)
    assert idempotency_key(EVENT, lower) == idempotency_key(EVENT, upper)
