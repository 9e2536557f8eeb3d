"""One harness per transport for the contract suite: start the real local service, arrange a case, read what arrived.

Each harness drives the transport's real library (smtplib, exchangelib, requests + google-auth, requests +
msal) against the fake of its service; a case the service cannot produce is declared in `Capabilities`
and the suite asserts that declaration instead of skipping. A new service adds one harness here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from tests.support.common import PASSWORD, USER, EwsFactory, ServerFactory, TLSFiles, profile_for
from tests.support.fakes import google_server as google_fake
from tests.support.fakes.ews_server import EwsServer
from tests.support.fakes.google_server import GoogleServer
from tests.support.fakes.header_delivery import as_delivered, recipients
from tests.support.fakes.microsoft_server import CLIENT_SECRET, GraphReply, MicrosoftServer
from tests.support.servers import DataReply, DropAtRcpt, DropNth, RefuseRecipient, SizeLimit
from xoromail_cli import services
from xoromail_cli.local.sink import CaptureHandler, SinkServer
from xoromail_cli.services.base import Transport

Case = Literal["accept", "refuse_one", "refuse_all", "temporary", "lost_before", "lost_after", "too_large",
               "open_fails"]
REFUSED = "nobody@example.com"
SIZE_LIMIT = 32 * 1024
"""The fakes' own size limit for the too-large case (a real one would be 10 to 35 MB)."""


@dataclass(frozen=True)
class Arrival:
    """One message as the service took it: the bytes its recipients get, and who they are."""

    data: bytes
    recipients: tuple[str, ...] | None
    """None where nobody receives it (the outbox writes files)."""
    raw: bytes
    """The bytes as they travelled to the service (with Bcc for the header-driven APIs)."""


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What a service can do or say, so a case that cannot happen is excluded by a declaration the suite asserts."""

    per_recipient_refusal: bool
    """The service refuses recipients one by one (SMTP RCPT); else a Delivery never names a subset."""
    subset_retries: bool
    """The transport can send to some recipients only (explicit recipient lists); header-driven APIs cannot."""
    bcc: Literal["envelope", "header", "review"]
    """envelope: Bcc go as envelope recipients only; header: sent in `data_with_bcc()` and stripped by the
    provider; review: nothing is delivered (files), and the file keeps the Bcc line so a reviewer sees it."""
    refuses: bool = True
    """The service can refuse, delay or lose a message at all (not the outbox)."""
    retry_after: float | None = None
    """What the temporary case's service asks us to wait (SMTP has no such field)."""
    before_data_when_unreachable: bool = False
    """HTTP transports call `before_data` before the request, so a server gone after `open` has been marked."""
    size_limit: bool = True
    """`max_message_size` is a stated int (SMTP: from EHLO SIZE)."""
    open_stage: str = ""
    """The stage an unreachable service fails at."""


class Harness:
    """The interface the suite uses; `arrange` comes before `transport` (SMTP picks its handler at start)."""

    name: str
    caps: Capabilities

    def arrange(self, case: Case) -> None:
        self.case = case

    def transport(self) -> Transport:
        raise NotImplementedError

    def after_open(self) -> None:
        """Called between `open` and `send`: the lost-before-commit case takes the server away here."""

    def arrived(self) -> list[Arrival]:
        raise NotImplementedError


class SmtpHarness(Harness):
    name = "smtp"
    caps = Capabilities(per_recipient_refusal=True, subset_retries=True, bcc="envelope", open_stage="connect")

    def __init__(self, smtp_server: ServerFactory, tls: TLSFiles) -> None:
        self.start, self.tls = smtp_server, tls
        self.server: SinkServer | None = None

    def transport(self) -> Transport:
        from xoromail_cli.services.smtp.transport import SmtpTransport

        handlers: dict[str, CaptureHandler] = {
            "refuse_one": RefuseRecipient(REFUSED), "refuse_all": RefuseRecipient(REFUSED),
            "temporary": DataReply("451 4.3.0 Temporary System Problem. Try again later."),
            "lost_before": DropAtRcpt(), "lost_after": DropNth(1), "too_large": SizeLimit(SIZE_LIMIT)}
        self.server = self.start("starttls", handler=handlers.get(self.case, CaptureHandler()))
        profile = profile_for(self.server, self.tls)
        if self.case == "open_fails":
            self.server.stop()  # nothing listens there any more: the connect stage fails
        return SmtpTransport.for_profile(profile, PASSWORD)

    def arrived(self) -> list[Arrival]:
        assert self.server is not None
        return [Arrival(m.data, tuple(m.recipients), m.data) for m in self.server.messages]


