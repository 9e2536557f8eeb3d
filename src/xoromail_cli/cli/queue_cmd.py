"""`xoromail queue list|status|retry|hold|release|drop`: the relay's spool, for people, scripts and monitoring."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from xoromail_cli.cli.state import state_of

if TYPE_CHECKING:
    from xoromail_cli.profile import Profile
    from xoromail_cli.relay.control import SpoolControl
    from xoromail_cli.relay.spool import Spool
    from xoromail_cli.relay.status import QueueStatus

queue_app = typer.Typer(help="The relay's spool: list, retry or drop the messages it keeps.", no_args_is_help=True,
                        context_settings={"help_option_names": ["-h", "--help"]})
SpoolOption = Annotated[Path | None, typer.Option("--spool", metavar="DIR", file_okay=False,
                                                  help="The spool folder (default: the profile's).")]
IdArgument = Annotated[str | None, typer.Argument(metavar="ID", help="The message's id (`queue list`).")]
AllOption = Annotated[bool, typer.Option("--all", help="Every queued message.")]
EveryProfile = Annotated[bool, typer.Option(
    "--all-profiles", help="Every profile's spool (the relay with several logins; --spool: their base folder).")]


@queue_app.callback()
def _group() -> None:
    """The relay's spool: list, retry or drop the messages it keeps."""


def _profile(ctx: typer.Context) -> Profile:
    from xoromail_cli import config

    state = state_of(ctx)
    return config.load_profile(state.config_path, state.profile_name)


def _spool(ctx: typer.Context, folder: Path | None) -> Spool:
    from xoromail_cli import paths
    from xoromail_cli.relay.spool import Spool

    if folder is not None:
        return Spool(folder)
    return Spool(paths.state_dir() / "relay" / _profile(ctx).name)


def _spools(ctx: typer.Context, folder: Path | None, every: bool) -> list[tuple[str, Spool]]:
    """The spool to act on, or with --all-profiles every profile's that exists (`folder/PROFILE`, or the state
    folder's), each with its profile's name."""
    if not every:
        return [("", _spool(ctx, folder))]
    from xoromail_cli import config
    from xoromail_cli.relay.office import spool_root
    from xoromail_cli.relay.spool import Spool

    names = sorted(config.load(state_of(ctx).config_path).profiles)
    return [(name, Spool(spool_root(folder, name))) for name in names if spool_root(folder, name).is_dir()]


def _holding(spools: list[tuple[str, Spool]], spool_id: str) -> Spool:
    """The spool that keeps the message (of one, that one: its own error says what is missing)."""
    from xoromail_cli.errors import NoInputError
    from xoromail_cli.relay.spool import check_id

    if len(spools) == 1:
        return spools[0][1]
    for _, spool in spools:
        if check_id(spool_id) in spool.ids() or spool_id in spool.ids("failed"):
            return spool
    raise NoInputError(f"no message {spool_id} in any profile's spool", "see `xoromail queue list --all-profiles`")


def _when(stamp: float | None) -> str:
    if stamp is None:
        return "-"
    return f"{datetime.fromtimestamp(stamp, UTC):%Y-%m-%d %H:%M:%S}" if stamp > time.time() else "now"


def _state_name(held: str, in_doubt: bool, where: str) -> str:
    if held:
        return "held (in doubt)" if in_doubt else "held"
    if where == "failed":
        return "failed"
    return "in doubt" if in_doubt else "queued"


def _pause_lines(control: SpoolControl, moment: float) -> list[str]:
    lines = []
    if control.paused(moment):
        lines.append(f"Delivery is paused until {_when(control.paused_until)} UTC: {control.pause_reason}")
    for address, hold in sorted(control.senders.items()):
        if moment < hold.until:
            lines.append(f"Messages from {address} wait until {_when(hold.until)} UTC: {hold.reason}")
    return lines


@queue_app.command("list")
def list_queue(ctx: typer.Context, spool_dir: SpoolOption = None,
               as_json: Annotated[bool, typer.Option("--json", help="One JSON object per message.")] = False,
               every: EveryProfile = False) -> None:
    """Show every message the relay keeps: queued ones first, then those refused for good."""
    from xoromail_cli.cli.console import out

    spools = _spools(ctx, spool_dir, every)
    for name, spool in spools:
        if name and not as_json:
            out().print(f"profile {name} ({spool.root}):", markup=False)
        _list_one(spool, as_json, name)
    if every and not spools and not as_json:
        out().print("No profile has a relay spool yet.")


