"""`xoromail send`: parse options, hand them to `sending.plan`, and render each result as it comes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from xoromail_cli.cli.completion import event_names
from xoromail_cli.cli.state import state_of, with_global_options

if TYPE_CHECKING:
    from xoromail_cli.sending.results import MessageResult, Summary

def send(
    ctx: typer.Context,
    event: Annotated[str, typer.Option("--event", "-e", metavar="EVENT", autocompletion=event_names,
                                       help="Which email: see `xoromail templates list`.")],
    to: Annotated[list[str] | None, typer.Option("--to", metavar="ADDR", help="Recipient (repeatable).")] = None,
    cc: Annotated[list[str] | None, typer.Option("--cc", metavar="ADDR", help="Copy to (repeatable).")] = None,
    bcc: Annotated[list[str] | None, typer.Option("--bcc", metavar="ADDR", help="Blind copy (repeatable).")] = None,
    reply_to: Annotated[str | None, typer.Option("--reply-to", metavar="ADDR",
                                                 help="Reply-To (default: the profile's reply_to).")] = None,
    var: Annotated[list[str] | None, typer.Option("--var", metavar="KEY=VALUE",
                                                  help="A template variable (repeatable; wins over --data).")] = None,
    data: Annotated[str | None, typer.Option("--data", metavar="FILE|-",
                                             help="JSON object of variables; - reads stdin.")] = None,
    attach: Annotated[list[Path] | None, typer.Option("--attach", metavar="FILE",
                                                      help="Attach a file (repeatable).")] = None,
    subject: Annotated[str | None, typer.Option("--subject", metavar="TEXT",
                                                help="Use this subject instead of the template's.")] = None,
    batch: Annotated[Path | None, typer.Option("--batch", metavar="FILE",
                                               help="CSV (header row) or JSON Lines: one message per row.")] = None,
    attach_dir: Annotated[Path | None, typer.Option(
        "--attach-dir", metavar="DIR",
        help="With --batch: the folder the attach column's files come from (default: the batch file's).")] = None,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid",
                                               help="Report bad batch rows and send the rest.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Render and print; connect to nothing.")] = False,
    pending: Annotated[bool, typer.Option(
        "--pending", help="With --dry-run: only what a re-run would send, as the sent-ledger says.")] = False,
    outbox: Annotated[Path | None, typer.Option("--outbox", metavar="DIR",
                                                help="Write .eml files here instead of sending.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(
        "--idempotency-key", metavar="TEMPLATE",
        help="What makes a message unique, e.g. '{invoice_number}-{due_date}' (default: the event's key).")] = None,
    resend: Annotated[bool, typer.Option("--resend", help="Send even if the ledger says it was sent.")] = False,
    resend_after: Annotated[str | None, typer.Option(
        "--resend-after", metavar="DURATION", help="Send again once the last send is this old, e.g. 7d.")] = None,
    retries: Annotated[int, typer.Option("--retries", min=0, max=20,
                                         help="Retries for temporary failures.")] = 3,
    retry_delay: Annotated[float, typer.Option("--retry-delay", metavar="SECONDS", min=0.0, max=600.0,
                                               help="First retry's delay; doubles each time.")] = 2.0,
    no_retry_in_doubt: Annotated[bool, typer.Option(
        "--no-retry-in-doubt", help="A message whose answer was lost after its data waits for the next run "
        "instead of going again now (never a duplicate, maybe a day late).")] = False,
    rate: Annotated[str | None, typer.Option("--rate", metavar="N/min",
                                             help="Pace messages (default: profile's rate or the provider's).")] = None,
    connections: Annotated[int | None, typer.Option(
        "--connections", metavar="N", min=1, max=10,
        help="Send a batch over up to N connections at once (default: the profile's, else 1).")] = None,
    wait: Annotated[float, typer.Option("--wait", metavar="SECONDS", min=0.0, max=86400.0,
                                        help="Wait this long for another run of this profile to finish.")] = 0.0,
    timeout: Annotated[float | None, typer.Option("--timeout", metavar="SECONDS", min=0.1, max=3600.0,
                                                  help="Network timeout.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per message on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
) -> None:
    """Send an event email to one recipient, or one per row of a batch file."""
    from xoromail_cli import config
    from xoromail_cli.compose import events
    from xoromail_cli.sending import batch as batches
    from xoromail_cli.sending import plan as dispatch

    _refuse_conflicts(dry_run=dry_run, outbox=outbox, resend=resend, resend_after=resend_after, pending=pending)
    spec = events.get_event(event)
    state = state_of(ctx)
    profile = config.load_profile(state.config_path, state.profile_name)
    variables: dict[str, Any] = batches.load_data(data, sys.stdin) if data else {}
    variables.update(batches.parse_var(item) for item in var or [])
    plan = dispatch.plan_send(profile, spec, variables=variables, to=to or [], cc=cc or [], bcc=bcc or [],
                              attach=[str(p) for p in attach or []], reply_to=reply_to, subject=subject,
                              batch=batch, skip_invalid=skip_invalid, attach_dir=attach_dir)
    options = dispatch.SendOptions(dry_run=dry_run, outbox=outbox, retries=retries, retry_delay=retry_delay,
                                   rate=rate, wait=wait, timeout=timeout, subject=subject,
                                   key_template=idempotency_key, resend=resend, resend_after=resend_after,
                                   retry_in_doubt=not no_retry_in_doubt, preview_pending=pending,
                                   connections=connections)
    printer = _Printer(as_json=as_json, quiet=quiet, single=not plan.is_batch, dry_run=dry_run)
    with printer.progress(plan.total if plan.is_batch else 0):
        summary = dispatch.execute(plan, options, on_result=printer.show,
                                   on_warning=lambda text: _warn(f"warning: {text}"))
    printer.finish(spec.name, summary)
    if not dry_run and outbox is None:
        _expiry_notes(profile, summary.aborted.message if summary.aborted is not None else None, state.config_path)
    raise typer.Exit(summary.exit_code)


def _expiry_notes(profile: Any, failure: str | None, config_path: Path) -> None:
    """Once a day per profile, on stderr (cron's mail): what expires soon and the command that renews it (with
    this run's --config)."""
    from xoromail_cli.services import expiry

    expiry.learn_from_error(profile, failure)
    for note in expiry.once_a_day(profile.name, expiry.notes_for(profile, config_path=config_path)):
        _warn(f"note: {note.text()}")


def _refuse_conflicts(*, dry_run: bool, outbox: Path | None, resend: bool, resend_after: str | None,
                      pending: bool) -> None:
    """Options that contradict each other: say so rather than let one silently win."""
    from xoromail_cli.errors import UsageError

    if pending and not dry_run:
        raise UsageError("--pending only goes with --dry-run", "preview what a re-run would send: --dry-run --pending")

    if dry_run and outbox is not None:
        raise UsageError("--dry-run and --outbox exclude each other",
                         "--dry-run prints the messages; --outbox writes them as .eml files: choose one")
    if resend and resend_after is not None:
        raise UsageError("--resend and --resend-after exclude each other",
                         "--resend sends again whatever the ledger says; --resend-after only once the last "
                         "send is that old: choose one")


def _warn(text: str) -> None:
    from rich.markup import escape

    from xoromail_cli.cli.console import err

    err().print(f"[yellow]{escape(text)}[/]")


class _Printer:
    """Per-message output: JSON lines for machines, a line per notable message for people."""

    def __init__(self, *, as_json: bool, quiet: bool, single: bool, dry_run: bool) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.single = single
        self.dry_run = dry_run
        self._bar: Any = None
        self._task: Any = None

    def progress(self, total: int) -> Any:
        from contextlib import nullcontext

        from xoromail_cli.cli.console import err

        if not total or self.quiet or self.as_json:  # decided before Rich is imported: one message needs none
            return nullcontext()
        console = err()
        if not console.is_terminal:
            return nullcontext()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                             TimeRemainingColumn(), console=console, transient=True)
        self._task = self._bar.add_task("sending", total=total)
        return self._bar

    def show(self, result: MessageResult) -> None:
        from xoromail_cli.cli.console import err, out, print_json_line

        if self._bar is not None:
            self._bar.advance(self._task)
        problem = result.status in ("failed", "temporary", "partial", "invalid", "interrupted")
        if self.as_json:
            print_json_line(result.to_json())
            if problem:  # `--quiet --json > file` from cron: the mail still says who failed
                self._line(err(), result)
            return
        if result.status == "dry-run":
            if not self.quiet:
                self._preview(result)
            return
        if self.quiet and not problem:
            return
        if not problem and result.status in ("sent", "written") and not self.single:
            return
        target = err() if problem else out()
        if self._bar is not None and target.is_terminal:  # above the bar, never glued to it
            target = self._bar.console
        self._line(target, result, hint=bool(result.hint and (problem or self.single)))

    @staticmethod
    def _line(console: Any, result: MessageResult, *, hint: bool = True) -> None:
        """`status row N, recipients: reply`, and the hint below it."""
        from rich.markup import escape

        subject = ", ".join(filter(None, (f"row {result.row}" if result.row else "", ", ".join(result.recipients))))
        style = {"sent": "green", "written": "green", "skipped": "cyan", "failed": "red", "temporary": "yellow",
                 "invalid": "red", "interrupted": "yellow", "partial": "yellow"}.get(result.status, "white")
        line = f"[{style}]{result.status}[/] {escape(subject)}: {escape(result.reply)}"
        console.print(line, soft_wrap=True)
        if hint and result.hint:
            console.print(f"  [yellow]hint:[/] {escape(with_global_options(result.hint))}", soft_wrap=True)

    def _preview(self, result: MessageResult) -> None:
        assert result.envelope is not None and result.rendered is not None
        head = result.envelope.data.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
        shown = [f"Subject: {result.rendered.subject}" if line.startswith("Subject:") else _readable(line)
                 for line in head.replace("\r\n ", " ").split("\r\n")
                 if not line.lower().startswith(("content-", "mime-"))]
        shown.append(f"(envelope recipients: {', '.join(result.envelope.recipients)})")
        from xoromail_cli.cli.console import safe_text, write_stdout

        write_stdout(safe_text("\n".join(shown) + "\n\n" + result.rendered.text.rstrip("\n")) + "\n" + "-" * 72 + "\n")

    def finish(self, event: str, summary: Summary) -> None:
        from xoromail_cli.cli.console import err, out
        from xoromail_cli.cli.render import report_error

        if summary.aborted is not None:  # what stopped the run; with --json also a JSON error object on stdout
            report_error(summary.aborted, self.as_json)
        if self.quiet and summary.exit_code == 0:
            return
        line = f"{event}: {summary.line()}" + (_rerun(int(summary.exit_code)) if summary.not_attempted else "")
        (err() if self.as_json or summary.exit_code else out()).print(line, soft_wrap=True, highlight=False)


def _rerun(code: int) -> str:
    """What finishes a run that left rows: running it again, or first fixing what stopped it (a setting, a
    refused sign-in, TLS: a re-run alone stops the same way)."""
    later = (0, 69, 75, 130, 143)  # nothing wrong, the server away, temporary, Ctrl-C, SIGTERM
    return "; re-run to finish" if code in later else "; fix the error above, then re-run to finish"


def _readable(line: str) -> str:
    """A header line as a person reads it: encoded words (`=?utf-8?q?J=C3=B6rg?=`) decoded, e.g. the display
    names of From and To; the message itself keeps them encoded."""
    if "=?" not in line:
        return line
    from email.header import decode_header, make_header

    name, _, value = line.partition(":")
    try:
        return f"{name}: {make_header(decode_header(value.strip()))}"
    except (ValueError, LookupError):  # a malformed encoded word: shown as it is
        return line
