"""The contract every service keeps, so that batching, the ledger, retries and validation stay shared.

A *service* (SMTP, Exchange, Google, Microsoft 365) is one package under `services/`: its settings, its
setup questions, its validation stages, its transport and its hints, on `ServiceBase` (the protocol's no-op
answers and the one way to read a profile's settings). The sender only ever sees a
`Transport` and the `Delivery` it returns: transports classify their own outcomes (temporary, permanent,
stops the batch, in doubt), so the sender never parses a server's reply or looks at a host name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from xoromail_cli.compose.envelope import Envelope
from xoromail_cli.errors import ConfigError, ExitCode, TemporaryError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from xoromail_cli.profile import Profile
    from xoromail_cli.services.expiry import ExpiryNote

DeliveryStatus = Literal["sent", "failed", "temporary"]
StageCallback = Callable[[str, str], None]
"""Called with (stage name, detail) each time a stage of opening a connection succeeds."""
TraceCallback = Callable[[str, str], None]
"""Called with (direction, text) for `validate --trace`: "→" sent, "←" received, "·" a note. The transport
redacts passwords, tokens and AUTH payloads before calling it; the text is shown as is."""


@dataclass(frozen=True)
class Refusal:
    """One recipient refused, classified by the transport that heard it."""

    reply: str
    temporary: bool = False
    """Worth retrying to this recipient alone (4xx, greylisting, throttling)."""
    stops_batch: bool = False
    """Every later message would be refused the same way (a daily quota)."""


@dataclass(kw_only=True)
class Delivery:
    """What the service said about one message."""

    status: DeliveryStatus
    reply: str
    refused: dict[str, Refusal] = field(default_factory=dict)
    """Recipients refused one by one, while the message went to the others (or to none, when all are here)."""
    exit_code: int = 0
    hint: str | None = None
    stops_batch: bool = False
    """True when every later message would fail the same way (quota reached, sender refused)."""
    refuses_sender: bool = False
    """The service refused the message's From address (Send As not granted): messages from the mailbox's own
    address may still go (the relay holds that From's messages only)."""
    unknown: bool = False
    """The connection was lost after the message's data went out: it may or may not have been accepted."""
    retry_after: float | None = None
    """Seconds the service asked us to wait before trying again (Retry-After, BackOffMilliseconds)."""
    reconnect: bool = False
    """The session is no longer usable (a 421, an expired token): open it again before the next try."""

    @property
    def ok(self) -> bool:
        return self.status == "sent"


class ConnectionLostError(TemporaryError):
    """The connection to the service went away during `send`.

    `committed` is True once the message's data (or the HTTP request carrying it) had been handed over whole
    (SMTP: its final CRLF . CRLF taken by the socket): then it may have been accepted, and it is *in doubt*;
    before that, even in the middle of its data, it was certainly not sent.
    """

    def __init__(self, message: str, *, committed: bool, hint: str | None = None) -> None:
        super().__init__(message, hint, exit_code=ExitCode.TEMPFAIL)
        self.committed = committed


_BEFORE_END = "xoromail_stopped_before_end"


def mark_stopped_before_end(stop: KeyboardInterrupt) -> None:
    """Mark a Ctrl-C or SIGTERM that came while a message's data was being written, before its end went out: the
    server cannot have accepted that message. A transport that can tell (SMTP) marks the stop it lets through, the
    same exception (so `interrupts.Terminated` stays one); the sender then settles that message as not sent."""
    setattr(stop, _BEFORE_END, True)


def stopped_before_end(stop: BaseException) -> bool:
    """Whether `stop` was marked by `mark_stopped_before_end`."""
    return getattr(stop, _BEFORE_END, False) is True


class Transport(Protocol):
    """An open session with a service. `open` raises StageFailedError naming the stage that failed;
    `send` returns refusals as a Delivery and raises ConnectionLostError when the connection goes away.
    No other exception of the service's library may leave a transport."""

    name: str
    accepted_as: Literal["sent", "written"]
    """How a message this transport accepted is reported: sent to a service, or written to a file."""
    max_message_size: int | None
    """The largest message (bytes of `Envelope.data`) the service takes, when known; SMTP learns it at `open`."""
    subset_retries: bool
    """Whether `send` can deliver to some of the headers' recipients only (SMTP, EWS); header-driven APIs
    cannot, and the sender reports such a retry as impossible instead of sending to everyone again."""

    def open(self, on_stage: StageCallback | None = None) -> None:
        """Connect and sign in; raise StageFailedError naming the stage that failed."""

    def send(self, envelope: Envelope, before_data: Callable[[], None] | None = None) -> Delivery:
        """Deliver one message. Call `before_data` just before the message itself is handed over."""

    def close(self) -> None:
        """Say goodbye politely; never raises."""


@runtime_checkable
class PipeliningTransport(Transport, Protocol):
    """A transport that can start the next message before this one's reply (SMTP PIPELINING, RFC 2920).

    Optional: the sender uses it when a transport has it and `pipelining` is true for the open session.
    """

    pipelining: bool

    def send_then(self, envelope: Envelope, before_data: Callable[[], None] | None,
                  following: Envelope | None, meanwhile: Callable[[], None] | None = None) -> Delivery:
        """`send`, handing over `following`'s envelope commands behind this message's data. `before_data` is
        still called just before *this* message's data; `following` is not sent until its own call.
        `meanwhile` (the caller's own work, which must not raise) runs at most once, after this message's data
        is written and before its reply is read: it overlaps the server's work on the message."""


class SecretStore(Protocol):
    """A profile's secrets by kind; `credentials.Secrets` is the real one (the secret store, staged in setup)."""

    def get(self, kind: str) -> str | None:
        """The secret, or None when there is none."""

    def set(self, kind: str, value: str) -> None:
        """Store (or, during setup, stage) a secret, e.g. a refreshed token cache."""

    def delete(self, kind: str) -> None:
        """Forget a secret."""


class ServiceSettings(Protocol):
    """A service's own table of the profile (`[profiles.NAME.smtp]`): a frozen dataclass."""

    def to_table(self) -> dict[str, Any]:
        """The TOML table to save (no secrets, no empty values)."""

    def check(self) -> None:
        """Raise DataError(field=KEY) for a value out of range (a TOML type check cannot see it)."""


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What the provider allows, for pacing and for the daily-quota warning."""

    label: str
    per_minute: int | None = None
    per_hour: int | None = None
    daily_messages: int | None = None
    daily_recipients: int | None = None
    max_connections: int | None = None


@dataclass(frozen=True, kw_only=True)
class SetupOption:
    """A `setup` flag of one service; the CLI adds it to the command and passes its value by `key`."""

    flag: str
    """e.g. "--ews-url"."""
    key: str
    """Key in the answers mapping given to `build_settings`."""
    help: str
    metavar: str | None = None
    kind: Literal["text", "int", "float", "path", "flag"] = "text"


@dataclass(frozen=True, kw_only=True)
class Question:
    """One wizard question; `check` turns the typed text into the answer or raises XoromailError (asked again)."""

    key: str
    prompt: str
    default: str | None = None
    choices: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    """With `choices`: shown as a numbered menu, one label per choice."""
    secret: bool = False
    check: Callable[[str], Any] | None = None
    explain: str | None = None
    """Printed once before the question (a note on the provider, what to create first)."""
    remark: Callable[[Any], str | None] | None = None
    """Given the checked answer: a note printed after it, when the answer is valid but often a mistake
    (`DOMAIN\\user` where Microsoft 365 wants the full address)."""


@dataclass(frozen=True)
class SignInResult:
    """What an OAuth sign-in at setup gives back: the settings to save (who signed in, when it expires) and
    what to tell the user (another account signed in, a 7-day Testing consent screen)."""

    settings: Any
    warnings: tuple[str, ...] = ()


Notify = Callable[[str], None]
"""Shows a line to the person signing in (a URL, a device code, the ssh -L advice); the CLI prints it."""


class Service(Protocol):
    """One service type: everything about it that is not shared."""

    name: str
    label: str
    """As on the ERP's setup screen, e.g. "Web Mail (SMTP)"."""
    secret_kinds: tuple[str, ...]
    """The secret-store entries this service keeps for a profile ("password", "refresh_token", …)."""
    setup_options: tuple[SetupOption, ...]

    def settings_from_table(self, table: Mapping[str, Any]) -> ServiceSettings:
        """Build the settings from the profile's service table; raise DataError(field=KEY) on a bad value."""

    def build_settings(self, answers: Mapping[str, Any], existing: ServiceSettings | None,
                       email: str) -> ServiceSettings:
        """Merge setup answers (flags or wizard, None meaning not given) over the existing settings."""

    def missing(self, answers: Mapping[str, Any], existing: ServiceSettings | None,
                secret_known: bool, email: str | None) -> list[str]:
        """The flags a non-interactive setup still needs (`secret_known`: a password is at hand)."""

    def needs_password(self, settings: ServiceSettings, email: str) -> bool:
        """Whether these settings sign in with a password (setup asks for one, the secret store keeps it)."""

    def normalize_secret(self, settings: ServiceSettings, kind: str, value: str) -> str:
        """A secret as the service wants it (Google's app passwords lose their spaces)."""

    def next_question(self, answers: Mapping[str, Any], existing: ServiceSettings | None,
                      email: str) -> Question | None:
        """The next thing the wizard should ask, given what is answered so far; None when done."""

    def setup_notes(self, settings: ServiceSettings) -> list[str]:
        """Warnings setup prints and still saves (an unusual path, a retiring provider)."""

    def describe(self, profile: Profile) -> str:
        """One line for `config show` and the config stage: where and how messages go."""

    def planned_stages(self, profile: Profile, send: bool) -> list[str]:
        """The names of the validation stages, in order, beginning with "config"."""

    def check_offline(self, profile: Profile) -> None:
        """Refusals that need no network (a password in clear to a remote host, an unreadable CA file)."""

    def open_transport(self, profile: Profile, secrets: SecretStore, *, timeout: float | None = None,
                       trace: TraceCallback | None = None, validating: bool = False) -> Transport:
        """A transport for this profile (not yet opened); `validating` asks it to prove every step (an OAuth
        service refreshes its token even when the cached one is still valid)."""

    def sign_in(self, profile: Profile, secrets: SecretStore, *, notify: Notify,
                answers: Mapping[str, Any]) -> SignInResult | None:
        """Setup's Connect-and-Allow step for OAuth services, staging the tokens in `secrets`; None for a
        service that signs in with a password."""

    def disconnect(self, profile: Profile, secrets: SecretStore) -> str:
        """Forget every secret of the profile (revoking it at the provider first where it can); says what it did."""

    def notes(self, profile: Profile) -> list[str]:
        """What a passing check should still say about this account's future (dated provider changes)."""

    def limits(self, profile: Profile) -> Limits | None:
        """The provider's published limits for this profile, when known."""

    def settings_of(self, profile: Profile) -> Any:
        """The profile's settings, checked to be this service's; ConfigError (78) when they are not."""

    def sending_provider(self, profile: Profile) -> str | None:
        """The provider whose servers this profile's messages leave from ("microsoft365", "google"), so the
        domain checks know whose SPF include and DKIM selectors to expect; None when no provider is known."""

    def sending_host(self, profile: Profile) -> str | None:
        """The server whose addresses the domain's SPF must authorise (an SMTP host), when there is one."""

    def expiring(self, profile: Profile, now: datetime, secrets: SecretStore | None) -> list[ExpiryNote]:
        """What this profile's sign-in depends on that expires soon (a certificate, a client secret, a refresh
        token), for `services.expiry.notes_for`; `secrets` None means the profile's own store."""

    def learn_from_failure(self, profile: Profile, text: str, now: datetime) -> None:
        """Remember an expiry a failure's text reveals (AADSTS7000222: the client secret), so `expiring` says
        so from now on. Never raises."""


S = TypeVar("S")
"""A service's own settings type (`SmtpSettings`, `ExchangeSettings`, …)."""


class ServiceBase(Generic[S]):
    """What every service has in common: its settings read from a profile one way, and the no-op answers of
    the `Service` protocol, so a service writes only what is its own (and mypy checks it keeps the protocol).

    A subclass sets `name`, `label`, `secret_kinds`, `setup_options` and `settings_type`, and writes the
    methods that have no sensible default: `settings_from_table`, `build_settings`, `missing`, `next_question`,
    `describe`, `planned_stages` and `open_transport`.
    """

    name: str
    label: str
    secret_kinds: tuple[str, ...] = ("password",)
    setup_options: tuple[SetupOption, ...] = ()
    settings_type: type[S]

    def settings_of(self, profile: Profile) -> S:
        """The profile's settings, checked to be this service's (a profile edited by hand, or handed to the
        wrong service, is a configuration problem: ConfigError, exit 78)."""
        settings = getattr(profile, "settings", None)
        if not isinstance(settings, self.settings_type):
            name = getattr(profile, "name", "?")
            raise ConfigError(f"profile {name!r} has no {self.name} settings ([profiles.{name}.{self.name}])",
                              f"run `xoromail --profile {name} setup --service {self.name}`", field=self.name)
        return settings

    def own(self, settings: object) -> S | None:
        """`settings` when they are this service's (setup's existing settings may belong to another service)."""
        return settings if isinstance(settings, self.settings_type) else None

    def needs_password(self, settings: Any, email: str) -> bool:
        return False

    def normalize_secret(self, settings: Any, kind: str, value: str) -> str:
        """Tokens and client secrets lose the spaces a paste adds; a password is kept exactly as typed."""
        return value if kind == "password" else value.strip()

    def setup_notes(self, settings: Any) -> list[str]:
        return []

    def check_offline(self, profile: Profile) -> None:
        self.settings_of(profile)

    def notes(self, profile: Profile) -> list[str]:
        return []

    def sign_in(self, profile: Profile, secrets: SecretStore, *, notify: Notify,
                answers: Mapping[str, Any]) -> SignInResult | None:
        """Services that sign in with a password have no sign-in step."""
        return None

    def disconnect(self, profile: Profile, secrets: SecretStore) -> str:
        """Forget every secret kind of the service (a service that can revoke at the provider overrides this)."""
        for kind in self.secret_kinds:
            secrets.delete(kind)
        what = " and ".join(kind.replace("_", " ") for kind in self.secret_kinds)
        verb = "was" if len(self.secret_kinds) == 1 else "were"
        from xoromail_cli.credentials import store_name

        return f"the stored {what} {verb} removed from {store_name()}"

    def limits(self, profile: Profile) -> Limits | None:
        return None

    def sending_provider(self, profile: Profile) -> str | None:
        return None

    def sending_host(self, profile: Profile) -> str | None:
        return None

    def expiring(self, profile: Profile, now: datetime, secrets: SecretStore | None) -> list[ExpiryNote]:
        return []

    def learn_from_failure(self, profile: Profile, text: str, now: datetime) -> None:
        return None
