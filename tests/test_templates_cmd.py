from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from xoromail_cli.cli import app
from xoromail_cli.compose.events import EVENTS


def test_list_shows_every_event_and_its_variables(runner: CliRunner) -> None:
    result = runner.invoke(app, ["templates", "list", "--json"])
    data = json.loads(result.stdout)
    assert [item["event"] for item in data] == list(EVENTS)
    assert data[0]["required"] == ["customer_name", "invoice_number", "amount_due", "due_date"]
    table = runner.invoke(app, ["templates", "list"])
    assert "packing-slip" in table.output and "Auto email" in table.output


def test_show_includes_sources_and_marks_overrides(runner: CliRunner, tmp_path: Path, config_path: Path) -> None:
    builtin = json.loads(runner.invoke(app, ["templates", "show", "ship-confirmation", "--json"]).stdout)
    assert builtin["templates"]["subject.txt"]["custom"] is False
    assert "{{ order_number }}" in builtin["templates"]["subject.txt"]["source"]
    custom_dir = tmp_path / "config" / "xoromail" / "templates" / "ship-confirmation"
    custom_dir.mkdir(parents=True)
    (custom_dir / "subject.txt").write_text("Shipped {{ order_number }}")
    custom = json.loads(runner.invoke(app, ["templates", "show", "ship-confirmation", "--json"],
                                      env={"XDG_CONFIG_HOME": str(tmp_path / "config")}).stdout)
    assert custom["templates"]["subject.txt"]["custom"] is True


def test_show_unknown_event_exits_2(runner: CliRunner) -> None:
    assert runner.invoke(app, ["templates", "show", "nope"]).exit_code == 2


def test_export_writes_all_templates_and_keeps_edits(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "mine"
    first = runner.invoke(app, ["templates", "export", str(target)])
    assert first.exit_code == 0 and f"Wrote {len(EVENTS) * 3} file(s)" in first.output
    edited = target / "order-release" / "subject.txt"
    edited.write_text("My wording")
    second = runner.invoke(app, ["templates", "export", str(target)])
    assert "kept 27 existing" in second.output and edited.read_text() == "My wording"
    runner.invoke(app, ["templates", "export", str(target), "--force"])
    assert edited.read_text() != "My wording"
