"""Public names: ``__all__`` of every module matches its namespace; Databay's import paths work."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import databay_bus


def all_module_names() -> list[str]:
    names = ["databay_bus"]
    for info in pkgutil.walk_packages(databay_bus.__path__, "databay_bus."):
        names.append(info.name)
    return sorted(names)


MODULES = all_module_names()


def defined_here(module: ModuleType, obj: object) -> bool:
    """True for classes/functions defined in ``module`` (or, for a package, in its modules)."""
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return False
    home = getattr(obj, "__module__", "") or ""
    if hasattr(module, "__path__"):
        return home == module.__name__ or home.startswith(module.__name__ + ".")
    return home == module.__name__


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports_and_declares_all(name: str) -> None:
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list), name
    assert len(module.__all__) == len(set(module.__all__)), f"{name}: duplicates in __all__"
    for public in module.__all__:
        assert hasattr(module, public), f"{name}.__all__ lists missing {public!r}"


@pytest.mark.parametrize("name", [m for m in MODULES if not m.rsplit(".", 1)[-1].startswith("_")])
def test_public_classes_and_functions_are_in_all(name: str) -> None:
    module = importlib.import_module(name)
    missing = [
        attr
        for attr, obj in vars(module).items()
        if not attr.startswith("_") and defined_here(module, obj) and attr not in module.__all__
    ]
    if not hasattr(module, "__path__"):
        # plain modules may import helpers from their own package; only their own defs count
        missing = [a for a in missing if getattr(module, a).__module__ == name]
    assert missing == [], f"{name}: public names not in __all__: {missing}"


def test_root_names() -> None:
    names = ("Record", "Outlet", "Inlet", "Link", "Update", "BasePlanner", "MetadataKey", "Buffer")
    for name in names:
        assert name in databay_bus.__all__
    assert isinstance(databay_bus.__version__, str)


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("databay_bus.planners", ["ApsPlanner", "SchedulePlanner"]),
        ("databay_bus.planners.schedule_planner", ["ScheduleIntervalError", "SchedulePlanner"]),
        ("databay_bus.planners.aps_planner", ["ApsPlanner"]),
        ("databay_bus.errors", ["MissingLinkError", "ImplementationError", "InvalidNodeError"]),
        ("databay_bus.inlet", ["Inlet"]),
        ("databay_bus.outlet", ["Outlet", "MetadataKey"]),
        ("databay_bus.record", ["Record"]),
        ("databay_bus.link", ["Link", "Update"]),
        ("databay_bus.base_planner", ["BasePlanner"]),
        ("databay_bus.misc.logs", ["ISO8601Formatter"]),
    ],
)
def test_databay_import_paths(module: str, names: list[str]) -> None:
    loaded = importlib.import_module(module)
    for name in names:
        assert name in loaded.__all__
        assert getattr(loaded, name) is not None


def test_same_objects_under_every_path() -> None:
    from databay_bus.base_planner import BasePlanner as LegacyPlanner
    from databay_bus.inlet import Inlet as LegacyInlet
    from databay_bus.outlet import MetadataKey as LegacyKey
    from databay_bus.outlet import Outlet as LegacyOutlet
    from databay_bus.planners.schedule_planner import ScheduleIntervalError
    from databay_bus.record import Record as LegacyRecord

    assert LegacyInlet is databay_bus.Inlet
    assert LegacyOutlet is databay_bus.Outlet
    assert LegacyKey is databay_bus.MetadataKey
    assert LegacyRecord is databay_bus.Record
    assert LegacyPlanner is databay_bus.BasePlanner
    assert ScheduleIntervalError is databay_bus.errors.ScheduleIntervalError
