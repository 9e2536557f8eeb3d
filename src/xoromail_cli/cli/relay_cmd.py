"""`xoromail relay`: a local SMTP port for the ERP; what it accepts is spooled, then delivered by the profile.

Without `--user` it serves every login of the settings file (`xoromail relay users add`), each through its own
profile; `--user`/`--password-stdin`/`--profile` start the one-login relay of one profile. Logs go to stderr one
plain line per event (journald keeps them as they are); SIGTERM or Ctrl-C stops accepting, lets the delivery
in progress finish and exits 0 with the rest kept in the spool.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from xoromail_cli.cli.console import stdin_line
from xoromail_cli.cli.relay_users_cmd import users_app
from xoromail_cli.cli.state import state_of

if TYPE_CHECKING:
    import ssl

    from xoromail_cli.profile import Profile
    from xoromail_cli.relay.delivery import DeliveryOptions
    from xoromail_cli.relay.limits import SessionLimits
    from xoromail_cli.relay.office import Office
    from xoromail_cli.relay.server import RelayServer
    from xoromail_cli.relay.tls import TLSFiles

relay_app = typer.Typer(no_args_is_help=False, context_settings={"help_option_names": ["-h", "--help"]})
relay_app.add_typer(users_app, name="users")


def _log(line: str) -> None:
    from xoromail_cli.cli.console import safe_text

    sys.stderr.write(safe_text(line) + "\n")
    sys.stderr.flush()


@relay_app.callback(invoke_without_command=True)
def relay(
    ctx: typer.Context,
    listen: Annotated[str, typer.Option("--listen", metavar="HOST:PORT",
                                        help="Where to accept SMTP (anything but loopback needs --tls-cert).")
                      ] = "127.0.0.1:2525",
    user: Annotated[str | None, typer.Option(
        "--user", metavar="NAME", help="One login only, for one profile (kept in the secret store); without it, every "
                                       "login of `relay users`.")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the one login's password from the first line of standard input.")] = False,
    profile_name: Annotated[str | None, typer.Option(
        "--profile", metavar="NAME", help="The one-login relay's profile (default: the global --profile).")] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", metavar="PEM", exists=True, dir_okay=False,
                                                  help="Certificate (chain) for STARTTLS.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", metavar="PEM", exists=True, dir_okay=False,
                                                 help="The certificate's private key.")] = None,
    rewrite_from: Annotated[bool, typer.Option(
        "--rewrite-from", help="Send a From the mailbox may not use as the mailbox, the original in Reply-To.")
                            ] = False,
    allow_from: Annotated[list[str] | None, typer.Option(
        "--allow-from", metavar="ADDR", help="One-login relay: another From the mailbox has Send As rights for "
                                             "(repeatable).")] = None,
    bounce_to: Annotated[str | None, typer.Option(
        "--bounce-to", metavar="ADDR", help="Mail a report here when a message is refused for good.")] = None,
    spool_dir: Annotated[Path | None, typer.Option(
        "--spool", metavar="DIR", file_okay=False,
        help="The spool folder (default: in the state folder; with several logins, one subfolder a profile).")
                         ] = None,
    retry_delay: Annotated[float, typer.Option("--retry-delay", metavar="SECONDS", min=0.01,
                                               help="First wait after a temporary failure; doubles up to 1 h.")
                           ] = 30.0,
    give_up: Annotated[str, typer.Option("--give-up-after", metavar="DURATION",
                                         help="Fail a message still refused for now after this long.")] = "5d",
    rate: Annotated[str | None, typer.Option("--rate", metavar="N/min",
                                             help="At most this many messages (default: the profile's).")] = None,
    no_retry_in_doubt: Annotated[bool, typer.Option(
        "--no-retry-in-doubt", help="Hold a message whose answer was lost after its data for a person "
                                    "(`queue release`) instead of sending it again.")] = False,
    allow_ip: Annotated[list[str] | None, typer.Option(
        "--allow-ip", metavar="CIDR", help="Accept connections only from here (repeatable; IPv4 or IPv6).")] = None,
    max_connections: Annotated[int, typer.Option("--max-connections", metavar="N", min=1,
                                                 help="Connections at once, in all.")] = 100,
    max_per_address: Annotated[int, typer.Option("--max-per-address", metavar="N", min=1,
                                                 help="Connections at once from one address.")] = 10,
    login_timeout: Annotated[float, typer.Option("--login-timeout", metavar="SECONDS", min=1,
                                                 help="Time a connection has to log in.")] = 30.0,
    idle_timeout: Annotated[float, typer.Option("--idle-timeout", metavar="SECONDS", min=1,
                                                help="Time a logged-in connection may wait between commands.")
                            ] = 300.0,
    tls_min: Annotated[str, typer.Option("--tls-min", metavar="VERSION",
                                         help="Lowest TLS version (1.2; 1.0 only on a trusted network).")] = "1.2",
) -> None:
    """Accept the ERP's mail on a local SMTP port and deliver it through the profile's service."""
    if ctx.invoked_subcommand is not None:
        return
    from xoromail_cli.addresses import parse_address
    from xoromail_cli.pacing import parse_duration
    from xoromail_cli.relay.delivery import DeliveryOptions
    from xoromail_cli.relay.limits import SessionLimits, parse_networks
    from xoromail_cli.relay.server import parse_listen
    from xoromail_cli.relay.tls import tls_files

    host, port = parse_listen(listen)
    files = tls_files(host, tls_cert, tls_key, tls_min)
    context = files.load() if files is not None else None  # a certificate that cannot be used stops us here
    networks = parse_networks(allow_ip)
    options = DeliveryOptions(retry_delay=retry_delay, give_up_after=parse_duration(give_up).total_seconds(),
                              rate=rate, bounce_to=parse_address(bounce_to, "--bounce-to") if bounce_to else None,
                              retry_in_doubt=not no_retry_in_doubt)
    one_login = user is not None or password_stdin or profile_name is not None
    if one_login:
        office = _one_login(ctx, profile_name, user, password_stdin, allow_from or [], rewrite_from, spool_dir,
                            options)
    else:
        office = _every_login(ctx, allow_from or [], rewrite_from, spool_dir, options)
    limits = SessionLimits(max_connections=max_connections, per_address=max_per_address, login_within=login_timeout,
                           idle=idle_timeout, allow=networks, max_recipients=_recipient_cap(office))
    _serve(office, (host, port), files, context, limits)


def _recipient_cap(office: Office) -> int:
    """The smallest of the mailboxes' providers' caps on recipients a message."""
    from xoromail_cli.relay.limits import recipient_cap

    providers = [mailbox.worker.limits.provider for mailbox in office.mailboxes]
    return min(recipient_cap(provider.label if provider is not None else None) for provider in providers)


def _one_login(ctx: typer.Context, profile_name: str | None, user: str | None, password_stdin: bool,
               allow_from: list[str], rewrite: bool, spool_dir: Path | None, options: DeliveryOptions) -> Office:
    from xoromail_cli import config, paths
    from xoromail_cli.addresses import parse_address
    from xoromail_cli.relay.credential import relay_credential
    from xoromail_cli.relay.handler import Route
    from xoromail_cli.relay.message import SenderPolicy
    from xoromail_cli.relay.office import Office, open_mailbox
    from xoromail_cli.relay.spool import Spool
    from xoromail_cli.relay.users import LoginTable

    state = state_of(ctx)
    profile = config.load_profile(state.config_path, paths.profile_name(profile_name or state.profile_option))
    allowed = frozenset(parse_address(a, "--allow-from").lower() for a in allow_from)
    password = stdin_line() if password_stdin else None
    credential, generated = relay_credential(profile.name, user, password, may_show=sys.stderr.isatty())
    if generated:
        from xoromail_cli.credentials import store_name

        _log(f"relay login created and stored in {store_name()}; shown this once: user {credential.user} "
             f"password {credential.password}")
    mailbox = open_mailbox(profile, Spool(spool_dir or paths.state_dir() / "relay" / profile.name), options, _log)
    policy = SenderPolicy(mailbox=profile.email, display_name=profile.display_name, allowed=allowed, rewrite=rewrite)
    return Office(logins=LoginTable({credential.user: credential.password}),
                  routes={credential.user: Route(policy, mailbox.spool, mailbox.worker.wake,
                                                 mailbox.worker.refuse_size)}, mailboxes=[mailbox])


def _every_login(ctx: typer.Context, allow_from: list[str], rewrite: bool, spool_dir: Path | None,
                 options: DeliveryOptions) -> Office:
    from xoromail_cli.errors import UsageError
    from xoromail_cli.relay.office import open_office
    from xoromail_cli.relay.users import load_logins

    state = state_of(ctx)
    logins = load_logins(state.config_path)
    if not logins:  # no logins yet: the one-login relay of the global --profile, as before
        return _one_login(ctx, None, None, False, allow_from, rewrite, spool_dir, options)
    if allow_from:
        raise UsageError("--allow-from is for the one-login relay",
                         "give each login its own From addresses: `xoromail relay users add NAME --profile P "
                         "--from ADDR`")
    office = open_office(state.config_path, logins, options, _log, rewrite=rewrite, spool_base=spool_dir)
    from xoromail_cli.relay.delivery import event_line
    from xoromail_cli.relay.users import left_out

    for note in left_out(state.config_path, logins):
        _log(event_line("warning", text=note))
    return office


def _serve(office: Office, address: tuple[str, int], files: TLSFiles | None, context: ssl.SSLContext | None,
           limits: SessionLimits) -> None:
    """Listen, deliver, and stop on SIGTERM or Ctrl-C with the spool kept; SIGHUP reads the certificate again;
    systemd is told how the relay is doing (Type=notify)."""
    from xoromail_cli.relay.delivery import event_line
    from xoromail_cli.relay.handler import RelayHandler
    from xoromail_cli.relay.notify import Notifier
    from xoromail_cli.relay.server import RelayServer

    first = office.mailboxes[0]
    handler = RelayHandler(first.spool, next(iter(office.routes.values())).policy, _log, first.worker.wake,
                           routes=office.routes)
    host, port = address
    server = RelayServer(handler, office.logins, host, port, tls=context, limits=limits, tls_files=files)
    stop, reload = threading.Event(), threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload.set())
    server.start()
    for mailbox in office.mailboxes:
        mailbox.worker.start()
    _announce(office, server, host, files, limits)
    threading.Thread(target=_learn_sizes, args=(office, server), name="relay-size", daemon=True).start()
    notifier = Notifier()
    notifier.ready(f"listening on {host}:{server.port} for {len(office.routes)} login(s)")
    _run(office, server, notifier, stop, reload)
    _log(event_line("stopping", reason="signal"))
    notifier.stopping()
    server.stop()
    for mailbox in office.mailboxes:
        mailbox.worker.stop()
    for mailbox in office.mailboxes:
        queued, held = mailbox.spool.backlog()
        _log(event_line("stopped", queued=queued, held=held, failed=len(mailbox.spool.ids("failed")),
                        mailbox=mailbox.profile.email))


def _announce(office: Office, server: RelayServer, host: str, files: TLSFiles | None, limits: SessionLimits) -> None:
    from xoromail_cli.relay.delivery import event_line
    from xoromail_cli.relay.tls import start_warnings

    for warning in start_warnings(host, files, limits):
        _log(event_line("warning", text=warning))
    allow = ",".join(str(network) for network in limits.allow) or None
    for mailbox in office.mailboxes:
        queued, held = mailbox.spool.backlog()
        _log(event_line("listening", address=f"{host}:{server.port}", tls="starttls" if files else "none",
                        service=mailbox.profile.service, mailbox=mailbox.profile.email, spool=mailbox.spool.root,
                        queued=queued, held=held, logins=len(office.routes), recipients=limits.max_recipients,
                        allow=allow))


def _run(office: Office, server: RelayServer, notifier: Any, stop: threading.Event, reload: threading.Event) -> None:
    """Until a stop: what expires soon (once a day, each mailbox's profile), a SIGHUP's certificate for new
    sessions, and WATCHDOG=1 every half WatchdogSec while the server and every worker run (else systemd
    restarts the relay)."""
    tls_cert = server.tls_files.cert if server.tls_files is not None else None
    checked: dict[str, str | None] = {mailbox.profile.name: None for mailbox in office.mailboxes}
    tick, next_ping = min(0.5, notifier.interval or 0.5), 0.0
    while True:
        for mailbox in office.mailboxes:
            name = mailbox.profile.name
            checked[name] = _expiry_notes(mailbox.profile, tls_cert, checked[name])
        if stop.wait(tick):
            return
        if reload.is_set():
            reload.clear()
            server.reload_tls()
        _follow_sizes(office, server)
        alive = server.alive and all(mailbox.worker.alive for mailbox in office.mailboxes)
        if notifier.interval is not None and alive and time.monotonic() >= next_ping:
            notifier.watchdog()
            next_ping = time.monotonic() + notifier.interval


def _follow_sizes(office: Office, server: RelayServer) -> None:
    """What the mailboxes' services took in their last burst, advertised from now on: a permission granted
    meanwhile (Graph's Mail.ReadWrite) lifts the relay's SIZE without a restart. Unknown until every mailbox
    has delivered once: the size learned at start stays."""
    from xoromail_cli.relay.delivery import event_line
    from xoromail_cli.relay.upstream import MAX_ACCEPTED

    limits = [mailbox.worker.size for mailbox in office.mailboxes]
    if not all(limit.max_size for limit in limits):
        return
    largest = max(limits, key=lambda limit: limit.max_size or 0)
    size = min(largest.max_size or 0, MAX_ACCEPTED)
    if size != server.limits.max_size:
        single = len(limits) == 1
        server.set_max_size(size, largest.service if single else None, largest.hint if single else None)
        _log(event_line("size", max=size, service=largest.service if single else None,
                        mailboxes=None if single else len(limits), reason="the service's limit changed"))


def _learn_sizes(office: Office, server: RelayServer) -> None:
    """Ask each mailbox's service once what it takes. One mailbox: the relay's SIZE and its 552 say it (with
    what lifts it, e.g. Graph's Mail.ReadWrite); several: the largest is advertised, and each login's DATA is
    refused by its own mailbox's limit."""
    from xoromail_cli.relay.delivery import event_line
    from xoromail_cli.relay.upstream import MAX_ACCEPTED, learn_max_size

    if len(office.mailboxes) == 1:
        learn_max_size(office.mailboxes[0].profile, server, _log)
        return
    sizes = []
    for mailbox in office.mailboxes:
        mailbox.worker.size.learn(mailbox.profile, mailbox.profile.timeout, _log)
        sizes.append(mailbox.worker.size.max_size)
    known = [size for size in sizes if size]
    if known and len(known) == len(sizes):
        server.set_max_size(min(max(known), MAX_ACCEPTED))
        _log(event_line("size", max=server.limits.max_size, mailboxes=len(known)))


def _expiry_notes(profile: Profile, tls_cert: Path | None, checked: str | None) -> str:
    """Once a day (the first check at start): what expires soon, with the command that renews it. Returns the
    day checked, so the loop looks again only when the date changes."""
    from datetime import UTC, datetime

    today = datetime.now(UTC).date().isoformat()
    if today == checked:
        return today
    from xoromail_cli.cli.state import current_config_path
    from xoromail_cli.relay.delivery import event_line
    from xoromail_cli.services import expiry

    notes = expiry.notes_for(profile, relay_certificate=tls_cert, config_path=current_config_path())
    for note in expiry.once_a_day(f"{profile.name}.relay", notes):
        _log(event_line("expiring", what=note.kind, expires=note.expires.date().isoformat(), note=note.text()))
    return today

