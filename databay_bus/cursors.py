"""The source side of a transfer: inlet cursors, and telling inlets when their records are safe.

In ``pull(update)`` an inlet reads its last committed cursor as ``update.cursor`` and stages
the next one with ``update.commit_cursor(value)``. The link runs each inlet's pull with
``(its SourceSide, the inlet)`` marked as current (a context variable, set in the pull's own
thread or task: :func:`enter_pull`), which is how the one Update knows which inlet asks; the
inlet's :class:`PullCursor` is made only when it asks. After the pulls the
:class:`SourceSide` holds what they staged and the records each inlet produced. The link's
delivery commits the cursors (the queued one in the enqueue transaction, the direct one
once every outlet took the records), then the inlets hear ``on_records_safe`` — or
``on_records_failed`` when the records could not be made safe. See docs/cursors.md.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from databay_bus._concurrency import is_async_callable, off_loop
from databay_bus.errors import CursorError, describe
from databay_bus.queue.cursors import CursorWrite, StoredCursor, encode_cursor
from databay_bus.records import Record

if TYPE_CHECKING:
    from databay_bus.inlets.base import Inlet
    from databay_bus.update import Update

__all__ = ["CursorSource", "PullCursor", "SourceSide", "current_pull", "enter_pull", "leave_pull"]

_LOGGER = logging.getLogger(__name__)
_CURRENT: contextvars.ContextVar[tuple[SourceSide, Inlet] | None] = contextvars.ContextVar(
    "databay_bus_pull", default=None
)


def enter_pull(
    side: SourceSide, inlet: Inlet
) -> contextvars.Token[tuple[SourceSide, Inlet] | None]:
    """Mark ``inlet``'s pull of ``side``'s transfer as running in this thread or task; pass
    the result to :func:`leave_pull` when the pull returns."""
    return _CURRENT.set((side, inlet))


def leave_pull(token: contextvars.Token[Any]) -> None:
    """The pull marked by :func:`enter_pull` returned."""
    _CURRENT.reset(token)


def current_pull(update: Update) -> PullCursor | None:
    """The cursor of the pull running in this thread or task for ``update``, or None."""
    marked = _CURRENT.get()
    if marked is None or marked[0].update is not update:
        return None
    return marked[0].cursor_for(marked[1])


class CursorSource(Protocol):
    """Where a link's committed cursors are read from (its delivery)."""

    def read_cursor(self, inlet: str) -> StoredCursor | None:
        """The committed cursor of the link's inlet named ``inlet``, or None."""


class PullCursor:
    """One inlet's cursor during one pull: read lazily, staged at most once.

    One is made per inlet and transfer, so the defaults are class attributes: construction
    sets three attributes only.
    """

    #: The cursor to write, once ``commit_cursor`` was called.
    staged: CursorWrite | None = None
    #: True while the pull runs; reads and commits after it are refused.
    open = True
    _value: Any = None
    _version = -1  # -1: not read yet

    def __init__(self, inlet: Inlet, source: CursorSource) -> None:
        self.inlet = inlet
        self._source = source

    def _load(self) -> None:
        if self._version < 0:
            stored = self._source.read_cursor(self.inlet.name)
            if stored is None:
                self._version = 0
            else:
                self._value, self._version = stored.value, stored.version

    def read(self) -> Any:
        """``update.cursor``: the last committed value (None before the first commit)."""
        if not self.open:
            raise CursorError(f"{self.inlet!r}: update.cursor read after its pull returned")
        self._load()
        return self._value

    def commit(self, value: object) -> None:
        """``update.commit_cursor(value)``: stage ``value`` for this pull."""
        if not self.open:
            raise CursorError(
                f"{self.inlet!r}: update.commit_cursor({describe(value)}) called after its "
                f"pull returned; commit inside pull(update)"
            )
        if self.staged is not None:
            raise CursorError(
                f"{self.inlet!r}: update.commit_cursor called twice in one pull (first "
                f"{self.staged.text}, then {describe(value)}); commit once, the last position"
            )
        text = encode_cursor(value, repr(self.inlet))
        self._load()
        self.staged = CursorWrite(text, self._version)


