"""Deliverability as notes for `validate`: problems are said, never counted as failures, never raised."""

from __future__ import annotations

from xoromail_cli.addresses import domain_of
from xoromail_cli.domain.dkim import NAME as NO_SELECTOR
from xoromail_cli.errors import XoromailError

NOTES_TIMEOUT = 3.0


def deliverability_notes(email: str, service: str, smtp_host: str | None, *, timeout: float = NOTES_TIMEOUT,
                         dns_server: str | None = None) -> list[str]:
    """One note per check of the From domain that warns or fails; one note when DNS could not be asked."""
    from xoromail_cli.domain.report import check_domain

    domain = domain_of(email)
    try:
        report = check_domain(domain, service=service, smtp_host=smtp_host, dns_server=dns_server, timeout=timeout)
    except XoromailError as error:
        return [f"the domain {domain} was not checked: {error.message}"]
    except Exception as error:  # noqa: BLE001  # a note must never fail validate; the cause is still named
        return [f"the domain {domain} was not checked: {type(error).__name__}"]
    notes = []
    for check in report.checks:
        if check.status == "ok" or check.name == NO_SELECTOR:  # nothing was found wrong, only not looked up
            continue
        text = f"{check.name}: {check.detail}"
        notes.append(f"{text} ({check.hint})" if check.hint else text)
    return notes
