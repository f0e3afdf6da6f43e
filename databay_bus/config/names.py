"""Built-in short names of a pipeline file, and importing anything else by dotted path.

A node, processor, router, planner or observer is named in a pipeline file either by one of
the short names below (``"http"``, ``"csv"``, ``"buffer"``, ...) or by an import path:
``"package.module.Name"`` or ``"package.module:Name"``. Built-ins are imported lazily, so a
pipeline that does not use HttpInlet never needs aiohttp.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["BUILTINS", "ImportFailed", "import_path", "resolve"]

#: For each kind of object, its short names and the import paths they stand for.
BUILTINS: dict[str, dict[str, str]] = {
    "inlet": {
        "http": "databay_bus.inlets.HttpInlet",
        "file": "databay_bus.inlets.FileInlet",
        "null": "databay_bus.inlets.NullInlet",
        "random_int": "databay_bus.inlets.RandomIntInlet",
        "redis_stream": "databay_bus.inlets.RedisStreamInlet",
        "amqp": "databay_bus.inlets.AmqpInlet",
    },
    "outlet": {
        "csv": "databay_bus.outlets.CsvOutlet",
        "file": "databay_bus.outlets.FileOutlet",
        "print": "databay_bus.outlets.PrintOutlet",
        "null": "databay_bus.outlets.NullOutlet",
        "mongo": "databay_bus.outlets.MongoOutlet",
        "redis_stream": "databay_bus.outlets.RedisStreamOutlet",
        "amqp": "databay_bus.outlets.AmqpOutlet",
    },
    "processor": {
        "buffer": "databay_bus.processors.Buffer",
    },
    "grouper": {},
    "router": {
        "metadata": "databay_bus.routing.MetadataRouter",
        "inlet": "databay_bus.routing.InletRouter",
        "predicate": "databay_bus.routing.PredicateRouter",
    },
    "planner": {
        "aps": "databay_bus.planners.ApsPlanner",
        "schedule": "databay_bus.planners.SchedulePlanner",
    },
    "codec": {
        "json": "databay_bus.records.codecs.JsonCodec",
        "orjson": "databay_bus.records.codecs.OrjsonCodec",
        "pickle": "databay_bus.records.codecs.PickleCodec",
    },
    "observer": {
        "log": "databay_bus.observers.LogObserver",
    },
}


class ImportFailed(Exception):
    """``import_path`` could not find the object; the message says why."""


def import_path(path: str) -> Any:
    """Import ``path`` (``'pkg.mod.Name'`` or ``'pkg.mod:Name'``) and return the object.

    Raises:
        ImportFailed: the module or the attribute does not exist, or importing it raised.
    """
    if ":" in path:
        module_name, _, attribute = path.partition(":")
        candidates = [(module_name, attribute.split(".") if attribute else [])]
    else:
        pieces = path.split(".")
        candidates = [(".".join(pieces[:i]), pieces[i:]) for i in range(len(pieces), 0, -1)]
    module_part, _, attribute_part = path.partition(":")
    pieces_all = module_part.split(".") + (attribute_part.split(".") if attribute_part else [])
    if not path or path.count(":") > 1 or any(not p.isidentifier() for p in pieces_all):
        raise ImportFailed(f"cannot import {path!r}: not an import path")
    reason = "no module of that name"
    for module_name, attributes in candidates:
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if module_name == missing or module_name.startswith(missing + "."):
                reason = str(exc)  # this prefix is not a module: try a shorter one
                continue
            reason = f"importing {module_name!r} failed: {exc}"  # one of *its* imports
            break
        except Exception as exc:  # a module that raises while it is imported
            reason = f"importing {module_name!r} raised {type(exc).__name__}: {exc}"
            break
        try:
            for attribute in attributes:
                obj = getattr(obj, attribute)
        except AttributeError:
            reason = f"module {module_name!r} has no attribute {'.'.join(attributes)!r}"
            break
        return obj
    raise ImportFailed(f"cannot import {path!r}: {reason}")


def resolve(kind: str, name: str) -> Any:
    """Return the object a pipeline file means by ``name`` for a ``kind`` of object.

    Short names (see :data:`BUILTINS`) are tried first, case-insensitively, then the name as
    an import path.

    Raises:
        ImportFailed: neither works; the message lists the short names of ``kind``.
    """
    builtins = BUILTINS.get(kind, {})
    target = builtins.get(name.lower())
    if target is not None:
        return import_path(target)
    if "." not in name and ":" not in name:
        known = ", ".join(repr(n) for n in sorted(builtins)) or "none"
        raise ImportFailed(
            f"unknown {kind} {name!r}: not a built-in name ({known}) nor an import path "
            f"like 'package.module.Class'"
        )
    return import_path(name)
