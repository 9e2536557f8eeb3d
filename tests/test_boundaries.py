"""Library boundaries: each service's library is imported only inside its own package, the UI libraries only in
`cli/`, so a service can be removed or replaced in one place and the other paths never pay for its import.

An AST walk over every module of the package (imports at any depth: functions, TYPE_CHECKING blocks, and
`importlib.import_module("…")` with a literal name); each violation is reported as file:line.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

from xoromail_cli import services

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "xoromail_cli"
HTTPS_SERVICES = ("services/http.py", "services/exchange/", "services/google/", "services/microsoft365/")

ALLOWED: dict[str, tuple[str, ...]] = {
    "smtplib": ("services/smtp/",),
    "requests": HTTPS_SERVICES,
    "urllib3": HTTPS_SERVICES,
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
    "cryptography": ("stores/encrypted.py", "relay/tls.py"),  # the relay reads its certificate's validity
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


# Derived from the table and the registry: a new service gets these checks without being named here. -----------

def third_party(module: str) -> bool:
    return module not in sys.stdlib_module_names and module not in ("xoromail_cli", "__future__")


def uses_http_layer(package: str) -> bool:
    """Whether a service package imports `services/http.py` (and so loads what that module may load)."""
    return any(where.startswith(package) and module == "xoromail_cli" and "services.http" in line
               for module, where, line in _xoromail_imports())


@functools.cache
def _xoromail_imports() -> list[tuple[str, str, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("xoromail_cli"):
                names = " ".join(f"{node.module}.{alias.name}" for alias in node.names)
                found.append(("xoromail_cli", path.relative_to(PACKAGE).as_posix(), names))
    return found


def service_libraries(service: str) -> frozenset[str]:
    """The third-party libraries `service` may load: its own rows of the table, and the HTTP layer's."""
    package = f"services/{service}/"
    places = [package, *(["services/http.py"] if uses_http_layer(package) else [])]
    return frozenset(module for module, allowed in ALLOWED.items() if third_party(module)
                     and any(place in allowed for place in places))


def heavy_libraries() -> frozenset[str]:
    """Every guarded third-party library: the ones only some paths may load."""
    return frozenset(module for module in ALLOWED if third_party(module))


def loaded_after(code: str, watched: frozenset[str]) -> list[str]:
    """The watched top-level modules in sys.modules after running `code` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & set({sorted(watched)!r})))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return list(ast.literal_eval(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("service", sorted(services.REGISTRY))
def test_every_library_a_service_imports_has_a_row_in_the_table(service: str) -> None:
    """Else `allowed_in` would let a new service's SDK in anywhere: an unlisted library is unguarded."""
    package = services.REGISTRY[service].module.removeprefix("xoromail_cli.").rsplit(".", 1)[0].replace(".", "/")
    unlisted = sorted({f"{where}:{line}: {module}" for module, where, line in all_imports()
                       if where.startswith(package + "/") and third_party(module) and module not in ALLOWED})
    assert not unlisted, "add these libraries to ALLOWED:\n" + "\n".join(unlisted)


@pytest.mark.parametrize("service", sorted(services.REGISTRY))
def test_a_services_package_loads_no_guarded_library_until_it_connects(service: str) -> None:
    """Importing every module of a service (what setup, config and --help touch) loads no guarded library, its
    own included: they load inside the functions that connect."""
    package = PACKAGE / services.REGISTRY[service].module.removeprefix("xoromail_cli.").rsplit(".", 1)[0].replace(
        ".", "/")
    modules = sorted("xoromail_cli." + path.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".")
                     for path in package.glob("*.py") if path.name != "__init__.py")
    code = f"from xoromail_cli import services\nservices.get({service!r})\n" + "".join(
        f"import {module}\n" for module in modules)
    assert loaded_after(code, heavy_libraries()) == []


def test_the_derived_lists_see_each_services_own_libraries() -> None:
    """The derivation cannot pass vacuously: each service's known SDK is among its libraries."""
    assert service_libraries("exchange") >= {"exchangelib", "requests", "requests_ntlm"}
    assert service_libraries("google") >= {"google", "google_auth_oauthlib", "requests"}
    assert service_libraries("microsoft365") >= {"msal", "requests"}
    assert service_libraries("smtp").isdisjoint({"requests", "msal", "exchangelib", "google"})
    assert set().union(*map(service_libraries, services.REGISTRY)) <= heavy_libraries()
