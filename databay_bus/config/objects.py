"""Building an object from a name and its arguments, as a pipeline file names it.

``'csv'`` or ``{type = 'csv', default_filepath = 'out.csv'}``: the name is resolved by
:mod:`databay_bus.config.names`, the arguments are checked against the signature, then the
class (or factory) is called. Every failure becomes a problem with its key path and the value
:data:`~databay_bus.config.checks.FAILED`, so the rest of the file is still checked.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeGuard, TypeVar

from databay_bus.config.checks import FAILED, Failed, Problems
from databay_bus.config.names import ImportFailed, resolve
from databay_bus.config.source import key_path
from databay_bus.errors import QueueLockedError, QueueStorageError, describe
from databay_bus.inlets.base import Inlet
from databay_bus.outlets.base import Outlet
from databay_bus.planners.base import BasePlanner
from databay_bus.queue.base import RecordQueue
from databay_bus.queue.retry import RetryPolicy
from databay_bus.routing import Router

__all__ = [
    "CODEC",
    "GROUPER",
    "INLET",
    "OBSERVER",
    "OUTLET",
    "PLANNER",
    "PREDICATE",
    "PROCESSOR",
    "QUEUE",
    "RETRY",
    "ROUTER",
    "Arguments",
    "Kind",
    "ObjectMaker",
    "Prepare",
    "Spec",
    "built",
    "factory",
    "is_factory",
    "parse_spec",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: Keyword arguments of one object, as the file gave them.
Arguments = dict[str, Any]
#: A name and its arguments (kept for ``validate`` to print).
Spec = tuple[str, Arguments]
#: Turns the file's arguments into the constructor's (e.g. names into objects); None = failed.
Prepare = Callable[[Any, Arguments, str], "Arguments | None"]
#: Calls the resolved class or factory with the prepared arguments (the default: ``target(**kw)``).
Construct = Callable[[Any, Arguments], Any]


F = TypeVar("F", bound=Callable[..., Any])
_FACTORY_MARK = "__databay_bus_factory__"


def factory(function: F) -> F:
    """Mark ``function`` as a factory a pipeline file may call with arguments.

    A pipeline file names Python code; a named *function* is only called when it is marked,
    so a file cannot make the loader (or ``databay-bus validate``) call ``os.system`` or any
    other function that happens to be importable. Classes need no mark: they are called
    only when they are of the expected kind (an Inlet subclass for an inlet, ...).
    """
    setattr(function, _FACTORY_MARK, True)
    return function


def is_factory(target: object) -> bool:
    """True for a function marked with :func:`factory`."""
    return getattr(target, _FACTORY_MARK, False) is True


def _has_call(cls: type) -> bool:
    return any("__call__" in vars(klass) for klass in cls.__mro__ if klass is not object)


def _is_codec_class(cls: type) -> bool:
    return callable(getattr(cls, "encode", None)) and callable(getattr(cls, "decode", None))


class Kind(Generic[T_co]):
    """One kind of object a pipeline file names: what it must be and how it is made.

    Args:
        name: the kind's name, as in :data:`~databay_bus.config.names.BUILTINS`.
        base: the class every object of this kind is an instance of; None for any callable.
        always_call: call a named function even without arguments (it is a factory); when
            False, a function without arguments is the object itself (a processor).
        accepts: which classes may be called to make one (default: subclasses of ``base``;
            for a kind without a base, classes whose instances are callable).
        described: what an acceptable class is, for messages (``'an Inlet class'``).
    """

    def __init__(
        self,
        name: str,
        base: type[Any] | None,
        *,
        always_call: bool,
        accepts: Callable[[type], bool] | None = None,
        described: str | None = None,
    ) -> None:
        self.name = name
        self.base = base
        self.always_call = always_call
        if accepts is None:
            accepts = _has_call if base is None else (lambda cls: issubclass(cls, base))
        self.accepts = accepts
        if described is None:
            if base is None:
                described = "a class with callable instances"
            else:
                article = "an" if base.__name__[:1] in "AEIOU" else "a"
                described = f"{article} {base.__name__} class"
        self.described = described

    def __repr__(self) -> str:
        return f"Kind({self.name!r})"


INLET = Kind[Inlet]("inlet", Inlet, always_call=True)
OUTLET = Kind[Outlet]("outlet", Outlet, always_call=True)
PROCESSOR = Kind[Callable[..., Any]]("processor", None, always_call=False)
GROUPER = Kind[Callable[..., Any]]("grouper", None, always_call=False)
ROUTER = Kind[Router]("router", Router, always_call=True)
PREDICATE = Kind[Callable[..., Any]]("predicate", None, always_call=False)
PLANNER = Kind[BasePlanner]("planner", BasePlanner, always_call=True)
OBSERVER = Kind[Callable[..., Any]]("observer", None, always_call=False)
QUEUE = Kind[RecordQueue]("queue", RecordQueue, always_call=True)
RETRY = Kind[RetryPolicy]("retry", RetryPolicy, always_call=True)
CODEC = Kind[object](
    "codec",
    object,
    always_call=True,
    accepts=_is_codec_class,
    described="a codec class (with encode and decode)",
)


def built(items: Sequence[T | Failed]) -> TypeGuard[Sequence[T]]:
    """True when no item of ``items`` is FAILED."""
    return all(item is not FAILED for item in items)


def parse_spec(problems: Problems, value: object, path: str) -> Spec | None:
    """``'csv'`` or ``{type = 'csv', ...}`` -> the name and the arguments; None if neither."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict):
        name = value.get("type")
        if not isinstance(name, str) or not name:
            problems.add(
                path,
                "a table naming an object needs 'type' (a built-in name or an import path), "
                f"got {describe(name) if 'type' in value else 'no type key'}",
            )
            return None
        return name, {k: v for k, v in value.items() if k != "type"}
    problems.add(
        path,
        "must be a name (a built-in name or an import path) or a table with 'type' and "
        f"arguments, got {describe(value)}",
    )
    return None


