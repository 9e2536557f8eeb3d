"""Reports as Rich tables for people; the JSON twins live beside the data (`to_json`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xoromail_cli.cli.console import err, out

if TYPE_CHECKING:
    from xoromail_cli.domain.checks import DomainReport
    from xoromail_cli.errors import XoromailError
    from xoromail_cli.validate import ValidationReport


def print_error(error: XoromailError) -> None:
    from rich.markup import escape

    console = err()
    console.print(f"[bold red]error:[/] {escape(error.message)}")
    if error.hint:
        console.print(f"[yellow]hint:[/] {escape(error.hint)}")


def print_validation(report: ValidationReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"Checking profile {report.profile!r}", title_justify="left", expand=False)
    table.add_column("stage", style="bold")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for stage in report.stages:
        mark = "[green]ok[/]" if stage.ok else "[bold red]FAILED[/]"
        table.add_row(stage.name, mark, escape(stage.detail))
    for name in report.skipped:
        table.add_row(name, "[dim]not reached[/]", "")
    console = out()
    console.print(table)
    failed = report.failed
    if failed is None:
        console.print("[green]All checks passed.[/]")
        for note in report.notes:
            console.print(f"[yellow]note:[/] {escape(note)}")
        return
    console.print(f"[bold red]Failed at stage {failed.name!r}:[/] {escape(failed.detail)}")
    if failed.hint:
        console.print(f"[yellow]hint:[/] {escape(failed.hint)}")
    for note in report.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")


def print_domain_report(report: DomainReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    marks = {"ok": "[green]ok[/]", "warn": "[yellow]warning[/]", "fail": "[bold red]FAILED[/]"}
    sender = f", sending with {report.sender}" if report.sender else ""
    table = Table(title=f"Checking domain {report.domain}{sender}", title_justify="left", expand=False)
    table.add_column("check", style="bold")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in report.checks:
        detail = escape(check.detail) + (f"\n[yellow]hint:[/] {escape(check.hint)}" if check.hint else "")
        table.add_row(escape(check.name), marks[check.status], detail)
    console = out()
    console.print(table)
    failed = [check.name for check in report.checks if check.status == "fail"]
    if failed:
        console.print(f"[bold red]Will hurt delivery:[/] {escape(', '.join(dict.fromkeys(failed)))}")
    else:
        console.print("[green]Nothing in DNS stands in the way of delivery.[/]")