def _list_one(spool: Spool, as_json: bool, profile: str) -> None:
    from rich.markup import escape

    from xoromail_cli.cli.console import out, print_json_line
    from xoromail_cli.cli.render import print_rows
    from xoromail_cli.relay.control import read_control
    from xoromail_cli.relay.status import due_at

    entries, control, moment = list(spool.entries()), read_control(spool.root), time.time()
    if as_json:
        for entry in entries:
            due = due_at(entry, control, moment)
            print_json_line({**entry.to_json(), "due_at": due, **({"profile": profile} if profile else {})})
        return
    console = out()
    for line in _pause_lines(control, moment):
        console.print(line, markup=False)
    if not entries:
        console.print("The spool is empty.")
        return
    rows = []
    for entry in entries:
        rows.append((entry.id, _state_name(entry.state.held, entry.state.in_doubt, entry.where),
                     f"{datetime.fromtimestamp(entry.received_at, UTC):%Y-%m-%d %H:%M:%S}",
                     escape(", ".join(entry.recipients)), str(entry.state.attempts),
                     _when(due_at(entry, control, moment)),
                     escape(f"{entry.message_id}\n{entry.state.last_reply}".strip())))
    print_rows(None, ("id", "state", "received (UTC)", "to", "tries", "next try (UTC)", "message-id / last reply"),
               rows, console=console)


@queue_app.command("status")
def status(ctx: typer.Context, spool_dir: SpoolOption = None,
           max_age: Annotated[str, typer.Option("--max-age", metavar="DURATION",
                                                help="Exit 75 when the oldest queued message is older.")] = "1h",
           as_json: Annotated[bool, typer.Option("--json", help="One JSON object (a line a profile).")] = False,
           every: Annotated[bool, typer.Option(
               "--all-profiles", help="Every profile's spool (the relay with several logins; --spool: their "
                                      "base folder).")] = False,
           tls_cert: Annotated[Path | None, typer.Option(
               "--tls-cert", metavar="PEM", dir_okay=False,
               help="The relay's TLS certificate: a note 21 days before it expires.")] = None) -> None:
    """Counts, the oldest message's age, a pause and the backlog's time; exit 75 when paused or too old."""
    from xoromail_cli.cli.console import out, print_json_line
    from xoromail_cli.pacing import parse_duration

    limit = parse_duration(max_age).total_seconds()
    reports = _all_reports(ctx, spool_dir, tls_cert) if every else [_one_report(ctx, spool_dir, tls_cert)]
    for report in reports:
        if as_json:
            print_json_line(report.to_json())
        else:
            for line in _status_lines(report):
                out().print(line, markup=False)
    if every and not reports and not as_json:
        out().print("No profile has a relay spool yet.")
    if not all(report.healthy(limit) for report in reports):
        from xoromail_cli.errors import ExitCode

        raise typer.Exit(int(ExitCode.TEMPFAIL))


def _one_report(ctx: typer.Context, spool_dir: Path | None, tls_cert: Path | None) -> QueueStatus:
    from xoromail_cli.relay.status import queue_status

    report = queue_status(_spool(ctx, spool_dir), time.time(), _pace(ctx, spool_dir))
    if spool_dir is None:  # a bare --spool names no profile
        _expiring(report, _profile(ctx), tls_cert, state_of(ctx).config_path)
    return report


def _expiring(report: QueueStatus, profile: Profile, tls_cert: Path | None, config_path: Path) -> None:
    """What the profile depends on that expires soon (services.expiry), among the notes; not a failure. Each
    renewing command names the profile and, when it is not the default file, this run's --config."""
    from xoromail_cli.services import expiry

    for note in expiry.notes_for(profile, relay_certificate=tls_cert, config_path=config_path):
        report.expiring.append(note.to_json())
        report.note(note.text())


def _all_reports(ctx: typer.Context, base: Path | None, tls_cert: Path | None) -> list[QueueStatus]:
    """One status a profile whose spool exists (`base/PROFILE`, or the state folder's)."""
    from xoromail_cli import config
    from xoromail_cli.relay.office import spool_root
    from xoromail_cli.relay.spool import Spool
    from xoromail_cli.relay.status import queue_status
    from xoromail_cli.sending.limits import RunLimits

    reports = []
    for name, profile in sorted(config.load(state_of(ctx).config_path).profiles.items()):
        root = spool_root(base, name)
        if root.is_dir():
            report = queue_status(Spool(root), time.time(), RunLimits.of(profile).per_second)
            report.profile = name
            _expiring(report, profile, tls_cert, state_of(ctx).config_path)
            reports.append(report)
    return reports


def _pace(ctx: typer.Context, spool_dir: SpoolOption) -> float | None:
    """The profile's pace, for a spool whose relay has not written its own yet (none for a bare --spool)."""
    if spool_dir is not None:
        return None
    from xoromail_cli.sending.limits import RunLimits

    return RunLimits.of(_profile(ctx)).per_second