class ObjectMaker:
    """Resolves names and constructs objects, reporting to one :class:`Problems`.

    Args:
        problems: where failures are recorded.
    """

    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def make(
        self,
        kind: Kind[T],
        value: object,
        path: str,
        *,
        prepare: Prepare | None = None,
        specs: list[Spec] | None = None,
        construct: Construct | None = None,
    ) -> T | Failed:
        """Resolve and construct one object of ``kind``; FAILED (problem recorded) if it cannot.

        Classes are called with the arguments; a function is used as it is when it has no
        arguments and the kind is not ``always_call`` (a processor given by name), else it is
        called as a factory. The result must be an instance of the kind's ``base`` (or
        callable when it has none).

        Args:
            kind: the kind of object (:data:`INLET`, :data:`ROUTER`, ...).
            value: the file's value: a name or a table with ``type``.
            path: its key path, for problems.
            prepare: turns the file's arguments into the constructor's.
            specs: the name and arguments are appended here (for ``validate``).
            construct: calls the target instead of ``target(**kwargs)``.
        """
        parsed = parse_spec(self.problems, value, path)
        if parsed is None:
            return FAILED
        name, kwargs = parsed
        if specs is not None:
            specs.append((name, kwargs))
        expect = kind.base
        try:
            target = resolve(kind.name, name)
        except ImportFailed as exc:
            self.problems.add(path, str(exc))
            return FAILED
        if not callable(target):
            self.problems.add(path, f"{name!r} is {describe(target)}, not a class or function")
            return FAILED
        if prepare is not None:
            prepared = prepare(target, kwargs, path)
            if prepared is None:
                return FAILED
            kwargs = prepared
        label = getattr(target, "__qualname__", name)
        if inspect.isclass(target) or kwargs or kind.always_call:
            if not self.may_call(kind, name, target, label, path):
                return FAILED
            if not self.arguments_fit(target, label, kwargs, path):
                return FAILED
            try:
                obj = target(**kwargs) if construct is None else construct(target, kwargs)
            except (QueueLockedError, QueueStorageError):
                raise  # not a mistake in the file: the queue cannot be used now (run exits 1)
            except Exception as exc:
                self.problems.add(path, f"{label}(...) raised {type(exc).__name__}: {exc}")
                return FAILED
        else:
            obj = target
        if expect is not None and not isinstance(obj, expect):
            article = "an" if expect.__name__[:1] in "AEIOU" else "a"
            self.problems.add(
                path, f"{name!r} gave {describe(obj)}, not {article} {expect.__name__}"
            )
            return FAILED
        if expect is None and not callable(obj):
            self.problems.add(path, f"{name!r} gave {describe(obj)}, which is not callable")
            return FAILED
        result: T = obj
        return result

    def may_call(self, kind: Kind[Any], name: str, target: object, label: str, path: str) -> bool:
        """Whether ``target`` may be called to make a ``kind`` (checked before any call).

        A class must be of the kind; a function must be marked with :func:`factory`. This is
        what keeps a file from making the loader call arbitrary code.
        """
        if inspect.isclass(target):
            if kind.accepts(target):
                return True
            self.problems.add(
                path, f"{name!r} gave {label}, a class that is not {kind.described}: not called"
            )
            return False
        if is_factory(target):
            return True
        what = "a function" if inspect.isroutine(target) else describe(target)
        self.problems.add(
            path,
            f"{name!r} is {what} not marked as a factory (@databay_bus.config.factory), "
            "so it was not called",
        )
        return False

    def arguments_fit(self, target: Any, label: str, kwargs: Arguments, path: str) -> bool:
        """Check ``kwargs`` against the signature of ``target``; problems for each misfit."""
        hidden = ("links",) if inspect.isclass(target) and issubclass(target, BasePlanner) else ()
        try:
            signature = inspect.signature(target)
        except (TypeError, ValueError):
            return True  # no signature to check against (a builtin): let the call decide
        params = signature.parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
        named = [
            n
            for n, p in params.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            and not n.startswith("_")
            and n not in hidden
        ]
        fits = True
        if not takes_any:
            for key in kwargs:
                if key not in named:
                    self.problems.add(
                        key_path(path, key),
                        f"{label} takes no argument {key!r} (its arguments: "
                        f"{', '.join(named) or 'none'})",
                    )
                    fits = False
        for n, p in params.items():
            required = p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            if required and n not in kwargs:
                self.problems.add(path, f"{label} needs the argument {n!r}")
                fits = False
        return fits

    def make_list(
        self,
        kind: Kind[T],
        value: object,
        path: str,
        *,
        specs: list[Spec],
        required: bool = False,
        prepare: Prepare | None = None,
    ) -> list[T | Failed]:
        """One object or a list of them (a link's inlets, outlets, processors, groupers)."""
        if value is None:
            if required:
                self.problems.add(path, f"a link needs at least one {kind.name}")
            return []
        items = value if isinstance(value, list) else [value]
        if required and not items:
            self.problems.add(path, f"a link needs at least one {kind.name}")
        return [
            self.make(kind, item, key_path(path, i), specs=specs, prepare=prepare)
            for i, item in enumerate(items)
        ]
