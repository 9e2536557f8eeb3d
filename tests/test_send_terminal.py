"""`send` at a terminal: result lines start lines of their own above the progress bar, never glued to it, and
`--dry-run` shows headers as a person reads them (display names decoded)."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

from tests.support.common import ServerFactory, TLSFiles, configure
from tests.support.samples import csv_batch
from tests.support.terminal import Terminal
from xoromail_cli.local.sink import CaptureHandler

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Unhurried(CaptureHandler):
    """Takes a moment per message, so the progress bar is drawn between results."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0.15)
        return str(await super().handle_DATA(server, session, envelope))


def test_skipped_lines_never_follow_the_progress_bar_on_its_line(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path) -> None:
    base = configure(config_path, smtp_server(handler=Unhurried()), tls)
    rows = csv_batch(tmp_path / "rows.csv", 4)
    command = [*base, "send", "--event", "overdue-invoice", "--batch", str(rows)]
    assert Terminal(command, dict(os.environ)).wait() == 0
    with rows.open("a", encoding="utf-8") as more:
        more.write("new@client.test,New,INV-9,9.00,2026-11-01\n")
    again = Terminal(command, dict(os.environ))
    assert again.wait() == 0, again.text
    plain = ANSI.sub("", again.text)
    starts = [match.start() for match in re.finditer(r"skipped row", plain)]
    assert len(starts) == 4, plain
    assert all(plain[start - 1] in "\r\n" for start in starts), plain


def test_dry_run_shows_display_names_decoded(runner: Any, tls: TLSFiles, config_path: Path) -> None:
    from xoromail_cli.cli import app

    base = configure(config_path, None, tls, display_name="Jörg Müller Buchhaltung")
    shown = runner.invoke(app, [*base, "send", "--event", "overdue-invoice", "--to", "zoe@client.test",
                                "--var", "customer_name=Zoë", "--var", "invoice_number=INV-1", "--var",
                                "amount_due=1", "--var", "due_date=2026-11-01", "--dry-run"])
    assert shown.exit_code == 0, shown.output
    assert "From: Jörg Müller Buchhaltung <billing@company.test>" in shown.output, shown.output
    assert "=?utf-8?" not in shown.output.lower()
