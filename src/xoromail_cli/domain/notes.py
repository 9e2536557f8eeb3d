"""Deliverability as notes for `validate`: problems are said, never counted as failures, never raised."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xoromail_cli.addresses import domain_of
from xoromail_cli.domain.dkim import NAME as NO_SELECTOR
from xoromail_cli.errors import XoromailError

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile

NOTES_TIMEOUT = 3.0


def deliverability_notes(profile: Profile, *, timeout: float = NOTES_TIMEOUT,
                         dns_server: str | None = None) -> list[str]:
    """One note per check of the From domain that warns or fails; one note when DNS could not be asked. None
    for a profile that sends to a relay on this machine: what it relays to decides, and DNS cannot say that."""
    from xoromail_cli.domain.report import SendingPath, check_domain
    from xoromail_cli.services.network import is_loopback

    sending = SendingPath.of(profile)
    if sending.host is not None and is_loopback(sending.host):
        return []
    domain = domain_of(profile.email)
    try:
        report = check_domain(domain, sending=sending, dns_server=dns_server, timeout=timeout)
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
