"""The config package's modules form no import cycle, and load() is typed as returning Pipeline."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import databay_bus.config as config
from databay_bus.config import Pipeline

PACKAGE = Path(config.__file__).parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("databay_bus.config.")}


def test_config_modules_never_import_each_other_back() -> None:
    graph = {
        f"databay_bus.config.{p.stem}": _imports(p)
        for p in PACKAGE.glob("*.py")
        if p.stem != "__init__"
    }

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = [name for name in graph if reaches(name, name, {name})]
    assert cycles == []
    assert "databay_bus.config.loader" not in graph["databay_bus.config.pipeline"]


def test_load_loads_and_build_return_pipeline() -> None:
    for function in (config.load, config.loads, config.build):
        assert typing.get_type_hints(function)["return"] is Pipeline
