"""The docs say what the tool does: no claim that a service type or OAuth is missing, every link to a
heading lands on one, every table is one table, and `log` off a terminal keeps cron.md's promise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, profile_for
from xoromail_cli import config, credentials
from xoromail_cli.cli import app
from xoromail_cli.local.sink import SinkServer, free_port

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md"])


def anchors(path: Path) -> set[str]:
    """GitHub's anchors: headings in lower case, punctuation dropped, spaces as hyphens."""
    found = set()
    for heading in re.findall(r"^#+ (.+)$", path.read_text(), flags=re.M):
        text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
        found.add(text.replace(" ", "-"))
    return found


@pytest.mark.parametrize("claim", ["the only service type", "signs in only with a password",
                                   "has no OAuth sign-in", "This version has no OAuth",
                                   "of xoromail signs in with a password only"])
def test_no_doc_says_the_tool_cannot_do_what_it_does(claim: str) -> None:
    assert [doc.name for doc in DOCS if claim.lower() in doc.read_text().lower()] == []


def test_every_link_to_a_heading_of_another_doc_lands_on_one() -> None:
    broken = []
    for doc in DOCS:
        for target, anchor in re.findall(r"\]\(([\w./-]+\.md)#([\w-]+)\)", doc.read_text()):
            if anchor not in anchors((doc.parent / target).resolve()):
                broken.append(f"{doc.name}: {target}#{anchor}")
    assert broken == []


def test_no_table_is_split_by_a_blank_line() -> None:
    split = []
    for doc in DOCS:
        lines = doc.read_text().splitlines()
        for number in range(1, len(lines) - 1):
            if lines[number] == "" and lines[number - 1].startswith("|") and lines[number + 1].startswith("| "):
                split.append(f"{doc.name}:{number + 1}")
    assert split == []


def test_cron_mdes_microsoft_365_section_names_the_oauth_move() -> None:
    section = (ROOT / "docs" / "cron.md").read_text().split("## Microsoft 365 in January 2027", 1)[1]
    assert "setup --service microsoft365" in section and "skipped" in section


def test_log_off_a_terminal_prints_blocks_without_padding(runner: CliRunner, tls: TLSFiles, config_path: Path,
                                                           isolated_environment: Path) -> None:
    from xoromail_cli.ledger.sqlite import Ledger

    config.save_profile(config_path, profile_for(SinkServer(port=free_port()), tls))
    credentials.store_password("default", PASSWORD)
    with Ledger(isolated_environment / "state" / "xoromail" / "ledger.sqlite3") as ledger:
        ledger.record("billing@company.test", "overdue-invoice", "k", ("ann@client.test",), "<1@company.test>", 1,
                      "sent", "250 OK", service="smtp")
    shown = runner.invoke(app, ["--config", str(config_path), "log"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert "overdue-invoice via smtp  sent" in lines[1] and "  to: ann@client.test" in lines
    assert not any(line != line.rstrip() for line in lines) and "│" not in shown.output


def test_validate_and_config_show_off_a_terminal_are_key_value_lines(
        runner: CliRunner, smtp_server: ServerFactory, tls: TLSFiles, config_path: Path) -> None:
    server = smtp_server()
    config.save_profile(config_path, profile_for(server, tls))
    credentials.store_password("default", PASSWORD)
    checked = runner.invoke(app, ["--config", str(config_path), "validate"], env={"COLUMNS": "200"})
    assert checked.exit_code == 0, checked.output
    lines = checked.stdout.splitlines()  # stderr had the stages while they ran
    assert lines[0] == "Checking profile 'default'"
    assert any(line.startswith("auth: ok; signed in as") for line in lines), lines
    shown = runner.invoke(app, ["--config", str(config_path), "config", "show"], env={"COLUMNS": "200"})
    assert "smtp.host: 127.0.0.1" in shown.output.splitlines()
    for output in (checked.stdout, shown.output):
        assert "│" not in output and "─" not in output
        assert all(line == line.rstrip() for line in output.splitlines())


@pytest.mark.parametrize(("columns", "table"), [("80", False), ("120", True)])
def test_log_at_a_terminal_keeps_cron_mds_columns_promise(tls: TLSFiles, config_path: Path,
                                                         isolated_environment: Path, columns: str,
                                                         table: bool) -> None:
    """cron.md: a table at 100 columns or more (or COLUMNS), one block per message in a narrower terminal."""
    import os

    from tests.support.terminal import Terminal
    from xoromail_cli.ledger.sqlite import Ledger

    config.save_profile(config_path, profile_for(SinkServer(port=free_port()), tls))
    with Ledger(isolated_environment / "state" / "xoromail" / "ledger.sqlite3") as ledger:
        ledger.record("billing@company.test", "overdue-invoice", "k", ("ann@client.test",), "<1@company.test>", 1,
                      "sent", "250 OK", service="smtp")
    term = Terminal(["--config", str(config_path), "log"], {**os.environ, "COLUMNS": columns, "NO_COLOR": "1"})
    assert term.wait() == 0, term.text
    assert ("│" in term.text) is table, term.text
    assert ("  to: ann@client.test" in term.text.replace("\r", "")) is not table, term.text
