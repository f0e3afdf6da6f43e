"""Bad arguments across the API: each raises a databay_bus error naming the owner and the value.

A value of the wrong type is an ``ArgumentTypeError`` (so also a ``TypeError``); a value of the
right type that cannot work is a ``ConfigurationError`` (a ``ValueError``). Issue 14's gaps
outside config files and queue storage, and issue 13 item 12's link checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from core_fakes import ListInlet, ManualPlanner, RecordingOutlet

from databay_bus import Inlet, Link, Outlet, Record
from databay_bus.errors import ArgumentTypeError, ConfigurationError, DatabayBusError
from databay_bus.inlets import HttpInlet, RandomIntInlet
from databay_bus.observers import Event
from databay_bus.planners import ApsPlanner, SchedulePlanner
from databay_bus.processors import Buffer
from databay_bus.queue.retry import RetryPolicy
from databay_bus.update import Update

NAN, INF = math.nan, math.inf


def link(**kwargs: Any) -> Link:
    return Link(ListInlet([1]), RecordingOutlet(), 1, **kwargs)


class Pull(Inlet):
    def pull(self, update: Update) -> list[Any]:
        return []


class Push(Outlet):
    def push(self, records: list[Record], update: Update) -> None:
        pass


def check(
    make: Callable[[], object], error: type[Exception], *shown: str
) -> DatabayBusError:
    """``make()`` raises ``error`` (a databay_bus error) whose message shows each of ``shown``."""
    with pytest.raises(error) as caught:
        make()
    assert isinstance(caught.value, DatabayBusError)
    for text in shown:
        assert text in str(caught.value), (text, str(caught.value))
    return caught.value


WRONG_TYPES: list[tuple[str, Callable[[], object], tuple[str, ...]]] = [
    ("aps threads str", lambda: ApsPlanner(threads="4"), ("ApsPlanner", "threads", "'4' (str)")),
    ("schedule threads str", lambda: SchedulePlanner(threads="4"), ("SchedulePlanner", "'4'")),
    (
        "job_defaults_override list",
        lambda: ApsPlanner(job_defaults_override=[("coalesce", True)]),
        ("ApsPlanner", "job_defaults_override", "(list)"),
    ),
    (
        "executors_override str",
        lambda: ApsPlanner(executors_override="threadpool"),
        ("ApsPlanner", "executors_override", "'threadpool' (str)"),
    ),
    ("link ignore_exceptions", lambda: link(ignore_exceptions="False"), ("Link", "'False'")),
    ("link copy_records", lambda: link(copy_records="no"), ("copy_records", "'no' (str)")),
    ("link immediate", lambda: link(immediate_transfer="false"), ("immediate_transfer",)),
    ("link flag int", lambda: link(ignore_exceptions=1), ("ignore_exceptions", "1 (int)")),
    (
        "planner ignore_exceptions",
        lambda: ApsPlanner(ignore_exceptions="no"),
        ("ApsPlanner", "ignore_exceptions", "'no' (str)"),
    ),
    (
        "planner immediate_transfer",
        lambda: ManualPlanner(immediate_transfer="yes"),
        ("ManualPlanner", "immediate_transfer", "'yes'"),
    ),
    (
        "planner shutdown_at_exit",
        lambda: ManualPlanner(shutdown_at_exit="no"),
        ("ManualPlanner", "shutdown_at_exit", "'no' (str)"),
    ),
    ("retry jitter bool", lambda: RetryPolicy(jitter=True), ("RetryPolicy", "jitter", "True")),
    ("retry multiplier str", lambda: RetryPolicy(multiplier="2"), ("multiplier", "'2' (str)")),
    ("inlet metadata str", lambda: Pull(metadata="x"), ("Pull", "metadata", "'x' (str)")),
    ("record metadata str", lambda: Record(1, metadata="x"), ("Record", "'x' (str)")),
    ("outlet name int", lambda: Push(name=5), ("Push", "name", "5 (int)")),
    ("link interval str", lambda: Link(ListInlet([1]), RecordingOutlet(), "5"), ("'5' (str)",)),
    ("link tags int", lambda: link(tags=5), ("tags", "5 (int)")),
    ("link tags list of int", lambda: link(tags=["a", 1]), ("tags", "['a', 1]")),
    ("link processor", lambda: link(processors=[print, "x"]), ("processors[1]", "'x' (str)")),
    ("link grouper", lambda: link(groupers=3), ("groupers[0]", "3 (int)")),
    ("buffer count str", lambda: Buffer(count_threshold="3"), ("Buffer", "count_threshold")),
    ("buffer on_reset", lambda: Buffer(on_reset=5), ("Buffer", "on_reset", "5 (int)")),
    ("buffer and/or flag", lambda: Buffer(conjugate_controllers="yes"), ("conjugate",)),
    ("http timeout str", lambda: HttpInlet("http://h/", timeout="3"), ("timeout", "'3'")),
    ("http json str", lambda: HttpInlet("http://h/", json="no"), ("HttpInlet", "json", "'no'")),
    ("random min str", lambda: RandomIntInlet(min="0"), ("RandomIntInlet", "min", "'0'")),
]


@pytest.mark.parametrize(
    ("make", "shown"), [case[1:] for case in WRONG_TYPES], ids=[case[0] for case in WRONG_TYPES]
)
def test_wrong_type_is_a_type_error(make: Callable[[], object], shown: tuple[str, ...]) -> None:
    error = check(make, ArgumentTypeError, *shown)
    assert isinstance(error, TypeError)
    assert isinstance(error, ConfigurationError)  # handlers written for the old error still work


WRONG_VALUES: list[tuple[str, Callable[[], object], tuple[str, ...]]] = [
    ("aps threads 0", lambda: ApsPlanner(threads=0), ("ApsPlanner", "threads", "0 (int)")),
    ("aps threads -1", lambda: ApsPlanner(threads=-1), ("ApsPlanner", "-1 (int)")),
    ("schedule threads 0", lambda: SchedulePlanner(threads=0), ("SchedulePlanner", "0 (int)")),
    ("schedule threads -1", lambda: SchedulePlanner(threads=-1), ("SchedulePlanner", "-1")),
    ("retry max_delay nan", lambda: RetryPolicy(max_delay=NAN), ("max_delay", "nan (float)")),
    ("retry max_delay inf", lambda: RetryPolicy(max_delay=INF), ("max_delay", "inf (float)")),
    ("retry initial nan", lambda: RetryPolicy(initial_delay=NAN), ("initial_delay", "nan")),
    ("retry multiplier nan", lambda: RetryPolicy(multiplier=NAN), ("multiplier", "nan")),
    ("retry multiplier inf", lambda: RetryPolicy(multiplier=INF), ("multiplier", "inf")),
    ("retry jitter nan", lambda: RetryPolicy(jitter=NAN), ("jitter", "nan")),
    ("outlet name empty", lambda: Push(name=""), ("Push", "name", "'' (str)")),
    ("inlet name blank", lambda: Pull(name="  "), ("Pull", "name", "'  ' (str)")),
    ("link tags empty", lambda: link(tags=""), ("tag", "'' (str)")),
    ("link tags empty in list", lambda: link(tags=["a", ""]), ("tag", "['a', '']")),
    ("buffer count -1", lambda: Buffer(count_threshold=-1), ("count_threshold", "-1 (int)")),
    ("buffer time nan", lambda: Buffer(time_threshold=NAN), ("time_threshold", "nan")),
    ("http timeout 0", lambda: HttpInlet("http://h/", timeout=0), ("timeout", "0 (int)")),
    ("http timeout inf", lambda: HttpInlet("http://h/", timeout=INF), ("timeout", "inf")),
]


@pytest.mark.parametrize(
    ("make", "shown"), [case[1:] for case in WRONG_VALUES], ids=[case[0] for case in WRONG_VALUES]
)
def test_wrong_value_is_a_value_error(make: Callable[[], object], shown: tuple[str, ...]) -> None:
    error = check(make, ConfigurationError, *shown)
    assert isinstance(error, ValueError)
    assert not isinstance(error, TypeError)


def test_valid_values_still_accepted() -> None:
    assert ApsPlanner(threads=1, job_defaults_override={}, executors_override=None).threads == 1
    assert SchedulePlanner(threads=2).threads == 2
    assert RetryPolicy(max_delay=0, jitter=0, multiplier=1).delay(3) == 0
    assert link(ignore_exceptions=True, copy_records=False, tags=("a", "b")).tags == ["a", "b"]
    assert Record(1, metadata={"k": 1}).metadata == {"k": 1}
    assert Pull(metadata={"k": 1}, name="pull").name == "pull"


def test_removing_a_bound_method_observer() -> None:
    """``obj.method`` is a new object at every access: removal compares by equality."""

    class Watcher:
        def __init__(self) -> None:
            self.events: list[Event] = []

        def seen(self, event: Event) -> None:
            self.events.append(event)

    removed, kept = Watcher(), Watcher()
    planner = ManualPlanner(link(tags="observed"))
    planner.add_observer(removed.seen)
    planner.add_observer(kept.seen)
    planner.remove_observer(removed.seen)
    planner.force_transfer()
    assert planner.flush_observers(10)
    assert kept.events  # events were sent...
    assert removed.events == []  # ...but not to the removed observer
