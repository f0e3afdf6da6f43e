"""Module attributes imported on first use, for built-ins that need an optional extra."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from databay_bus.errors import MissingDependencyError

__all__ = ["lazy_attributes", "require_extra"]


def lazy_attributes(
    namespace: dict[str, Any], lazy: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a module's ``__getattr__`` and ``__dir__`` importing ``lazy[name]`` on first use.

    Args:
        namespace: the module's ``globals()``; a resolved attribute is cached there.
        lazy: attribute name -> the module that defines it. That module raises
            :class:`~databay_bus.errors.MissingDependencyError` when its extra is missing.
    """
    module_name = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        source = lazy.get(name)
        if source is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(lazy))

    return __getattr__, __dir__


def require_extra(feature: str, extra: str, *modules: str) -> None:
    """Import ``modules`` or raise MissingDependencyError naming ``feature`` and the pip extra.

    Call it before the module's own ``import`` statements of optional dependencies.
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise MissingDependencyError(module, extra, feature) from exc
