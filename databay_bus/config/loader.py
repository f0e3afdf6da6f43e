"""Turning a parsed pipeline file into a Pipeline: the top-level tables, checked first.

The loader walks the whole file before anything starts and collects every problem with the
key path it belongs to (``links[2].outlets[0]: cannot import 'acme.sinks.Foo': ...``), so one
run of ``databay-bus validate`` lists all mistakes at once. Nothing is started here: nodes
are only constructed (their ``on_start`` runs when the planner starts).

The parts, one module each: :mod:`~databay_bus.config.checks` (values and the problem list),
:mod:`~databay_bus.config.objects` (an object from a name and its arguments),
:mod:`~databay_bus.config.routers`, :mod:`~databay_bus.config.queues` and
:mod:`~databay_bus.config.links`. A new top-level table gets its key in :data:`TOP_KEYS`, a
reader of its own (a function taking the :class:`~databay_bus.config.objects.ObjectMaker` and
the table) called from :func:`build`, and a field on :class:`~databay_bus.config.Pipeline`.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from databay_bus._secrets import mask_text
from databay_bus._validation import positive_int
from databay_bus.config.checks import Failed, Problems, parse_duration
from databay_bus.config.links import LinkReader
from databay_bus.config.objects import OBSERVER, PLANNER, Arguments, ObjectMaker, built
from databay_bus.config.pipeline import Pipeline
from databay_bus.config.queues import Queues, close_quietly
from databay_bus.config.source import expand_variables, key_path, parse_text, read_file
from databay_bus.errors import (
    ConfigError,
    ConfigurationError,
    QueueLockedError,
    QueueStorageError,
    describe,
)
from databay_bus.link import Link
from databay_bus.planners.base import BasePlanner

__all__ = ["TOP_KEYS", "build", "load", "loads", "parse_duration"]

TOP_KEYS = ("log_level", "python_path", "planner", "queue", "observers", "links", "web")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def build(
    data: object,
    source: str = "<pipeline>",
    *,
    env: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
) -> Pipeline:
    """Build a :class:`~databay_bus.config.Pipeline` from already parsed data.

    Args:
        data: the parsed file (a dict).
        source: the name used in error messages (the file path).
        env: variables for ``${NAME}``; ``os.environ`` by default.
        base_dir: the value of ``${PIPELINE_DIR}`` (always: a ``PIPELINE_DIR`` in ``env`` is
            ignored); the working directory by default.
        dry_run: build queues in memory instead of opening their files (``validate`` uses it,
            so checking a pipeline never locks the queue of a running one).

    Raises:
        ConfigError: listing every problem found, each with its key path.
        QueueLockedError, QueueStorageError: a queue file is in use by another process, or
            cannot be used (a missing directory, no room, ...): the file itself may be fine.
    """
    variables = dict(os.environ if env is None else env)
    # The file's own directory, never the environment's: modules are imported relative to it.
    variables["PIPELINE_DIR"] = str(Path(base_dir or os.getcwd()).resolve())
    if not isinstance(data, dict):
        raise ConfigError(
            source, [("", f"the file must hold a table at the top, got {describe(data)}")]
        )
    problems = Problems()
    maker = ObjectMaker(problems)
    queues = Queues(maker, dry_run)
    reader = LinkReader(maker, queues)
    secrets: set[str] = set()
    table: dict[str, Any] = expand_variables(dict(data), variables, "", problems.found, secrets)
    problems.table(table, "", TOP_KEYS)
    log_level = _log_level(problems, table.get("log_level"))
    _python_path(problems, table.get("python_path"))
    planner_data = dict(problems.table(table.get("planner", {}), "planner"))
    links: list[Link] = []
    try:
        if "queue" in table:
            queues.read_top(table["queue"])
        links_value = table.get("links")
        if not isinstance(links_value, list) or not links_value:
            problems.add(
                "links",
                f"must be a non-empty list of link tables ([[links]]), got {describe(links_value)}",
            )
        else:
            for index, value in enumerate(links_value):
                link = reader.read(index, value)
                if link is not None:
                    links.append(link)
    except (QueueLockedError, QueueStorageError):  # a queue in use or unusable: not the file's
        for queue in queues.opened:
            close_quietly(queue)
        raise
    observers = _observers(maker, table.get("observers"))
    web = _web(problems, table.get("web"), variables["PIPELINE_DIR"])
    planner = _planner(maker, reader, planner_data, links)
    if problems.found or not isinstance(planner, BasePlanner) or not built(observers):
        for queue in queues.opened:
            close_quietly(queue)
        raise ConfigError(source, [(p, mask_text(r, secrets)) for p, r in problems.found])
    for observer in observers:
        planner.add_observer(observer)
    return Pipeline(
        planner=planner,
        links=links,
        queues=list(queues.opened),
        observers=list(observers),
        log_level=log_level,
        source=source,
        planner_spec=(
            str(planner_data.get("kind", "aps")),
            {k: v for k, v in planner_data.items() if k != "kind"},
        ),
        queue_spec=queues.spec,
        link_specs=reader.specs,
        secrets=frozenset(secrets),
        web=web,
    )


def _observers(maker: ObjectMaker, value: object) -> list[Callable[..., Any] | Failed]:
    """The ``observers`` list: each a name or a table, like a processor."""
    if value is None:
        return []
    if not isinstance(value, list):
        maker.problems.add("observers", f"must be a list of observers, got {describe(value)}")
        return []
    return [maker.make(OBSERVER, item, key_path("observers", i)) for i, item in enumerate(value)]


def _web(problems: Problems, value: object, base_dir: str) -> Any:
    """The ``[web]`` table (docs/web.md), checked without importing the web extra."""
    if value is None:
        return None
    from databay_bus.web.settings import web_settings

    try:
        return web_settings(value, base_dir)
    except ConfigurationError as exc:
        path, _, reason = str(exc).partition(": ")  # 'web.listen: must be ...'
        problems.add(path, reason)
        return None


def _python_path(problems: Problems, value: object) -> None:
    """Put the file's ``python_path`` directories first on ``sys.path`` (once each)."""
    if value is None:
        return
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
        problems.add(
            "python_path", f"must be a directory or a list of directories, got {describe(value)}"
        )
        return
    for index, item in reversed(list(enumerate(items))):
        folder = str(Path(item).resolve())
        if not Path(folder).is_dir():
            problems.add(key_path("python_path", index), f"no directory {item!r}")
        elif folder not in sys.path:
            sys.path.insert(0, folder)


