"""The one sender/ledger factory of the tests: a SQLite ledger in the test's folder, and a batch `Sender` over a
`Deliverer` over a real SMTP transport, as `xoromail send` builds them."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from tests.support.common import PASSWORD
from tests.support.samples import EVENT
from xoromail_cli.compose.render import Renderer
from xoromail_cli.ledger.sqlite import Ledger
from xoromail_cli.pacing import Backoff
from xoromail_cli.profile import Profile
from xoromail_cli.sending.deliverer import Deliverer
from xoromail_cli.sending.results import MessageResult
from xoromail_cli.sending.sender import Sender
from xoromail_cli.services.smtp.transport import SmtpEndpoint, SmtpTransport


def sqlite_ledger(folder: Path, name: str = "state/ledger.sqlite3") -> Ledger:
    return Ledger(folder / name)


def sender(profile: Profile, ledger: Ledger | None = None, *, key_template: str | None = None,
           password: str = PASSWORD, **options: Any) -> tuple[Sender, list[MessageResult]]:
    """A batch Sender for the overdue-invoice event over a Deliverer (`options` are the Deliverer's: retries,
    resend, rate, backoff, …; back-off is instant and seeded unless given), and the list its results go to."""
    results: list[MessageResult] = []
    transport = SmtpTransport(SmtpEndpoint.from_profile(profile), password)
    options.setdefault("backoff", Backoff(base=0.0, rng=random.Random(1)))
    deliverer = Deliverer(profile=profile, event=EVENT.name, transport=transport, ledger=ledger, **options)
    instance = Sender(event=EVENT, renderer=Renderer(profile), deliverer=deliverer, key_template=key_template,
                      on_result=results.append)
    return instance, results
