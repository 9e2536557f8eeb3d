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
from typing import TYPE_CHECKING, Annotated

import typer

from xoromail_cli.cli.relay_users_cmd import users_app
from xoromail_cli.cli.state import state_of

if TYPE_CHECKING:
    import ssl

    from xoromail_cli.relay.delivery import DeliveryOptions
    from xoromail_cli.relay.office import Office

relay_app = typer.Typer(no_args_is_help=False, context_settings={"help_option_names": ["-h", "--help"]})
relay_app.add_typer(users_app, name="users")


def _log(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@relay_app.callback(invoke_without_command=True)
def relay(
    ctx: typer.Context,
    listen: Annotated[str, typer.Option("--listen", metavar="HOST:PORT",
                                        help="Where to accept SMTP (anything but loopback needs --tls-cert).")
                      ] = "127.0.0.1:2525",
    user: Annotated[str | None, typer.Option(
        "--user", metavar="NAME", help="One login only, for one profile (kept in the keyring); without it, every "
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
) -> None:
    """Accept the ERP's mail on a local SMTP port and deliver it through the profile's service."""
    if ctx.invoked_subcommand is not None:
        return
    from xoromail_cli.addresses import parse_address
    from xoromail_cli.pacing import parse_duration
    from xoromail_cli.relay.delivery import DeliveryOptions
    from xoromail_cli.relay.server import parse_listen, tls_context

    host, port = parse_listen(listen)
    context = tls_context(host, tls_cert, tls_key)
    options = DeliveryOptions(retry_delay=retry_delay, give_up_after=parse_duration(give_up).total_seconds(),
                              rate=rate, bounce_to=parse_address(bounce_to, "--bounce-to") if bounce_to else None,
                              retry_in_doubt=not no_retry_in_doubt)
    one_login = user is not None or password_stdin or profile_name is not None
    if one_login:
        office = _one_login(ctx, profile_name, user, password_stdin, allow_from or [], rewrite_from, spool_dir,
                            options)
    else:
        office = _every_login(ctx, allow_from or [], rewrite_from, spool_dir, options)
    _serve(office, host, port, context)


def _one_login(ctx: typer.Context, profile_name: str | None, user: str | None, password_stdin: bool,
               allow_from: list[str], rewrite: bool, spool_dir: Path | None, options: DeliveryOptions) -> Office:
    from xoromail_cli import config, paths
    from xoromail_cli.addresses import parse_address
    from xoromail_cli.relay.credential import relay_credential
    from xoromail_cli.relay.message import SenderPolicy
    from xoromail_cli.relay.office import Office, open_mailbox
    from xoromail_cli.relay.server import Route
    from xoromail_cli.relay.spool import Spool
    from xoromail_cli.relay.users import LoginTable

    state = state_of(ctx)
    profile = config.load_profile(state.config_path, paths.profile_name(profile_name or state.profile_option))
    allowed = frozenset(parse_address(a, "--allow-from").lower() for a in allow_from)
    password = _stdin_line() if password_stdin else None
    credential, generated = relay_credential(profile.name, user, password, may_show=sys.stderr.isatty())
    if generated:
        _log(f"relay login created and stored in the keyring; shown this once: user {credential.user} "
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
    return open_office(state.config_path, logins, options, _log, rewrite=rewrite, spool_base=spool_dir)


def _serve(office: Office, host: str, port: int, context: ssl.SSLContext | None) -> None:
    """Listen, deliver, and stop on SIGTERM or Ctrl-C with the spool kept; systemd is told (Type=notify)."""
    from xoromail_cli.relay.delivery import event_line
    from xoromail_cli.relay.notify import Notifier
    from xoromail_cli.relay.server import RelayHandler, RelayServer

    first = office.mailboxes[0]
    handler = RelayHandler(first.spool, next(iter(office.routes.values())).policy, _log, first.worker.wake,
                           routes=office.routes)
    server = RelayServer(handler, office.logins, host, port, tls=context)
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    server.start()
    for mailbox in office.mailboxes:
        mailbox.worker.start()
    for mailbox in office.mailboxes:
        _log(event_line("listening", address=f"{host}:{server.port}", tls="starttls" if context else "none",
                        service=mailbox.profile.service, mailbox=mailbox.profile.email, spool=mailbox.spool.root,
                        queued=len(mailbox.spool.ids()), logins=len(office.routes)))
    notifier = Notifier()
    notifier.ready(f"listening on {host}:{server.port} for {len(office.routes)} login(s)")
    tick, next_ping = min(1.0, notifier.interval or 1.0), 0.0
    while not stop.wait(tick):
        alive = server.alive and all(mailbox.worker.alive for mailbox in office.mailboxes)
        if notifier.interval is not None and alive and time.monotonic() >= next_ping:
            notifier.watchdog()  # every half WatchdogSec while every part works: else systemd restarts the relay
            next_ping = time.monotonic() + notifier.interval
    _log(event_line("stopping", reason="signal"))
    notifier.stopping()
    server.stop()
    for mailbox in office.mailboxes:
        mailbox.worker.stop()
    for mailbox in office.mailboxes:
        _log(event_line("stopped", queued=len(mailbox.spool.ids()), failed=len(mailbox.spool.ids("failed")),
                        mailbox=mailbox.profile.email))


def _stdin_line() -> str:
    return sys.stdin.readline().rstrip("\r\n")
