"""The project's code rules that no linter setting states (issue 18):

- a dataclass with more than four fields is keyword-only (`kw_only=True`), so no call site depends on field order;
- every `# noqa` and `# type: ignore` names its codes and says why, after a second `#`;
- tests/ holds test modules, fixtures in conftest.py and shared helpers in support/: a test module takes nothing
  from another but a rule's own derivation (and the pipelining re-run of test_sending.py).

ruff's C901 (complexity ≤ 10) and the rest are in pyproject.toml; the import graph is tests/test_import_graph.py.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("src", "tests", "benchmarks", "scripts")
MAX_POSITIONAL_FIELDS = 4


def python_files() -> list[Path]:
    return sorted(path for folder in CHECKED for path in (ROOT / folder).rglob("*.py"))


def _is_dataclass(decorator: ast.expr) -> tuple[bool, bool]:
    """(whether it is @dataclass, whether it says kw_only=True)."""
    call = decorator if isinstance(decorator, ast.Call) else None
    target = call.func if call is not None else decorator
    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    kw_only = call is not None and any(keyword.arg == "kw_only" and isinstance(keyword.value, ast.Constant)
                                       and keyword.value.value is True for keyword in call.keywords)
    return name == "dataclass", kw_only


def _field_count(node: ast.ClassDef) -> int:
    return sum(1 for statement in node.body if isinstance(statement, ast.AnnAssign)
               and not re.search(r"\b(ClassVar|KW_ONLY)\b", ast.unparse(statement.annotation)))


def positional_dataclasses(source: str, where: str) -> list[str]:
    """`where:line Name (n fields)` of every dataclass with more than four fields that is not keyword-only."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for decorator in node.decorator_list:
            is_dataclass, kw_only = _is_dataclass(decorator)
            fields = _field_count(node)
            if is_dataclass and not kw_only and fields > MAX_POSITIONAL_FIELDS:
                found.append(f"{where}:{node.lineno} {node.name} ({fields} fields)")
    return found


PRAGMA = re.compile(r"#\s*(noqa|type:\s*ignore)\b")
EXPLAINED = re.compile(r"#\s*(noqa:\s*[A-Z]+[0-9]+(,\s*[A-Z]+[0-9]+)*|type:\s*ignore\[[a-z-]+(,\s*[a-z-]+)*\])"
                       r"\s+#\s*\S")


