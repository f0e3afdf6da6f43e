"""No module of databay_bus imports, at run time, a module that imports it back.

Only imports executed when a module loads count: those at module level (also inside
``try``/``if``), not those inside functions (deliberately lazy) nor under
``if TYPE_CHECKING:``. A package's ``__init__`` importing its submodules, and a submodule
importing a sibling, are edges like any other; importing ``a.b.c`` is an edge to ``a.b.c``
only (its parent packages are being imported already, that is how packages work).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import databay_bus

ROOT = Path(databay_bus.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["databay_bus", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _load_time_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found += _load_time_imports(node.body)
            found += _load_time_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                found += _load_time_imports(block)
            for handler in node.handlers:
                found += _load_time_imports(handler.body)
        elif isinstance(node, ast.With):
            found += _load_time_imports(node.body)
    return found


def _targets(name: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in MODULES}
    base = node.module or ""
    if node.level:  # relative: resolve against this module's package
        package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    found = set()
    for alias in node.names:
        submodule = f"{base}.{alias.name}"
        if submodule in MODULES:
            found.add(submodule)
        elif base in MODULES:
            found.add(base)
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for node in _load_time_imports(tree.body):
            edges |= _targets(name, node)
        graph[name] = edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_the_package() -> None:
    graph = _graph()
    assert "databay_bus.delivery.direct" in graph["databay_bus.link"]
    assert "databay_bus.delivery.queued" not in graph["databay_bus.link"]  # imported lazily
    assert "databay_bus.update" in graph["databay_bus.outlets.base"]
    assert "databay_bus.link" not in graph["databay_bus.observers"]  # TYPE_CHECKING only


def test_the_detector_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_at_load_time() -> None:
    assert _cycles(_graph()) == []
