"""What one `xoromail send` loads: a real process sends one message to a real server and lists `sys.modules`.

A process that sends one message (cron, an ERP calling the CLI per document) pays for every module it imports;
docs/performance.md measures it against swaks. These tests pin what that path may load, so a new import on it
is a decision, not an accident. No wall time is measured here (benchmarks/one_message.py does that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, configure
from tests.support.send_probe import PROBE, SEND

THIRD_PARTY_ALLOWED = {"typer", "annotated_doc", "shellingham", "markupsafe", "platformdirs"}
"""Typer and what it imports itself; markupsafe escapes HTML parts (without Jinja2); platformdirs finds folders."""

NEVER = ("jinja2", "rich", "pydantic", "pydantic_core", "keyring", "aiosmtpd", "requests", "urllib3", "exchangelib",
         "msal", "google", "psycopg", "dns", "checkdmarc", "trustme", "cryptography", "asyncio", "concurrent",
         "http", "logging", "xml", "multiprocessing")
"""Libraries one message needs none of: Jinja2 only for templates beyond plain substitution, Rich only for a
terminal or a message to show, keyring only when the password is stored there."""

RICH_NEVER = ("rich.table", "rich.progress", "rich.live", "rich.prompt", "rich.markdown", "rich.syntax",
              "rich.traceback")
"""What Rich may print the `sent …` line with, but not: tables, progress bars, prompts, Markdown (the issue: "no
Rich tables" on the send path)."""

XOROMAIL_NEVER = ("xoromail_cli.cli.wizard", "xoromail_cli.cli.setup_cmd", "xoromail_cli.cli.validate_cmd",
                  "xoromail_cli.relay", "xoromail_cli.local", "xoromail_cli.domain", "xoromail_cli.validate",
                  "xoromail_cli.provisioning", "xoromail_cli.services.exchange", "xoromail_cli.services.google",
                  "xoromail_cli.services.microsoft365", "xoromail_cli.services.http", "xoromail_cli.services.outbox",
                  "xoromail_cli.ledger.postgres", "xoromail_cli.compose.export")


def loaded_by_send(tmp_path: Path, arguments: list[str], env: dict[str, str]) -> list[str]:
    listing = tmp_path / "modules.json"
    completed = subprocess.run([sys.executable, "-c", PROBE, str(listing), *arguments], env=env,
                               capture_output=True, text=True, check=False, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return list(json.loads(listing.read_text(encoding="utf-8")))


def third_party(modules: list[str]) -> set[str]:
    tops = {name.split(".")[0] for name in modules}
    return {top for top in tops if top not in sys.stdlib_module_names and not top.startswith("_")
            and top != "xoromail_cli"}


def under(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(name for name in modules if name.startswith(prefixes)
                  and any(name == p or name.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("quiet", [True, False])
def test_one_message_with_the_password_in_the_environment_loads_only_what_it_needs(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path, quiet: bool) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls)
    env = {**os.environ, "XOROMAIL_PASSWORD": PASSWORD}
    modules = loaded_by_send(tmp_path, [*base, *SEND, *(["--quiet"] if quiet else [])], env)
    assert len(server.messages) == 1
    assert third_party(modules) - {"rich", "pygments", "markdown_it", "mdurl"} <= THIRD_PARTY_ALLOWED
    never = NEVER if quiet else tuple(name for name in NEVER if name != "rich")  # "sent …" is printed by Rich
    assert under(modules, never) == []
    assert under(modules, RICH_NEVER) == []
    assert under(modules, XOROMAIL_NEVER) == []
    if quiet:
        assert third_party(modules) <= THIRD_PARTY_ALLOWED


def test_one_message_with_the_password_in_the_keyring_adds_only_keyring(
        smtp_server: ServerFactory, tls: TLSFiles, config_path: Path, tmp_path: Path,
        isolated_environment: Path) -> None:
    server = smtp_server()
    base = configure(config_path, server, tls)
    modules = loaded_by_send(tmp_path, [*base, *SEND, "--quiet"], dict(os.environ))
    assert len(server.messages) == 1
    assert under(modules, ("keyring",)) != []
    keyrings_own = ("keyring", "logging", "http", "concurrent")  # keyring's jaraco helpers load urllib.request
    assert under(modules, tuple(name for name in NEVER if name not in keyrings_own)) == []
    assert under(modules, XOROMAIL_NEVER) == []


def test_the_probe_sees_a_module_the_path_loads() -> None:
    """The listing cannot pass vacuously: modules the send path needs are in it."""
    assert under(["typer", "typer.main", "xoromail_cli.sending.plan", "jinja2x"], ("typer", "jinja2")) == [
        "typer", "typer.main"]
    assert third_party(["typer.main", "_distutils_hack", "xoromail_cli.cli", "json"]) == {"typer"}
