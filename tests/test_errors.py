"""The exception tree: one root, builtin bases that fit, Databay's names and bases kept."""

from __future__ import annotations

import inspect

import pytest
from core_fakes import ListInlet, ManualPlanner, RecordingOutlet

from databay_bus import Link, errors
from databay_bus.errors import (
    ConfigurationError,
    DatabayBusError,
    ImplementationError,
    InvalidLinkError,
    InvalidNodeError,
    MissingDependencyError,
    MissingLinkError,
    MissingNodeError,
    PlannerStateError,
    ScheduleIntervalError,
    TransferError,
    describe,
)

ALL_ERRORS = [
    getattr(errors, name)
    for name in errors.__all__
    if inspect.isclass(getattr(errors, name)) and issubclass(getattr(errors, name), BaseException)
]


def test_every_error_is_a_databay_bus_error() -> None:
    assert len(ALL_ERRORS) >= 15
    for error in ALL_ERRORS:
        assert issubclass(error, DatabayBusError), error
    assert "DatabayBusError" in errors.__all__


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        # Databay's names with Databay's bases
        (MissingLinkError, (RuntimeError,)),
        (ImplementationError, (RuntimeError,)),
        (InvalidNodeError, (RuntimeError, TypeError)),
        (ScheduleIntervalError, (Exception,)),
        # ours, each with the builtin that fits
        (MissingNodeError, (InvalidNodeError, LookupError)),
        (InvalidLinkError, (TypeError,)),
        (ConfigurationError, (ValueError,)),
        (ScheduleIntervalError, (ConfigurationError, ValueError)),
        (PlannerStateError, (RuntimeError,)),
        (MissingDependencyError, (ImportError,)),
        (TransferError, (RuntimeError,)),
    ],
)
def test_builtin_bases(error: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    for base in bases:
        assert issubclass(error, base)


def test_databay_code_catching_type_error_still_works() -> None:
    try:
        Link(object(), RecordingOutlet(), 1)  # type: ignore[arg-type]
    except TypeError as caught:
        assert isinstance(caught, InvalidNodeError)
    else:  # pragma: no cover - the assertion below explains
        pytest.fail("a non-inlet was accepted")
    with pytest.raises(TypeError):
        ManualPlanner().add_links("not a link")  # type: ignore[arg-type]


def test_describe_names_value_and_type() -> None:
    assert describe("x") == "'x' (str)"
    assert describe(None) == "None (NoneType)"
    long = describe("y" * 200)
    assert long.endswith("... (str)") and len(long) < 100


def test_missing_dependency_names_the_extra() -> None:
    error = MissingDependencyError("aiohttp", "http", "HttpInlet")
    assert (error.package, error.extra) == ("aiohttp", "http")
    assert "pip install 'databay_bus[http]'" in str(error)
    assert "HttpInlet" in str(error)


def test_transfer_error_keeps_every_error() -> None:
    causes = [ValueError("a"), OSError("b")]
    error = TransferError("two failed", causes)
    assert error.errors == causes
    assert str(error) == "two failed"


class TestBadInputMessages:
    """Each bad input names the object it was given to and the value."""

    def test_link_interval(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            Link(ListInlet(), RecordingOutlet(), -3, tags="prices")
        assert "prices" in str(caught.value) and "-3 (int)" in str(caught.value)

    def test_link_node(self) -> None:
        with pytest.raises(InvalidNodeError) as caught:
            Link(ListInlet(), [RecordingOutlet(), 12], 1, tags="prices")  # type: ignore[list-item]
        text = str(caught.value)
        assert "prices" in text and "outlets[1]" in text and "12 (int)" in text

    def test_planner_link(self) -> None:
        with pytest.raises(InvalidLinkError) as caught:
            ManualPlanner().add_links([3.5])  # type: ignore[list-item]
        assert "ManualPlanner" in str(caught.value) and "3.5 (float)" in str(caught.value)

    def test_planner_state(self) -> None:
        with ManualPlanner() as planner, pytest.raises(PlannerStateError) as caught:
            planner.start(block=False)
        assert "ManualPlanner" in str(caught.value) and "running" in str(caught.value)

    def test_missing_link(self) -> None:
        link = Link(ListInlet(), RecordingOutlet(), 1, tags="ghost")
        with pytest.raises(MissingLinkError) as caught:
            ManualPlanner().remove_links(link)
        assert "ghost" in str(caught.value) and "ManualPlanner" in str(caught.value)
