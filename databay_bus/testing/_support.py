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


def for_each(attribute: str) -> Callable[[Callable[[T, Any], None]], Callable[[T], None]]:
    """Decorate ``test(self, node)`` to run once per node in ``self.<attribute>``, as subtests."""

    def decorate(test: Callable[[T, Any], None]) -> Callable[[T], None]:
        @functools.wraps(test)
        def run(self: T) -> None:
            for node in getattr(self, attribute):
                with self.subTest(node=repr(node)):
                    test(self, node)

        return run

    return decorate
