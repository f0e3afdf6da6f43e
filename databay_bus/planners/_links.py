"""LinkList: what ``planner.links`` returns, a snapshot that refuses to be changed."""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["LinkList"]


class LinkList(list):  # type: ignore[type-arg]
    """A planner's links at one moment: a list to read, compare and iterate.

    In Databay ``planner.links`` was the planner's own list, so ``planner.links.remove(link)``
    took the link out of the list while its job went on running. Here it is a snapshot, and
    the methods that would change it raise, pointing at ``add_links``/``remove_links``,
    rather than silently changing a copy.
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(
            "planner.links is a snapshot of the planner's links; use planner.add_links() or "
            "planner.remove_links() to change them"
        )

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple[type[list], tuple[list[Any]]]:  # type: ignore[type-arg]
        # copy.copy() rebuilds a plain list: the copy is the caller's to change.
        return (list, (list(self),))
