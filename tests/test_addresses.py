from __future__ import annotations

import pytest

from xoromail_cli.addresses import check_header_value, parse_address, parse_address_list
from xoromail_cli.errors import DataError, ExitCode


@pytest.mark.parametrize("value", ["a\r\nBcc: victim@x.test", "name\nX-Evil: 1", "nul\x00byte"])
def test_line_breaks_in_header_values_are_refused(value: str) -> None:
    with pytest.raises(DataError, match="line break") as caught:
        check_header_value("Subject", value)
    assert caught.value.exit_code == ExitCode.DATAERR


def test_address_list_splits_on_semicolons_and_commas() -> None:
    assert parse_address_list("a@x.test; b@y.test, <c@z.test>") == ["a@x.test", "b@y.test", "c@z.test"]


@pytest.mark.parametrize("value", ["no-at-sign", "two@@x.test", "@x.test", "a@", "a b@x.test",
                                   "a@x.test\r\nBcc: z@x.test"])
def test_invalid_addresses_are_data_errors(value: str) -> None:
    with pytest.raises(DataError):
        parse_address(value, "--to")


def test_international_domains_are_sent_as_idna_and_local_parts_must_be_ascii() -> None:
    assert parse_address("a@bücher.de") == "a@xn--bcher-kva.de"
    with pytest.raises(DataError, match="non-ASCII characters"):
        parse_address("jörg@example.de")


LONG_LABEL = "x" * 64 + ".test"


@pytest.mark.parametrize(("value", "why"), [
    (f"a@{LONG_LABEL}", "longer than 63 characters"),
    ("a@b..test", "empty part"),
    ("a@.b.test", "empty part"),
    ("a@b" + "ü" * 3 + "x" * 58 + ".de", "longer than 63 characters once written for DNS (IDNA"),
])
def test_a_domain_dns_cannot_carry_is_refused_naming_why(value: str, why: str) -> None:
    with pytest.raises(DataError, match="not a valid email address") as caught:
        parse_address(value, "cc")
    assert why in caught.value.message and caught.value.field == "cc"
    assert "63 characters" in (caught.value.hint or "")


def test_labels_of_63_characters_and_short_idna_labels_pass() -> None:
    assert parse_address("a@" + "x" * 63 + ".test") == "a@" + "x" * 63 + ".test"
    assert parse_address("a@b" + "ü" + "x" * 50 + ".de").startswith("a@xn--")


@pytest.mark.parametrize("value", ["john..doe", "x" * 64, "billing.example.com."])
def test_a_value_without_an_at_sign_is_not_judged_by_a_domain_it_does_not_have(value: str) -> None:
    """No @: the whole value is no 'part after the @', so the domain rule's wording (empty part, 63 characters)
    would point at something that is not there."""
    with pytest.raises(DataError, match="not a valid email address") as caught:
        parse_address(value, "to")
    assert "after the @" not in caught.value.message and "63 characters" not in (caught.value.hint or "")
    assert "name@example.com" in (caught.value.hint or "")