class OutboxHarness(Harness):
    name = "outbox"
    caps = Capabilities(per_recipient_refusal=False, subset_retries=True, bcc="review", refuses=False,
                        size_limit=False, open_stage="outbox")

    def __init__(self, tmp_path: Path) -> None:
        self.folder = tmp_path / "outbox"

    def transport(self) -> Transport:
        from xoromail_cli.services.outbox import OutboxTransport

        if self.case == "open_fails":
            self.folder.parent.mkdir(parents=True, exist_ok=True)
            self.folder.write_text("a file where the folder should be")
        return OutboxTransport(self.folder)

    def arrived(self) -> list[Arrival]:
        if not self.folder.is_dir():
            return []
        return [Arrival(path.read_bytes(), None, path.read_bytes()) for path in sorted(self.folder.glob("*.eml"))]


class ExchangeHarness(Harness):
    name = "exchange"
    caps = Capabilities(per_recipient_refusal=False, subset_retries=True, bcc="envelope", retry_after=30.0,
                        before_data_when_unreachable=True, open_stage="connect")

    def __init__(self, ews: EwsFactory, tls: TLSFiles) -> None:
        self.server: EwsServer = ews()
        self.tls = tls

    def transport(self) -> Transport:
        from tests.support.keyring_store import KeyringStore
        from xoromail_cli.credentials import write_secret
        from xoromail_cli.services.exchange.settings import ExchangeSettings
        from xoromail_cli.services.exchange.transport import ExchangeTransport

        behaviour = self.server.behaviour
        behaviour.create_error = {"refuse_all": ("ErrorInvalidRecipients", "One or more recipients are invalid.")
                                  }.get(self.case)
        behaviour.busy_ms = 30000 if self.case == "temporary" else None
        behaviour.drop_create = self.case == "lost_after"
        behaviour.max_mime_bytes = SIZE_LIMIT if self.case == "too_large" else None
        if self.case == "open_fails":
            self.server.stop()
        write_secret("default", "password", PASSWORD)
        settings = ExchangeSettings(url=self.server.url, domain="company.test", username="billing", auth="basic")
        return ExchangeTransport(settings, USER, KeyringStore(deletes=False), ca_file=str(self.tls.ca_file),
                                 timeout=5.0)

    def after_open(self) -> None:
        if self.case == "lost_before":
            self.server.stop()

    def arrived(self) -> list[Arrival]:
        accepted = [r for r in self.server.received if r.operation == "CreateItem" and r.answer == "NoError"]
        return [Arrival(r.mime or b"", (*r.to, *r.cc, *r.bcc), r.mime or b"") for r in accepted]


class GoogleHarness(Harness):
    name = "google"
    caps = Capabilities(per_recipient_refusal=False, subset_retries=False, bcc="header", retry_after=7.0,
                        before_data_when_unreachable=True, open_stage="token")

    def __init__(self, tls: TLSFiles, tmp_path: Path) -> None:
        self.server = GoogleServer(tls.server_context).start()
        self.tls, self.tmp_path = tls, tmp_path

    def stop(self) -> None:
        self.server.stop()

    def transport(self) -> Transport:
        from tests.support.google_helpers import settings_for
        from tests.support.keyring_store import KeyringStore
        from xoromail_cli.services.google import oauth
        from xoromail_cli.services.google.transport import GmailTransport

        state = self.server.state
        replies: dict[str, list[google_fake.Canned]] = {
            "refuse_all": [(400, google_fake.api_error(400, "Invalid To header", "invalidArgument",
                                                       "INVALID_ARGUMENT"), {})],
            "temporary": [google_fake.TOO_MANY_REQUESTS]}
        state.send_replies = replies.get(self.case, [])
        state.drop_send = self.case == "lost_after"
        state.max_request_bytes = SIZE_LIMIT * 4 // 3 + 64 if self.case == "too_large" else None
        settings, client_secret = settings_for(self.server, self.tmp_path)
        store = KeyringStore("google-test")  # signed in: the secrets setup stores, the refresh token issued by the fake
        store.set(oauth.CLIENT_SECRET, client_secret)
        store.set(oauth.REFRESH_TOKEN, state.issue_refresh_token())
        if self.case == "open_fails":
            self.server.stop()
        return GmailTransport(settings, USER, store, ca_file=str(self.tls.ca_file), timeout=5.0)

    def after_open(self) -> None:
        if self.case == "lost_before":
            self.server.stop()

    def arrived(self) -> list[Arrival]:
        return [Arrival(as_delivered(data), recipients(data), data) for data in self.server.state.sent]


