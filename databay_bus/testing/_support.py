"""What InletTester and OutletTester share: running a node's sync-or-async call, subtests."""

from __future__ import annotations

import functools
import inspect
import unittest
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from databay_bus._concurrency import run_coroutine

__all__ = ["ContractTestCase", "for_each", "resolve"]

T = TypeVar("T", bound=unittest.TestCase)


class ContractTestCase(unittest.TestCase):
    """Base of the testers: pytest collects their subclasses, not the testers themselves.

    A tester imported into a test module would otherwise also run on its default node.
    A class that sets ``__test__`` in its own body keeps that value.
    """

    __test__ = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in cls.__dict__:
            cls.__test__ = True


def resolve(value: Any) -> Any:
    """Return ``value``, or what it resolves to when it is awaitable (an async pull/push)."""
    if inspect.isawaitable(value):
        return run_coroutine(_wait(value))
    return value


async def _wait(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def for_each(attribute: str, current: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorate a test to run once per node in ``self.<attribute>``, each in a subtest.

    Before each run the node is set as ``self.<current>`` (Databay's style: ``self.inlet``).
    It is also passed as the argument after ``self`` when the test asks for one the caller
    did not give (our style: ``def test_x(self, inlet)``). Arguments the caller gives, such as
    a mock from an outer ``@patch``, are passed on unchanged.
    """

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(test, follow_wrapped=False)

        @functools.wraps(test)
        def run(self: T, *args: Any, **kwargs: Any) -> None:
            for node in getattr(self, attribute):
                setattr(self, current, node)
                with self.subTest(node=repr(node)):
                    if _complete(signature, self, args, kwargs):
                        test(self, *args, **kwargs)
                    else:
                        test(self, node, *args, **kwargs)

        return run

    return decorate


def _complete(
    signature: inspect.Signature, self: object, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> bool:
    """True when ``self, *args, **kwargs`` fill every required parameter of ``signature``."""
    try:
        signature.bind(self, *args, **kwargs)
    except TypeError:
        return False
    return True
