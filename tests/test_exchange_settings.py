"""Exchange settings and setup checks: the ERP's domain mistakes, the URI, username forms, the advisory."""

from __future__ import annotations

from datetime import date

import pytest

from xoromail_cli.errors import DataError, ExitCode, XoromailError
from xoromail_cli.services.advisories import exchange_ews
from xoromail_cli.services.exchange.service import SERVICE, advisory, setup_warnings
from xoromail_cli.services.exchange.settings import (
    DEFAULT_URL,
    ExchangeSettings,
    check_auth,
    check_domain,
    check_url,
    check_username,
    login_name,
)


@pytest.mark.parametrize("typed", ["https://company.com", "@company.com", "COMPANY\\", "company .com",
                                   "company.com.", "billing@company.com", "company.com/owa"])
def test_domain_typed_wrong_is_refused_with_the_right_form(typed: str) -> None:
    with pytest.raises(DataError) as caught:
        check_domain(typed)
    assert caught.value.exit_code == ExitCode.DATAERR
    assert caught.value.field == "domain"
    assert caught.value.hint is not None and "'company.com'" in caught.value.hint


def test_domain_hint_names_what_was_probably_meant() -> None:
    with pytest.raises(DataError) as caught:
        check_domain("https://Mail.Example.org/")
    assert "did you mean 'mail.example.org'" in (caught.value.hint or "")


def test_bare_domain_is_kept_in_lower_case() -> None:
    assert check_domain(" Company.COM ") == "company.com"


def test_uri_must_be_https() -> None:
    with pytest.raises(DataError) as caught:
        check_url("http://mail.company.com/EWS/Exchange.asmx")
    assert caught.value.exit_code == ExitCode.DATAERR and "https://" in caught.value.message


def test_unusual_path_is_a_warning_naming_the_usual_one() -> None:
    url, warnings = check_url("https://mail.company.com/owa")
    assert url == "https://mail.company.com/owa"
    assert len(warnings) == 1 and "https://mail.company.com/EWS/Exchange.asmx" in warnings[0]
    assert check_url("https://mail.company.com/ews/exchange.asmx")[1] == []


@pytest.mark.parametrize(("auth", "username", "expected"), [
    ("ntlm", "billing", "company.com\\billing"),
    ("ntlm", "COMPANY\\billing", "COMPANY\\billing"),
    ("ntlm", "billing@company.com", "billing@company.com"),
    ("basic", "billing", "billing@company.com"),
    ("basic", "billing@company.com", "billing@company.com"),
    ("basic", "COMPANY\\billing", "billing@company.com"),
])
def test_login_name_takes_the_form_each_auth_needs(auth: str, username: str, expected: str) -> None:
    settings = ExchangeSettings(url=DEFAULT_URL, domain="company.com", username=username, auth=check_auth(auth))
    assert login_name(settings) == expected


@pytest.mark.parametrize("typed", ["", "bill ing", "COMPANY\\", "a\\b\\c", "billing@"])
def test_incomplete_usernames_are_refused(typed: str) -> None:
    with pytest.raises(DataError):
        check_username(typed)


def test_unknown_auth_is_refused() -> None:
    with pytest.raises(DataError) as caught:
        check_auth("kerberos")
    assert "ntlm" in (caught.value.hint or "")


def test_exchange_online_gets_the_dated_advisory_and_on_premises_none() -> None:
    online = advisory(DEFAULT_URL)
    assert online is not None
    assert "October 2022" in online and "microsoft365" in online and "On-premises" in online
    assert exchange_ews() in online
    assert "1 October 2026" in exchange_ews(date(2026, 6, 1)) and "1 April 2027" in exchange_ews(date(2026, 6, 1))
    assert advisory("https://mail.company.com/EWS/Exchange.asmx") is None


def test_setup_warnings_are_returned_as_data() -> None:
    warnings = setup_warnings(ExchangeSettings(url="https://outlook.office365.com/ews", domain="company.com",
                                               username="billing"))
    assert len(warnings) == 2 and "/EWS/Exchange.asmx" in warnings[0] and "Exchange Online" in warnings[1]


def test_table_round_trips_and_unknown_keys_name_their_field() -> None:
    settings = SERVICE.settings_from_table({"url": "https://mail.company.com/EWS/Exchange.asmx",
                                            "domain": "company.com", "username": "billing", "auth": "basic"})
    assert SERVICE.settings_from_table(settings.to_table()) == settings
    with pytest.raises(DataError) as caught:
        SERVICE.settings_from_table({"host": "mail.company.com"})
    assert caught.value.field == "host"
    with pytest.raises(DataError) as bad_domain:
        SERVICE.settings_from_table({"domain": "@company.com"})
    assert bad_domain.value.field == "domain"


def test_flags_build_settings_over_the_existing_ones() -> None:
    existing = ExchangeSettings(url="https://mail.company.com/EWS/Exchange.asmx", domain="company.com",
                                username="billing", auth="ntlm")
    built = SERVICE.build_settings({"ews_url": None, "domain": None, "username": "COMPANY\\erp", "auth": "basic"},
                                   existing, "billing@company.com")
    assert built == ExchangeSettings(url=existing.url, domain="company.com", username="COMPANY\\erp", auth="basic")
    with pytest.raises(DataError):
        SERVICE.build_settings({"domain": "https://company.com"}, existing, "billing@company.com")


def test_non_interactive_setup_names_the_missing_flags() -> None:
    assert SERVICE.missing({}, None, secret_known=False) == ["--ews-url", "--username", "--password-stdin"]
    assert SERVICE.missing({"username": "billing"}, None, secret_known=True) == ["--ews-url"]  # no default URI
    assert SERVICE.missing({"username": "billing", "ews_url": "https://mail.company.com/EWS/Exchange.asmx"}, None,
                           secret_known=True) == []


def test_wizard_asks_each_field_once_and_rejects_a_bad_domain() -> None:
    answers: dict[str, object] = {}
    asked = []
    while (question := SERVICE.next_question(answers, None, "billing@company.com")) is not None:
        asked.append(question.key)
        assert question.check is not None
        if question.key == "domain":
            assert question.default == "company.com"
            with pytest.raises(XoromailError):
                question.check("COMPANY\\")
        if question.key == "ews_url":
            assert question.default is None  # no Exchange Online default (issue 22)
        typed = "https://mail.company.com/EWS/Exchange.asmx" if question.key == "ews_url" else "billing"
        answers[question.key] = question.check(question.default or typed)
    assert asked == ["ews_url", "domain", "username", "auth"]
    assert SERVICE.build_settings(answers, None, "billing@company.com").username == "billing"