class Microsoft365Harness(Harness):
    name = "microsoft365"
    caps = Capabilities(per_recipient_refusal=False, subset_retries=False, bcc="header", retry_after=5.0,
                        before_data_when_unreachable=True, open_stage="sign-in")

    def __init__(self, tls: TLSFiles) -> None:
        self.server = MicrosoftServer(tls.server_context).__enter__()
        self.tls = tls

    def stop(self) -> None:
        self.server.__exit__(None, None, None)

    def transport(self) -> Transport:
        from tests.support.keyring_store import KeyringStore
        from tests.support.m365_helpers import settings_for
        from xoromail_cli.services.microsoft365.auth import CLIENT_SECRET as SECRET_KIND
        from xoromail_cli.services.microsoft365.transport import Microsoft365Transport

        self.server.graph_replies = {
            "refuse_all": [GraphReply(400, "ErrorInvalidRecipients", "At least one recipient isn't valid., A "
                                      "message can't be sent because it contains no recipients.")],
            "temporary": [GraphReply(429, "ApplicationThrottled", "Application is over its MailboxConcurrency "
                                     "limit.", {"Retry-After": "5"})]}.get(self.case, [])
        self.server.drop_send = self.case == "lost_after"
        self.server.max_mime_bytes = SIZE_LIMIT if self.case == "too_large" else None
        store = KeyringStore("m365-app")  # app-only: the client secret is the whole sign-in
        store.set(SECRET_KIND, CLIENT_SECRET)
        settings = settings_for(self.server, mode="app")
        if self.case == "open_fails":
            self.stop()
        return Microsoft365Transport(settings, store, mailbox=USER, ca_file=str(self.tls.ca_file), timeout=5.0)

    def after_open(self) -> None:
        if self.case == "lost_before":
            self.stop()

    def arrived(self) -> list[Arrival]:
        return [Arrival(as_delivered(sent.mime), recipients(sent.mime), sent.mime) for sent in self.server.sent]


HarnessFactory = Callable[[pytest.FixtureRequest, TLSFiles, Path], Harness]
HARNESSES: dict[str, HarnessFactory] = {
    "smtp": lambda request, tls, tmp_path: SmtpHarness(request.getfixturevalue("smtp_server"), tls),
    "outbox": lambda request, tls, tmp_path: OutboxHarness(tmp_path),
    "exchange": lambda request, tls, tmp_path: ExchangeHarness(request.getfixturevalue("ews"), tls),
    "google": lambda request, tls, tmp_path: GoogleHarness(tls, tmp_path),
    "microsoft365": lambda request, tls, tmp_path: Microsoft365Harness(tls),
}
"""One harness per transport, by name: every registered service, and the outbox."""
TRANSPORTS: tuple[str, ...] = (*services.REGISTRY, "outbox")
"""What the contract suite runs: derived from the registry, so a new service is in it from its first line."""


def missing_harnesses() -> list[str]:
    """Registered services without a harness (the suite's cases fail for them until one is added here)."""
    return sorted(set(services.REGISTRY) - set(HARNESSES))


def harness_for(name: str, request: pytest.FixtureRequest, tls: TLSFiles, tmp_path: Path) -> Harness:
    factory = HARNESSES.get(name)
    if factory is None:
        raise LookupError(f"service {name!r} has no contract harness: add one to HARNESSES in "
                          "tests/support/contract_harnesses.py (start its fake, arrange each case, read what arrived)")
    return factory(request, tls, tmp_path)
