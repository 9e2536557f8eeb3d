"""`xoromail relay`: a local SMTP port for the ERP; what it accepts is spooled, then delivered by the profile.

Logs go to stderr one plain line per event (journald keeps them as they are); SIGTERM or Ctrl-C stops
accepting, lets the delivery in progress finish and exits 0 with the rest kept in the spool.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from xoromail_cli.cli.state import state_of


def _log(line: str) -> None:
    from xoromail_cli.cli.console import safe_text

    sys.stderr.write(safe_text(line) + "\n")
    sys.stderr.flush()


def relay(
    ctx: typer.Context,
    listen: Annotated[str, typer.Option("--listen", metavar="HOST:PORT",
                                        help="Where to accept SMTP (anything but loopback needs --tls-cert).")
                      ] = "127.0.0.1:2525",
    user: Annotated[str | None, typer.Option("--user", metavar="NAME",
                                             help="The relay's login for the ERP (kept in the keyring).")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the relay's password from the first line of standard input.")] = False,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", metavar="PEM", exists=True, dir_okay=False,
                                                  help="Certificate (chain) for STARTTLS.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", metavar="PEM", exists=True, dir_okay=False,
                                                 help="The certificate's private key.")] = None,
    rewrite_from: Annotated[bool, typer.Option(
        "--rewrite-from", help="Send a From the mailbox may not use as the mailbox, the original in Reply-To.")
                            ] = False,
    allow_from: Annotated[list[str] | None, typer.Option(
        "--allow-from", metavar="ADDR", help="Another From the mailbox has Send As rights for (repeatable).")
                          ] = None,
    bounce_to: Annotated[str | None, typer.Option(
        "--bounce-to", metavar="ADDR", help="Mail a report here when a message is refused for good.")] = None,
    spool_dir: Annotated[Path | None, typer.Option("--spool", metavar="DIR", file_okay=False,
                                                   help="The spool folder (default: in the state folder).")] = None,
    retry_delay: Annotated[float, typer.Option("--retry-delay", metavar="SECONDS", min=0.01,
                                               help="First wait after a temporary failure; doubles up to 1 h.")
                           ] = 30.0,
    give_up: Annotated[str, typer.Option("--give-up-after", metavar="DURATION",
                                         help="Fail a message still refused for now after this long.")] = "5d",
    rate: Annotated[str | None, typer.Option("--rate", metavar="N/min",
                                             help="At most this many messages (default: the profile's).")] = None,
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
    from xoromail_cli import config, paths
    from xoromail_cli.addresses import parse_address
    from xoromail_cli.pacing import parse_duration
    from xoromail_cli.relay.credential import relay_credential
    from xoromail_cli.relay.delivery import DeliveryOptions, DeliveryWorker, event_line
    from xoromail_cli.relay.handler import RelayHandler
    from xoromail_cli.relay.limits import SessionLimits, parse_networks, recipient_cap
    from xoromail_cli.relay.message import SenderPolicy
    from xoromail_cli.relay.server import RelayServer, parse_listen
    from xoromail_cli.relay.spool import Spool
    from xoromail_cli.relay.tls import start_warnings, tls_files

    host, port = parse_listen(listen)
    files = tls_files(host, tls_cert, tls_key, tls_min)
    context = files.load() if files is not None else None
    allowed_networks = parse_networks(allow_ip)
    state = state_of(ctx)
    profile = config.load_profile(state.config_path, state.profile_name)
    allowed = frozenset(parse_address(a, "--allow-from").lower() for a in allow_from or ())
    options = DeliveryOptions(retry_delay=retry_delay, give_up_after=parse_duration(give_up).total_seconds(),
                              rate=rate, bounce_to=parse_address(bounce_to, "--bounce-to") if bounce_to else None,
                              timeout=profile.timeout)
    password = _stdin_line() if password_stdin else None
    credential, generated = relay_credential(profile.name, user, password, may_show=sys.stderr.isatty())
    if generated:
        _log(f"relay login created and stored in the keyring; shown this once: user {credential.user} "
             f"password {credential.password}")
    spool = Spool(spool_dir or paths.state_dir() / "relay" / profile.name)
    worker = DeliveryWorker(profile, spool, _log, options)
    provider = worker.limits.provider
    limits = SessionLimits(max_connections=max_connections, per_address=max_per_address, login_within=login_timeout,
                           idle=idle_timeout, allow=allowed_networks,
                           max_recipients=recipient_cap(provider.label if provider is not None else None))
    policy = SenderPolicy(profile.email, profile.display_name, allowed, rewrite_from)
    server = RelayServer(RelayHandler(spool, policy, _log, worker.wake), credential, host, port, tls=context,
                         limits=limits, tls_files=files)
    stop, reload = threading.Event(), threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: reload.set())
    server.start()
    worker.start()
    for warning in start_warnings(host, files, limits):
        _log(event_line("warning", text=warning))
    _log(event_line("listening", address=f"{host}:{server.port}", tls="starttls" if context else "none",
                    service=profile.service, mailbox=profile.email, spool=spool.root, queued=len(spool.ids()),
                    recipients=limits.max_recipients, allow=",".join(str(network) for network in limits.allow) or None))
    threading.Thread(target=_learn_size, args=(profile, server), name="relay-size", daemon=True).start()
    while not stop.wait(0.5):
        if reload.is_set():  # SIGHUP: the renewed certificate for new sessions
            reload.clear()
            server.reload_tls()
    _log(event_line("stopping", reason="signal"))
    server.stop()
    worker.stop()
    _log(event_line("stopped", queued=len(spool.ids()), failed=len(spool.ids("failed"))))


def _learn_size(profile: Any, server: Any) -> None:
    """Ask the service once what it takes (SMTP says it in EHLO): new sessions advertise it in SIZE."""
    from xoromail_cli.relay.upstream import learn_max_size

    learn_max_size(profile, server, _log)


def _stdin_line() -> str:
    return sys.stdin.readline().rstrip("\r\n")
