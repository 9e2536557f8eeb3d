"""`templates list` shows what docs/events.md says it shows, and a narrow terminal never cuts a name."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.support.cli import SCRIPT
from xoromail_cli.compose.events import EVENTS

DOCS = Path(__file__).resolve().parent.parent / "docs" / "events.md"


def _list_at(columns: int) -> str:
    result = subprocess.run([SCRIPT, "templates", "list"], capture_output=True, text=True, timeout=60, check=True,
                            env={**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"})
    return result.stdout


def test_at_60_columns_every_variable_name_is_whole() -> None:
    words = set(re.findall(r"[\w-]+", _list_at(60)))
    for event in EVENTS.values():
        for name in (event.name, *event.required, *event.optional, *event.natural_key):
            assert name in words, f"{name} is cut or missing at 60 columns"


def test_it_shows_the_columns_the_docs_table_names() -> None:
    header = next(line for line in DOCS.read_text(encoding="utf-8").splitlines() if line.startswith("| Event |"))
    assert header == ("| Event | ERP name | Purpose | Required variables | Optional variables | Unique by "
                      "| Attachment |")
    text = " ".join(_list_at(100).split())
    for event in EVENTS.values():
        assert f"{event.name} — {event.erp_name}" in text
        assert event.purpose in text
        assert f"unique by: {', '.join(event.natural_key)} + recipients" in text
    assert "attachment: required (at least one file)" in text
