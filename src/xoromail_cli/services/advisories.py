"""Dated provider facts, phrased for the day they are read (a cron job runs for years).

Sources: Microsoft Message Center MC786329 (SMTP AUTH, update of 2026-01-27) and the Exchange team's EWS
retirement notice for Exchange Online; see shared provider facts.
"""

from __future__ import annotations

from datetime import date

SMTP_AUTH_DEFAULT_OFF = date(2026, 12, 31)
EWS_BLOCKED = date(2026, 10, 1)
EWS_OFF = date(2027, 4, 1)
MICROSOFT365_SETUP = "xoromail setup --service microsoft365"


def office365_smtp_auth(today: date | None = None) -> str:
    """What Microsoft's retirement of password SMTP AUTH means on `today`."""
    today = today or date.today()
    if today <= SMTP_AUTH_DEFAULT_OFF:
        weeks = (SMTP_AUTH_DEFAULT_OFF - today).days // 7
        when = f"in about {weeks} week{'s' if weeks != 1 else ''}" if weeks else "within days"
        return ("Microsoft turns password SMTP AUTH off by default at the end of December 2026 "
                f"({when}): move to OAuth with `{MICROSOFT365_SETUP}`, or an admin must keep SMTP AUTH "
                "enabled for this mailbox")
    return ("since the end of December 2026 Microsoft has password SMTP AUTH off by default: it works only "
            "where an admin enabled SMTP AUTH for the mailbox, and is removed for good in the second half of 2027; "
            f"use OAuth with `{MICROSOFT365_SETUP}`")


def exchange_ews(today: date | None = None) -> str:
    """Where Exchange Web Services stands for Exchange Online on `today` (on-premises is unaffected)."""
    today = today or date.today()
    if today < EWS_BLOCKED:
        state = "Exchange Online blocks EWS per tenant from 1 October 2026 and turns it off on 1 April 2027"
    elif today < EWS_OFF:
        state = ("Exchange Online has blocked EWS per tenant since 1 October 2026 (unless an admin allow-lists "
                 "the app) and turns it off for good on 1 April 2027")
    else:
        state = "Exchange Online turned EWS off on 1 April 2027"
    return (f"{state}; for Microsoft 365 use `{MICROSOFT365_SETUP}` (OAuth, Microsoft Graph). "
            "On-premises Exchange Server is not affected")
