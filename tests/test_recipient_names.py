"""`Name <addr>` recipients are refused with the reason that fits (a display name), not with the SMTPUTF8
advice meant for non-ASCII mailbox names; lists keep commas inside quoted names."""

from __future__ import annotations

import pytest

from tests.support.samples import EVENT
from xoromail_cli.addresses import parse_address, parse_address_list
from xoromail_cli.errors import DataError, ExitCode
from xoromail_cli.sending.batch import make_job


@pytest.mark.parametrize("value", ["Anna Müller <anna@kunde.de>", '"Müller, Anna" <anna@kunde.de>',
                                   "Accounts Payable <ap@customer.test>"])
def test_a_display_name_is_refused_as_such_with_the_bare_address_as_the_fix(value: str) -> None:
    with pytest.raises(DataError) as caught:
        parse_address_list(value, "to")
    error = caught.value
    assert error.exit_code == ExitCode.DATAERR
    assert "has a display name" in error.message
    assert "SMTPUTF8" not in (error.hint or "")
    assert value.split("<")[1].rstrip(">") in (error.hint or "")


def test_a_batch_row_with_a_named_recipient_says_display_name() -> None:
    with pytest.raises(DataError, match="display name"):
        make_job(EVENT, 1, to=["Anna Müller <anna@kunde.de>"], variables={})


def test_commas_inside_quotes_and_angle_brackets_do_not_split_the_list() -> None:
    assert parse_address_list("<a@x.test>, b@y.test; c@z.test") == ["a@x.test", "b@y.test", "c@z.test"]
    with pytest.raises(DataError, match="display name"):
        parse_address_list('"Doe, John" <john@x.test>, b@y.test', "cc")


def test_a_stray_quote_is_not_silently_dropped() -> None:
    with pytest.raises(DataError, match="not a valid email address"):
        parse_address_list('a"b@x.test', "to")


def test_a_non_ascii_mailbox_name_still_gets_the_smtputf8_reason() -> None:
    with pytest.raises(DataError) as caught:
        parse_address("jörg@example.de", "to")
    assert "SMTPUTF8" in (caught.value.hint or "")
