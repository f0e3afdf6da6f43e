"""The start/shutdown lifecycle shared by inlets and outlets.

A node can serve several links in several planners. Each of them *holds* the node while it
runs; ``on_start`` runs when the first holder arrives and ``on_shutdown`` when the last one
leaves, so a node shared by two planners is started once and shut down once, after both are
done with it. Calls are serialised by a per-node lock, so a second holder waits until
``on_start`` has finished before it uses the node.

The holder set keeps a holder that compares by identity (a Link, the default of any class)
itself, and any other by its ``id()``: a node shared by 100,000 links then holds no int
object per link (32 B each). A holder stays referenced until it releases the node.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any

from databay_bus._validation import optional_name

if TYPE_CHECKING:
    import asyncio

__all__ = ["Node"]

_DIRECT = object()  # the holder used when user code calls try_start()/try_shutdown() itself


def _compares_by_identity(kind: type) -> bool:
    equal: object = kind.__eq__
    hashed: object = kind.__hash__
    return equal is object.__eq__ and hashed is object.__hash__


def _holder_key(holder: Any) -> Any:
    """The holder itself when it compares by identity; else its id() (a holder with its own
    ``__eq__`` must not be confused with an equal one)."""
    return holder if _compares_by_identity(type(holder)) else id(holder)


class Node:
    """Base of :class:`Inlet` and :class:`Outlet`: a name and a reference-counted lifecycle."""

    #: For async nodes whose coroutines belong on one particular event loop (their client
    #: session lives there): returns that loop. A link whose async nodes all name the same
    #: loop runs its whole transfer there, so it crosses threads once per transfer instead
    #: of once per node.
    _get_home_loop: Callable[[], asyncio.AbstractEventLoop] | None = None

    def __init__(self, name: str | None = None) -> None:
        self._name = optional_name(name, type(self).__name__)
        self._holders: set[Any] = set()  # see _holder_key
        self._lifecycle_lock = threading.RLock()

    @property
    def name(self) -> str:
        """The node's name: the one given, or its class name."""
        return self._name if self._name is not None else type(self).__name__

    @property
    def active(self) -> bool:
        """True between the first successful start and the last shutdown."""
        return bool(self._holders)

    def try_start(self, holder: Any = _DIRECT) -> bool:
        """Register ``holder`` and run :meth:`on_start` if it is the first; True if it ran.

        If ``on_start`` raises, the holder is not registered and the exception propagates.
        """
        key = _holder_key(holder)
        with self._lifecycle_lock:
            if key in self._holders:
                return False
            first = not self._holders
            if first:
                self.on_start()
            self._holders.add(key)
            return first

    def try_shutdown(self, holder: Any = _DIRECT) -> bool:
        """Release ``holder`` and run :meth:`on_shutdown` if it was the last; True if it ran.

        The node counts as inactive even if ``on_shutdown`` raises.
        """
        return self._release_keys((_holder_key(holder),))

    def _release(self, holders: Collection[Any]) -> bool:
        """:meth:`try_shutdown` for several holders in one step (a planner stopping)."""
        if all(map(_compares_by_identity, set(map(type, holders)))):  # links: their own keys
            return self._release_keys(holders)
        return self._release_keys(list(map(_holder_key, holders)))

    def _release_keys(self, keys: Iterable[Any]) -> bool:
        with self._lifecycle_lock:
            held = len(self._holders)
            self._holders.difference_update(keys)  # walks ``keys``, never the (large) holders
            if len(self._holders) == held or self._holders:  # none of them held it, or others do
                return False
            self._holders = set()  # an emptied set keeps its big table; start afresh
            self.on_shutdown()
            return True

    def on_start(self) -> None:
        """Open resources (connections, files). Runs once before the first transfer."""

    def on_shutdown(self) -> None:
        """Close what :meth:`on_start` opened. Runs once after the last transfer."""

    def _check_initialised(self) -> bool:
        return hasattr(self, "_lifecycle_lock")