def unexplained_pragmas(source: str, where: str) -> list[str]:
    """`where:line comment` of every noqa / type: ignore without its codes or without a reason after them."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and PRAGMA.search(token.string) and not EXPLAINED.search(token.string):
            found.append(f"{where}:{token.start[0]} {token.string}")
    return found


def test_dataclasses_with_more_than_four_fields_are_keyword_only() -> None:
    found = [hit for path in python_files()
             for hit in positional_dataclasses(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert not found, "add kw_only=True (and name the fields where they are built):\n" + "\n".join(found)


def test_every_noqa_and_type_ignore_names_its_codes_and_says_why() -> None:
    found = [hit for path in python_files()
             for hit in unexplained_pragmas(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert not found, "write `# noqa: CODE  # why` / `# type: ignore[code]  # why`:\n" + "\n".join(found)


def test_the_walks_see_what_they_look_for() -> None:
    """The rules cannot pass vacuously: the walks find real cases in the tree and flag made-up ones."""
    assert len(python_files()) > 100
    assert any("kw_only=True" in path.read_text(encoding="utf-8") for path in python_files())
    assert any(PRAGMA.search(path.read_text(encoding="utf-8")) for path in python_files())


@pytest.mark.parametrize(("source", "flagged"), [
    ("@dataclass\nclass A:\n    a: int\n    b: int\n    c: int\n    d: int\n    e: int\n", True),
    ("@dataclasses.dataclass(frozen=True)\nclass A:\n    a: int\n    b: int\n    c: int\n    d: int\n    e: int = 0\n",
     True),
    ("@dataclass(frozen=True, kw_only=True)\nclass A:\n    a: int\n    b: int\n    c: int\n    d: int\n    e: int\n",
     False),
    ("@dataclass\nclass A:\n    a: int\n    b: int\n    c: int\n    d: int\n    N: ClassVar[int] = 1\n", False),
])
def test_the_dataclass_rule_flags_only_positional_ones(source: str, flagged: bool) -> None:
    assert bool(positional_dataclasses(source, "x.py")) is flagged


@pytest.mark.parametrize(("comment", "flagged"), [
    ("x = 1  # noqa\n", True),
    ("x = 1  # noqa: S105\n", True),
    ("x = 1  # type: ignore\n", True),
    ("x = 1  # type: ignore[arg-type]\n", True),
    ("x = 1  # noqa: S105  # a name, not a secret\n", False),
    ("x = 1  # noqa: S608, S105  # constants only\n", False),
    ("x = 1  # type: ignore[union-attr, misc]  # asked above\n", False),
])
def test_the_pragma_rule_wants_codes_and_a_reason(comment: str, flagged: bool) -> None:
    assert bool(unexplained_pragmas(comment, "x.py")) is flagged


def test_helpers_live_in_support_and_conftest_holds_fixtures_only() -> None:
    """tests/ holds the test modules, conftest.py (fixtures) and support/ (everything else they share)."""
    tests = ROOT / "tests"
    loose = sorted(path.name for path in tests.iterdir() if path.name not in ("__init__.py", "conftest.py",
                   "README.md", "support", "__pycache__") and not path.name.startswith("test_"))
    assert not loose, f"move these into tests/support/: {loose}"
    tree = ast.parse((tests / "conftest.py").read_text(encoding="utf-8"))
    helpers = [node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)
               and not any("fixture" in ast.unparse(decorator) for decorator in node.decorator_list)]
    assert not helpers, f"tests/conftest.py holds fixtures only; move into tests/support/: {helpers}"


RULE_DERIVATIONS = {("test_boundaries", "service_libraries"), ("test_service_protocol_typing", "protocol_gaps")}
"""What one test module may take from another: a rule's own logic, which lives with the rule (tests/README.md)."""
RERUNS = {"test_sending_pipelined.py": "test_sending"}
"""A test module that re-runs every test of another (against pipelining servers) imports that module whole."""


def imports_from_test_modules(source: str, importer: str) -> list[str]:
    """What a test file takes from a test module, beyond the rule derivations and the re-run, as "module.name"."""
    taken: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            taken += [(alias.name.removeprefix("tests."), "*") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "tests":
            taken += [(alias.name, "*") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            taken += [(node.module.removeprefix("tests."), alias.name) for alias in node.names]
    return [f"{module}.{name}" for module, name in taken if module.startswith("test_")
            and (module, name) not in RULE_DERIVATIONS and RERUNS.get(importer) != module]


@pytest.mark.parametrize(("source", "importer", "flagged"), [
    ("from tests.test_relay_content import raw_data\n", "test_relay_x.py", ["test_relay_content.raw_data"]),
    ("from tests import test_sending\n", "test_other.py", ["test_sending.*"]),
    ("import tests.test_google_transport\n", "test_x.py", ["test_google_transport.*"]),
    ("from tests import test_sending\n", "test_sending_pipelined.py", []),
    ("from tests.test_boundaries import service_libraries\n", "test_x.py", []),
    ("from tests.support.relay_helpers import raw_data\n", "test_x.py", []),
])
def test_the_rule_sees_every_form_of_a_test_module_import(source: str, importer: str, flagged: list[str]) -> None:
    assert imports_from_test_modules(source, importer) == flagged


def test_test_modules_share_helpers_through_support_never_with_each_other() -> None:
    """A helper two test modules need lives in tests/support/, not in one of them (issue 18)."""
    tests = ROOT / "tests"
    found = [f"{path.relative_to(ROOT)}: {taken}" for path in sorted(tests.rglob("*.py"))
             for taken in imports_from_test_modules(path.read_text(encoding="utf-8"), path.name)]
    assert not found, "move these into tests/support/:\n" + "\n".join(found)
