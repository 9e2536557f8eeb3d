"""Library boundaries: each service's library is imported only inside its own package, the UI libraries only in
`cli/`, so a service can be removed or replaced in one place and the other paths never pay for its import.

An AST walk over every module of the package (imports at any depth: functions, TYPE_CHECKING blocks, and
`importlib.import_module("…")` with a literal name); each violation is reported as file:line.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "xoromail_cli"

ALLOWED: dict[str, tuple[str, ...]] = {
    "smtplib": ("services/smtp/",),
    "aiosmtpd": ("local/", "relay/"),
    "exchangelib": ("services/exchange/",),
    "requests_ntlm": ("services/exchange/",),
    "spnego": ("services/exchange/",),
    "msal": ("services/microsoft365/",),
    "google": ("services/google/",),
    "google_auth_oauthlib": ("services/google/",),
    "requests_oauthlib": ("services/google/",),
    "oauthlib": ("services/google/",),
    "typer": ("cli/",),
    "rich": ("cli/",),
    "psycopg": ("ledger/postgres.py",),
    "dns": ("domain/",),
    "checkdmarc": ("domain/",),
}
"""Top-level module → the files or folders (relative to the package) that may import it."""


def imports(path: Path) -> list[tuple[str, int]]:
    """(top-level module, line) of every absolute import in the file, at any depth."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.args[0].value.split(".")[0], node.lineno))
    return found


@functools.cache
def all_imports() -> list[tuple[str, str, int]]:
    """(module, file relative to the package, line) over the whole package."""
    return [(module, path.relative_to(PACKAGE).as_posix(), line)
            for path in sorted(PACKAGE.rglob("*.py")) for module, line in imports(path)]


def allowed_in(module: str, where: str) -> bool:
    places = ALLOWED.get(module)
    return places is None or any(where == place or (place.endswith("/") and where.startswith(place))
                                 for place in places)


def violations(found: list[tuple[str, str, int]]) -> list[str]:
    return [f"src/xoromail_cli/{where}:{line}: imports {module} (allowed only in {', '.join(ALLOWED[module])})"
            for module, where, line in found if not allowed_in(module, where)]


def test_every_library_is_imported_only_inside_its_own_part() -> None:
    found = violations(all_imports())
    assert not found, "library boundary violations:\n" + "\n".join(found)


@pytest.mark.parametrize("module", sorted({"smtplib", "aiosmtpd", "exchangelib", "msal", "google",
                                           "google_auth_oauthlib", "typer", "rich", "psycopg", "dns", "checkdmarc"}))
def test_the_walk_sees_each_guarded_library_where_it_is_used(module: str) -> None:
    """The boundary test cannot pass vacuously: the walk finds every guarded library in its allowed place."""
    assert any(found == module for found, _, _ in all_imports()), f"no import of {module} found at all"


def test_a_misplaced_import_is_reported_with_file_and_line(tmp_path: Path) -> None:
    source = tmp_path / "stray.py"
    source.write_text("def f():\n    import msal.oauth2cli\n    from typer import echo\n", encoding="utf-8")
    assert imports(source) == [("msal", 2), ("typer", 3)]
    assert violations([("msal", "services/google/oauth.py", 2), ("typer", "sending/sender.py", 3),
                       ("typer", "cli/send_cmd.py", 4), ("psycopg", "ledger/postgres.py", 5)]) == [
        "src/xoromail_cli/services/google/oauth.py:2: imports msal (allowed only in services/microsoft365/)",
        "src/xoromail_cli/sending/sender.py:3: imports typer (allowed only in cli/)"]
