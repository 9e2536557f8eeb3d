"""The engine's doors: `validate` and the relay come in through `ledger.open_for_sending` and `sending.limits`,
never through the send planner, so validating loads none of `sending/` and the relay none of the batch level.

An AST walk (imports at any depth, functions and TYPE_CHECKING blocks included) says where; a real `validate`
run in a fresh interpreter proves what is loaded.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.common import PASSWORD, ServerFactory, TLSFiles, configure

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "xoromail_cli"

BATCH_LEVEL = ("xoromail_cli.sending.plan", "xoromail_cli.sending.sender", "xoromail_cli.sending.batch",
               "xoromail_cli.sending.rows", "xoromail_cli.sending.parallel", "xoromail_cli.compose.render",
               "xoromail_cli.compose.events")
"""The send planner and the batch level: events, templates, rows. The envelope level never needs them."""
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "validate.py": ("xoromail_cli.sending", "xoromail_cli.ledger.postgres", "xoromail_cli.ledger.sqlite",
                    "xoromail_cli.ledger.location"),
    "relay/": BATCH_LEVEL,
    "sending/deliverer.py": BATCH_LEVEL,
    "sending/inflight.py": BATCH_LEVEL,
    "sending/limits.py": BATCH_LEVEL,
    "ledger/": ("xoromail_cli.sending",),
}
"""File or folder (relative to the package) → the modules (and their submodules) it may not import (`validate`
reaches the ledger through the package's doors, `ledger.is_shared` and `ledger.prove_shared`)."""


def package_imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every import of the package's own modules in the file, at any depth."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]  # `from x import mod`
    return [(module, line) for module, line in found if module.startswith("xoromail_cli.")]


def inside(module: str, banned: str) -> bool:
    return module == banned or module.startswith(banned + ".")


@pytest.mark.parametrize("where", sorted(FORBIDDEN))
def test_validate_and_the_relay_never_import_the_send_planner(where: str) -> None:
    files = sorted((PACKAGE / where).rglob("*.py")) if where.endswith("/") else [PACKAGE / where]
    assert files, f"nothing found at {where}"
    crossings = [f"src/xoromail_cli/{path.relative_to(PACKAGE).as_posix()}:{line}: imports {module}"
                 for path in files for module, line in package_imports(path)
                 if any(inside(module, banned) for banned in FORBIDDEN[where])]
    assert not crossings, "the engine entered by the wrong door:\n" + "\n".join(crossings)


def test_the_walk_sees_the_doors_they_do_use() -> None:
    """The test above cannot pass vacuously: the same walk finds the doors the relay and validate go through."""
    relay = {module for path in (PACKAGE / "relay").rglob("*.py") for module, _ in package_imports(path)}
    assert {"xoromail_cli.ledger", "xoromail_cli.sending.limits", "xoromail_cli.sending.deliverer"} <= relay
    assert "xoromail_cli.ledger" in {module for module, _ in package_imports(PACKAGE / "validate.py")}


def test_importing_validate_loads_nothing_of_sending() -> None:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import xoromail_cli.validate"],
                          capture_output=True, text=True, check=True, timeout=60)
    loaded = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    assert "xoromail_cli.validate" in loaded
    assert [module for module in loaded if inside(module, "xoromail_cli.sending")] == []


def test_validate_help_loads_nothing_of_sending() -> None:
    """`python -X importtime -m xoromail_cli validate --help`: the command's own start, as a user runs it."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "xoromail_cli", "validate", "--help"],
                          capture_output=True, text=True, check=True, timeout=60)
    loaded = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "|" in line]
    assert "--to" in done.stdout and "xoromail_cli.cli" in loaded
    assert [module for module in loaded if inside(module, "xoromail_cli.sending")] == []


def test_the_relay_and_the_envelope_level_load_nothing_of_the_batch_level() -> None:
    code = ("import sys, xoromail_cli.relay.delivery, xoromail_cli.relay.server, xoromail_cli.sending.deliverer, "
            "xoromail_cli.sending.limits, xoromail_cli.ledger\nprint(' '.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded = done.stdout.split()
    assert "xoromail_cli.sending.deliverer" in loaded
    assert [module for module in loaded if any(inside(module, banned) for banned in BATCH_LEVEL)] == []


def test_a_real_validate_run_loads_nothing_of_sending(smtp_server: ServerFactory, tls: TLSFiles,
                                                     config_path: Path) -> None:
    """The whole command, through its ledger check and a test message to a real server: the modules it
    loaded on the way are listed when it ends."""
    server = smtp_server()
    configure(config_path, server, tls)
    code = ("import sys\nfrom xoromail_cli.cli import app\n"
            "try:\n    app(['validate', '--json'], standalone_mode=False)\n"
            "finally:\n    print('LOADED', ' '.join(sorted(sys.modules)))\n")
    env = {**os.environ, "XOROMAIL_CONFIG": str(config_path), "XOROMAIL_PASSWORD": PASSWORD}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert '"ok": true' in done.stdout, done.stdout + done.stderr
    assert len(server.messages) == 1  # the test message went: this was the whole path
    loaded = done.stdout.rsplit("LOADED ", 1)[1].split()
    assert "xoromail_cli.validate" in loaded
    assert [module for module in loaded if inside(module, "xoromail_cli.sending")] == []