class SourceSide:
    """What the pulls of one transfer staged, and whom to tell that their records are safe.

    One is made per transfer that pulls; what no inlet uses is never built (the defaults are
    class attributes).

    Args:
        update: the transfer's Update.
        source: where committed cursors are read (the link's delivery).
    """

    _pulls: dict[int, PullCursor] | None = None
    _hooked: list[tuple[Inlet, list[Record]]] | None = None
    #: Records the delivery could not store (a codec error under ignore_exceptions).
    unsafe: list[Record] | None = None
    #: Why the last of :attr:`unsafe` could not be stored.
    unsafe_error: BaseException | None = None

    def __init__(self, update: Update, source: CursorSource) -> None:
        self.update = update
        self.source = source

    def cursor_for(self, inlet: Inlet) -> PullCursor:
        """The cursor of ``inlet``'s pull in this transfer (made on first use)."""
        pulls = self._pulls
        if pulls is None:
            pulls = self._pulls = {}
        pull = pulls.get(id(inlet))
        if pull is None:
            pull = pulls[id(inlet)] = PullCursor(inlet, self.source)
        return pull

    def done(self, inlet: Inlet, result: object) -> None:
        """``inlet``'s pull ended; ``result`` is its records, or the exception it raised."""
        if self._pulls is not None:
            pull = self._pulls.get(id(inlet))
            if pull is not None:
                pull.open = False
                if not isinstance(result, list):
                    pull.staged = None  # a failed pull commits nothing: its window comes again
        if inlet._acks_safe and result and isinstance(result, list):
            if self._hooked is None:
                self._hooked = []
            self._hooked.append((inlet, result))

    def not_stored(self, record: Record, error: BaseException) -> None:
        """The delivery could not store ``record`` (its inlet will hear it is not safe)."""
        if self.unsafe is None:
            self.unsafe = []
        self.unsafe.append(record)
        self.unsafe_error = error

    def cursors(self) -> dict[str, CursorWrite]:
        """The staged cursors by inlet name.

        Raises:
            CursorError: two inlets of the link with the same name staged one.
        """
        staged: dict[str, CursorWrite] = {}
        for pull in (self._pulls or {}).values():
            if pull.staged is None:
                continue
            name = pull.inlet.name
            if name in staged:
                raise CursorError(
                    f"{pull.inlet!r}: two inlets named {name!r} in one link commit cursors; "
                    f"cursors are kept per inlet name: give each a distinct name=..."
                )
            staged[name] = pull.staged
        return staged

    @property
    def quiet(self) -> bool:
        """True when there is nothing to commit and no one to tell."""
        if self._hooked:
            return False
        return self._pulls is None or all(p.staged is None for p in self._pulls.values())

    def _split(self) -> list[tuple[Inlet, list[Record], list[Record]]]:
        """Each hooked inlet's records, as (safe, unsafe)."""
        hooked = self._hooked or []
        if not self.unsafe:
            return [(inlet, records, []) for inlet, records in hooked]
        bad = {id(record) for record in self.unsafe}
        known = {id(record) for _, records in hooked for record in records}
        if not bad <= known:  # processors replaced records: no telling which: none is safe
            return [(inlet, [], records) for inlet, records in hooked]
        return [
            (
                inlet,
                [r for r in records if id(r) not in bad],
                [r for r in records if id(r) in bad],
            )
            for inlet, records in hooked
        ]

    def notify(self, error: BaseException | None) -> None:
        """Tell each inlet its records are safe (``error`` None) or not; never raises."""
        why = error or self.unsafe_error
        for inlet, safe, unsafe in self._calls(error):
            for method, records, args in _hook_calls(inlet, safe, unsafe, why):
                _call_hook(inlet, method, records, self.update, args)

    async def notify_async(self, error: BaseException | None) -> None:
        """:meth:`notify` from a transfer's event loop (awaits ``async def`` hooks)."""
        why = error or self.unsafe_error
        for inlet, safe, unsafe in self._calls(error):
            for method, records, args in _hook_calls(inlet, safe, unsafe, why):
                if is_async_callable(method):
                    try:
                        await method(records, self.update, *args)
                    except Exception as exc:
                        _log_hook_failure(inlet, method, exc)
                else:
                    await off_loop(_call_hook, inlet, method, records, self.update, args)

    def _calls(self, error: BaseException | None) -> list[tuple[Inlet, list[Record], list[Record]]]:
        if error is None:
            return self._split()
        return [(inlet, [], records) for inlet, records in self._hooked or []]


def _hook_calls(
    inlet: Inlet, safe: list[Record], unsafe: list[Record], error: BaseException | None
) -> list[tuple[Any, list[Record], tuple[Any, ...]]]:
    calls: list[tuple[Any, list[Record], tuple[Any, ...]]] = []
    if safe:
        calls.append((inlet.on_records_safe, safe, ()))
    if unsafe:
        calls.append((inlet.on_records_failed, unsafe, (error,)))
    return calls


def _call_hook(
    inlet: Inlet, method: Any, records: list[Record], update: Update, args: tuple[Any, ...]
) -> None:
    try:
        result = method(records, update, *args)
        if isinstance(result, Awaitable):  # Inlet refuses async hooks with a sync pull
            close = getattr(result, "close", None)
            if callable(close):
                close()
            raise TypeError(f"{method.__name__} is async but {inlet!r} pulls synchronously")
    except Exception as exc:
        _log_hook_failure(inlet, method, exc)


def _log_hook_failure(inlet: Inlet, method: Any, exc: Exception) -> None:
    _LOGGER.error(
        "%r: %s failed; the source may deliver these records again",
        inlet,
        getattr(method, "__name__", method),
        exc_info=exc,
    )
