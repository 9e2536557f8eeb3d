"""Reports as Rich tables for people; the JSON twins live beside the data (`to_json`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xoromail_cli.cli.console import err, out

if TYPE_CHECKING:
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
