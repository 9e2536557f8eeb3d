"""The package's import graph has no cycle, and its ground floor stays small (issue 18).

Every module is walked by its AST: imports at any depth (inside functions too) and in package `__init__` files,
relative imports resolved; only the bodies of `if TYPE_CHECKING:` are left out, since they never run. Importing
`a.b.c` also runs the `__init__` of `a.b` and `a`, so those count as edges too — except the importer's own
parents, which are loaded before it in any case.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "xoromail_cli"
MAX_TOP_LEVEL_MODULES = 12

Graph = dict[str, dict[str, str]]
"""module → {imported module: "file:line" of the first import that makes the edge}"""


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(test: ast.expr) -> bool:
    return ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
            or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def _runtime_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every node below `node` except what sits in the body of an `if TYPE_CHECKING:` (its `else:` runs)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _type_checking(child.test):
            for other in child.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield child
        yield from _runtime_nodes(child)


def _parents(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom,
             known: set[str]) -> list[tuple[str, bool]]:
    """(imported module, whether its own names are asked for) of one import statement."""
    if isinstance(node, ast.Import):
        return [(alias.name, True) for alias in node.names]
    source = _absolute(module, is_package, node)
    submodules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in known]
    return [(sub, True) for sub in submodules] + [(source, len(submodules) < len(node.names))]


def import_graph(package: Path) -> Graph:
    root = package.parent
    files = {module_name(path, root): path for path in sorted(package.rglob("*.py"))}
    known = set(files)
    graph: Graph = {}
    for module, path in files.items():
        edges: dict[str, str] = {}
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        imports = [node for node in _runtime_nodes(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
        for node in imports:
            for target, named in _targets(module, path.name == "__init__.py", node, known):
                # the target itself when its names are used (even a parent's); its parents when not ours
                reached = ({target} if named else set()) | (({target} | _parents(target)) - _parents(module))
                for other in sorted(reached & known - {module}):
                    edges.setdefault(other, f"{path.relative_to(root.parent).as_posix()}:{node.lineno}")
        graph[module] = edges
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle (as a closed walk of modules) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the package is a few hundred modules deep at most
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            component.append(node)
            if len(component) > 1 or node in graph[node]:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_closed_walk(graph, set(component), component[0]) for component in components]


def _closed_walk(graph: Graph, members: set[str], start: str) -> list[str]:
    """The shortest path from `start` back to itself inside its component."""
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for other in sorted(graph[node]):
                if other == start:
                    return [*paths[node], start]
                if other in members and other not in paths:
                    paths[other] = [*paths[node], other]
                    following.append(other)
        frontier = following
    raise AssertionError(f"{start} is in a component without a way back")  # Tarjan guarantees one


def describe(graph: Graph, walk: list[str]) -> str:
    steps = [f"    {graph[a][b]}: {a} imports {b}" for a, b in itertools.pairwise(walk)]
    return "\n".join([" → ".join(walk), *steps])


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(describe(graph, walk) for walk in found)


def test_the_walk_sees_lazy_imports_relative_imports_and_package_inits() -> None:
    """The test above cannot pass vacuously: edges known to exist in the package are found."""
    graph = import_graph(PACKAGE)
    assert len(graph) > 100
    assert "xoromail_cli.services" in graph["xoromail_cli.config"]  # an import inside a function
    assert "xoromail_cli.paths" in graph["xoromail_cli.services.outbox"]
    assert any(edges for module, edges in graph.items() if module.endswith(("__init__", "services")))


def write_package(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package


def test_a_cycle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "def later():\n    from pkg.a import thing\n",
    })
    graph = import_graph(package)
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"]]
    assert "/pkg/b.py:2: pkg.b imports pkg.a" in describe(graph, cycles(graph)[0])


def test_a_cycle_through_a_package_init_and_a_relative_import_is_found(tmp_path: Path) -> None:
    """config → services (its __init__) → services.outbox → config: the cycle this test was written for."""
    package = write_package(tmp_path, {
        "__init__.py": "",
        "config.py": "def f():\n    from pkg.services.smtp import settings\n",
        "services/__init__.py": "from .outbox import Outbox\n",
        "services/outbox.py": "from ..config import atomic_write\n",
        "services/smtp/__init__.py": "",
        "services/smtp/settings.py": "",
    })
    assert cycles(import_graph(package)) == [["pkg.config", "pkg.services", "pkg.services.outbox", "pkg.config"]]


def test_a_cycle_through_plain_and_sibling_relative_imports_is_found(tmp_path: Path) -> None:
    """`import pkg.x.y` (its names used through the dotted path) and `from . import z`, the forms the other
    tests do not write: each makes its edge."""
    package = write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "import pkg.sub.b\n",
        "sub/__init__.py": "",
        "sub/b.py": "from . import c\n",
        "sub/c.py": "def later():\n    import pkg.a as a\n",
    })
    assert cycles(import_graph(package)) == [["pkg.a", "pkg.sub.b", "pkg.sub.c", "pkg.a"]]
    package.joinpath("sub/c.py").write_text("import pkg.sub\n")  # its own parent, loaded first: no cycle
    assert cycles(import_graph(package)) == []


def test_type_checking_imports_and_a_childs_use_of_its_own_parent_are_no_cycle(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\nelse:\n    B = None\n",
        "b.py": "import pkg.a\n",
        "sub/__init__.py": "from pkg.sub.child import C\n",
        "sub/child.py": "from pkg.sub import sibling\n",  # a submodule: the parent's own names are not needed
        "sub/sibling.py": "",
    })
    graph = import_graph(package)
    assert cycles(graph) == []
    assert "pkg.b" not in graph["pkg.a"]
    package.joinpath("sub/child.py").write_text("from pkg.sub import C\n")  # a name of the half-run __init__
    assert cycles(import_graph(package)) == [["pkg.sub", "pkg.sub.child", "pkg.sub"]]


def test_at_most_twelve_modules_sit_at_the_top_of_the_package() -> None:
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, (f"{len(top)} modules at the top of src/xoromail_cli/ "
                                               f"(at most {MAX_TOP_LEVEL_MODULES}): {', '.join(top)}")