def _status_lines(report: QueueStatus) -> list[str]:
    age = "-" if report.oldest_age_s is None else f"{report.oldest_age_s:.0f} s"
    prefix = f"profile {report.profile}: " if report.profile else ""
    lines = [f"{prefix}queued {report.queued}, held {report.held}, failed {report.failed}, in doubt "
             f"{report.in_doubt}; oldest queued {age}; backlog about {report.eta_s or 0:.0f} s"]
    if report.paused:
        lines.append(f"paused until {report.resumes_at}: {report.pause_reason}")
        if report.pause_hint:
            lines.append(f"  hint: {report.pause_hint}")
    lines.extend(f"note: {note}" for note in report.notes)
    return lines


def _targets(spools: list[tuple[str, Spool]], spool_id: str | None, every: bool,
             verb: str) -> list[tuple[Spool, str]]:
    from xoromail_cli.errors import UsageError
    from xoromail_cli.relay.spool import check_id

    if (spool_id is None) == (not every):
        raise UsageError(f"give one message id or --all to {verb}", f"e.g. xoromail queue {verb} --all")
    if spool_id is not None:
        return [(_holding(spools, spool_id), check_id(spool_id))]
    return [(spool, one) for _, spool in spools for one in spool.ids()]


def _changed(verb: str, changed: list[str], every: bool) -> str:
    return f"{verb} {len(changed)} message(s)" + (f": {', '.join(changed)}" if changed and not every else "")


@queue_app.command("hold")
def hold(ctx: typer.Context, spool_id: IdArgument = None, every: AllOption = False,
         spool_dir: SpoolOption = None, profiles: EveryProfile = False) -> None:
    """Keep a queued message (or all) from delivery until `queue release`, across restarts."""
    from xoromail_cli.cli.console import out

    targets = _targets(_spools(ctx, spool_dir, profiles), spool_id, every, "hold")
    out().print(_changed("held", [one for spool, one in targets if spool.hold(one)], every), markup=False)


@queue_app.command("release")
def release(ctx: typer.Context, spool_id: IdArgument = None, every: AllOption = False,
            spool_dir: SpoolOption = None, profiles: EveryProfile = False) -> None:
    """Let a held message (or all) go: due now; a running relay picks it up within seconds."""
    from xoromail_cli.cli.console import out

    targets = _targets(_spools(ctx, spool_dir, profiles), spool_id, every, "release")
    out().print(_changed("released", [one for spool, one in targets if spool.release(one)], every), markup=False)


@queue_app.command("retry")
def retry(ctx: typer.Context, spool_id: IdArgument = None, spool_dir: SpoolOption = None,
          profiles: EveryProfile = False) -> None:
    """End a pause and try again now: one message (a failed one goes back into the queue), or every queued one."""
    from xoromail_cli.cli.console import out
    from xoromail_cli.relay.control import read_control, write_control
    from xoromail_cli.relay.spool import check_id

    spools = _spools(ctx, spool_dir, profiles)
    for name, spool in spools:
        control = read_control(spool.root)
        ended = _waits(control, time.time())
        if control.clear():
            write_control(spool.root, control)
        for line in ended:
            out().print(line + (f" (profile {name})" if name else ""), markup=False)
    if spool_id is None:
        out().print(f"{_retry_all(spools)} queued message(s) due now", markup=False)
        return
    spool = _holding(spools, spool_id)
    where = spool.retry(check_id(spool_id))
    if where == "queue" and spool.state(spool_id).held:
        out().print(f"{spool_id}: held; `xoromail queue release {spool_id}` lets it go", markup=False)
        return
    out().print(f"{spool_id}: due now" + (" (back from failed)" if where == "failed" else ""), markup=False)


def _waits(control: SpoolControl, moment: float) -> list[str]:
    """What `retry` ends: the mailbox's pause, each From address's hold (those still running)."""
    lines = ["the pause ended"] if control.paused(moment) else []
    return lines + [f"messages from {address} may go again" for address, hold in sorted(control.senders.items())
                    if moment < hold.until]


def _retry_all(spools: list[tuple[str, Spool]]) -> int:
    """Every queued message due now; how many will go (a held one waits for `queue release`)."""
    due = 0
    for _, spool in spools:
        for one in spool.ids():
            spool.retry(one)
            due += not spool.state(one).held
    return due


@queue_app.command("drop")
def drop(ctx: typer.Context, spool_id: Annotated[str, typer.Argument(metavar="ID")],
         spool_dir: SpoolOption = None, profiles: EveryProfile = False) -> None:
    """Remove a message from the spool for good: it is not delivered."""
    from xoromail_cli.cli.console import out
    from xoromail_cli.relay.spool import check_id

    _holding(_spools(ctx, spool_dir, profiles), spool_id).drop(check_id(spool_id))
    out().print(f"{spool_id}: dropped", markup=False)
