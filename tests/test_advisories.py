from __future__ import annotations

from datetime import date

from xoromail_cli.services.advisories import exchange_ews, office365_smtp_auth


def test_smtp_auth_advice_counts_down_then_speaks_in_the_past() -> None:
    assert "in about 5 weeks" in office365_smtp_auth(date(2026, 11, 25))
    assert "within days" in office365_smtp_auth(date(2026, 12, 29))
    assert office365_smtp_auth(date(2027, 1, 15)).startswith("since the end of December 2026")


def test_ews_advice_follows_the_retirement_dates() -> None:
    assert "blocks EWS per tenant from 1 October 2026" in exchange_ews(date(2026, 9, 1))
    assert "has blocked EWS per tenant since 1 October 2026" in exchange_ews(date(2026, 11, 25))
    assert "turned EWS off on 1 April 2027" in exchange_ews(date(2027, 5, 1))
    assert "On-premises Exchange Server is not affected" in exchange_ews(date(2027, 5, 1))


def test_both_retirements_point_at_the_microsoft365_service() -> None:
    for today in (date(2026, 11, 25), date(2027, 1, 15)):
        assert "xoromail setup --service microsoft365" in office365_smtp_auth(today)
        assert "xoromail setup --service microsoft365" in exchange_ews(today)