def _log_level(problems: Problems, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.upper() in _LEVELS:
        return int(getattr(logging, value.upper()))
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    problems.add(
        "log_level", f"must be one of {', '.join(_LEVELS)} or a number, got {describe(value)}"
    )
    return None


def _planner(
    maker: ObjectMaker, reader: LinkReader, data: dict[str, Any], links: list[Link]
) -> BasePlanner | Failed:
    """The ``[planner]`` table: its ``kind`` and arguments; every built link is added to it."""
    problems = maker.problems
    options = dict(data)
    kind = options.pop("kind", "aps")
    if "links" in options:
        problems.add("planner.links", "declare links as [[links]] tables at the top level")
        options.pop("links")

    def prepare(target: Any, kwargs: Arguments, path: str) -> Arguments | None:
        return _check_planner_options(problems, target, kwargs, path)

    planner = maker.make(
        PLANNER,
        {"type": kind, **options} if isinstance(kind, str) else kind,
        "planner" if isinstance(kind, str) else "planner.kind",
        prepare=prepare,
    )
    if isinstance(planner, Failed):
        return planner
    for link in links:
        try:
            planner.add_links(link)
        except Exception as exc:
            spec_index = next((s.index for s in reader.specs if s.tags == link.tags), None)
            where = key_path("links", spec_index) if spec_index is not None else "links"
            if "interval" in str(exc).lower():
                where = key_path(where, "interval")
            problems.add(where, str(exc))
    return planner


def _check_planner_options(
    problems: Problems, target: Any, kwargs: Arguments, path: str
) -> Arguments | None:
    """The built-in planners' ``threads`` check, run here so ``validate`` reports it too
    (a planner builds its worker pool only when it starts)."""
    builtin = inspect.isclass(target) and target.__module__.startswith("databay_bus.planners.")
    if builtin and "threads" in kwargs:
        try:
            positive_int(kwargs["threads"], "threads", target.__name__)
        except ConfigurationError as exc:
            problems.add(key_path(path, "threads"), str(exc))
            return None
    return kwargs


def loads(
    text: str,
    fmt: str = "toml",
    source: str = "<string>",
    *,
    dry_run: bool = False,
    env: Mapping[str, str] | None = None,
) -> Pipeline:
    """Build a Pipeline from the text of a pipeline file (``fmt`` is ``'toml'`` or ``'json'``).

    Raises:
        ConfigError: the text does not parse, or describes a pipeline that cannot be built.
    """
    try:
        data = parse_text(text, fmt)
    except ValueError as exc:
        raise ConfigError(source, [("", str(exc))]) from None
    return build(data, source, env=env, dry_run=dry_run)


def load(
    path: str | os.PathLike[str], *, dry_run: bool = False, env: Mapping[str, str] | None = None
) -> Pipeline:
    """Load a pipeline file (TOML, or JSON when it ends in ``.json``) into a Pipeline.

    The returned ``pipeline.planner`` is ready to start; nothing has started yet.

    Raises:
        ConfigError: the file cannot be read or parsed, or any part of it is invalid; the
            message lists every problem with its key path.
    """
    source = os.fspath(path)
    try:
        data, _ = read_file(path)
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read the file: {exc.strerror or exc}")]) from None
    except ValueError as exc:
        raise ConfigError(source, [("", str(exc))]) from None
    return build(data, source, env=env, base_dir=Path(path).resolve().parent, dry_run=dry_run)
