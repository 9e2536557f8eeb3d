"""Reports as Rich tables for people; the JSON twins live beside the data (`to_json`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from xoromail_cli.cli.console import err, out

if TYPE_CHECKING:
    from rich.console import Console

    from xoromail_cli.domain.checks import DomainReport
    from xoromail_cli.errors import XoromailError
    from xoromail_cli.validate import ValidationReport


def print_error(error: XoromailError) -> None:
    from rich.markup import escape

    from xoromail_cli.cli.state import with_global_options

    console = err()
    console.print(f"[bold red]error:[/] {escape(error.message)}")
    if error.hint:
        console.print(f"[yellow]hint:[/] {escape(with_global_options(error.hint))}")


def report_error(error: XoromailError, as_json: bool) -> None:
    """An error on stderr, and with --json also as a JSON object on stdout (a script reads stdout only)."""
    print_error(error)
    if as_json:
        from xoromail_cli.cli.console import print_json_line
        from xoromail_cli.cli.state import with_global_options

        print_json_line({"ok": False, "error": error.message,
                         "hint": with_global_options(error.hint) if error.hint else error.hint,
                         "exit_code": int(error.exit_code)})


def print_rows(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[str]], *,
               show_header: bool = True, console: Console | None = None) -> None:
    """A table in a terminal. Off one (cron mail, a pipe, a log) `key: value` lines without padding, which read
    well in any mail client: the first cell is the key, the others follow it ("; " between them, each named by
    its column when there are more than three). Cells hold Rich markup; a cell's lines are joined with "; "."""
    from rich.table import Table

    console = console or out()
    if console.is_terminal:
        table = Table(title=title, title_justify="left", expand=False, show_header=show_header)
        for number, header in enumerate(headers):
            table.add_column(header, style="bold" if number == 0 else None, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    if title:
        console.print(title)
    named = len(headers) > 3
    for key, *cells in rows:
        values = [f"{header} {cell}" if named else cell
                  for header, cell in zip(headers[1:], cells, strict=True) if cell.strip()]
        console.print(f"{key}: {'; '.join(values)}".replace("\n", "; ").rstrip())


def print_validation(report: ValidationReport) -> None:
    from rich.markup import escape

    rows = [(stage.name, "[green]ok[/]" if stage.ok else "[bold red]FAILED[/]", escape(stage.detail))
            for stage in report.stages]
    rows += [(name, "[dim]not reached[/]", "") for name in report.skipped]
    print_rows(f"Checking profile {report.profile!r}", ("stage", "result", "detail"), rows)
    console = out()
    failed = report.failed
    if failed is None:
        console.print("[green]All checks passed.[/]")
        _print_notes(report.notes)
        return
    console.print(f"[bold red]Failed at stage {failed.name!r}:[/] {escape(failed.detail)}")
    if failed.hint:
        from xoromail_cli.cli.state import with_global_options

        console.print(f"[yellow]hint:[/] {escape(with_global_options(failed.hint))}")
    _print_notes(report.notes)


def _print_notes(notes: list[str]) -> None:
    """The report's notes; a command one quotes (an expiry's renewal) carries this run's --config and --profile."""
    from rich.markup import escape

    from xoromail_cli.cli.state import with_global_options

    for note in notes:
        out().print(f"[yellow]note:[/] {escape(with_global_options(note))}")


def report_json(report: ValidationReport) -> dict[str, object]:
    """The report's JSON with its hint's suggested command carrying this run's --config and --profile."""
    from xoromail_cli.cli.state import with_global_options

    data = report.to_json()
    if data.get("hint"):
        data["hint"] = with_global_options(str(data["hint"]))
    data["notes"] = [with_global_options(note) for note in report.notes]
    return data


def print_domain_report(report: DomainReport) -> None:
    from rich.markup import escape

    marks = {"ok": "[green]ok[/]", "warn": "[yellow]warning[/]", "fail": "[bold red]FAILED[/]"}
    sender = f", sending with {report.sender}" if report.sender else ""
    rows = [(escape(check.name), marks[check.status],
             escape(check.detail) + (f"\n[yellow]hint:[/] {escape(check.hint)}" if check.hint else ""))
            for check in report.checks]
    print_rows(f"Checking domain {report.domain}{sender}", ("check", "result", "detail"), rows)
    console = out()
    failed = [check.name for check in report.checks if check.status == "fail"]
    if failed:
        console.print(f"[bold red]Will hurt delivery:[/] {escape(', '.join(dict.fromkeys(failed)))}")
    else:
        console.print("[green]Nothing in DNS stands in the way of delivery.[/]")
