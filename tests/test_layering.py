"""Which way imports go, read from the source (every import statement, including those inside
functions and under TYPE_CHECKING): app → schema → resolvers → loaders → db, and `execution/`
reads the schema's declarations from the Strawberry schema it is given, never from `schema/`.

Units are the subpackages (db, loaders, …) and each top-level module (app, context, …).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import landscape_graphql

ROOT = Path(landscape_graphql.__file__).parent
PACKAGE = "landscape_graphql"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _in_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imports(path: Path, *, runtime_top_level: bool = False) -> set[str]:
    """The modules (or names in them) `path` imports; with `runtime_top_level`, only those run
    when it is imported (module level, not under TYPE_CHECKING)."""
    module = _module_name(path)
    tree = ast.parse(path.read_text())
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    statements = tree.body if runtime_top_level else list(ast.walk(tree))
    found: set[str] = set()
    for node in statements:
        if runtime_top_level and _in_type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if path.name != "__init__.py":
                    base.pop()
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def _unit(module: str) -> str | None:
    """The subpackage or top-level module a module of the package belongs to."""
    parts = module.split(".")
    if parts[0] != PACKAGE or len(parts) < 2:
        return None
    return parts[1]


def _unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        source = _unit(_module_name(path))
        if source is None:
            continue
        for target in _imports(path):
            unit = _unit(target)
            if unit is not None and unit != source and _exists(target):
                graph[source].add(unit)
    return graph


def _exists(target: str) -> bool:
    # `from .x import name` records both `x` and `x.name`; only real modules and packages count.
    relative = Path(*target.split(".")[1:])
    return (ROOT / relative).is_dir() or (ROOT / relative).with_suffix(".py").exists()


def imports_of(unit: str) -> set[str]:
    """Every module `unit` (a subpackage or top-level module) imports, inside or outside the package."""
    paths = [ROOT / f"{unit}.py"] if (ROOT / f"{unit}.py").exists() else list((ROOT / unit).rglob("*.py"))
    return set().union(*(_imports(path) for path in paths))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _units_imported_by(unit: str) -> set[str]:
    return _unit_graph().get(unit, set())


def test_the_graph_is_read() -> None:
    graph = _unit_graph()
    # What the checks below rely on: these edges exist and are seen.
    assert {"resolvers", "loaders", "db"} <= graph["schema"]
    assert "schema" in graph["app"]
    assert "loaders" in graph["context"]





def test_no_import_cycle_between_packages_and_top_level_modules() -> None:
    graph = _unit_graph()
    assert _cycle(graph) is None, _cycle(graph)


def test_the_cycle_finder_finds_one() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None


def test_db_is_the_bottom_layer() -> None:
    assert not _units_imported_by("db") & {
        "loaders", "resolvers", "schema", "execution", "export", "web", "app", "context", "cli"}


def test_loaders_import_neither_resolvers_nor_schema() -> None:
    assert not _units_imported_by("loaders") & {
        "resolvers", "schema", "execution", "export", "web", "app", "cli"}


def test_resolvers_do_not_import_the_schema() -> None:
    assert not _units_imported_by("resolvers") & {"schema", "execution", "web", "app", "cli"}


def test_execution_reads_declarations_not_the_schema_package() -> None:
    assert not _units_imported_by("execution") & {
        "schema", "resolvers", "loaders", "db", "context", "app", "cli"}


def test_schema_modules_import_each_other_lazily() -> None:
    """At import time the schema's modules form no cycle: a type module refers to a type of a
    module that needs it back through strawberry.lazy (and TYPE_CHECKING) only."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "schema").rglob("*.py"):
        module = _module_name(path)
        # A package is imported before its modules anyway: `from . import x` counts as x only.
        graph[module] = {t for t in _imports(path, runtime_top_level=True)
                         if t.startswith(f"{PACKAGE}.schema.") and t != module and _exists(t)
                         and not module.startswith(f"{t}.")}
    assert _cycle(graph) is None, _cycle(graph)
