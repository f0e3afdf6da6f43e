"""Liveness and readiness of a planner, for ``/healthz`` and ``/readyz``."""

from __future__ import annotations

from typing import Any

from databay_bus.web.history import link_label

__all__ = ["readiness_problems"]


def readiness_problems(planner: Any) -> list[str]:
    """Why the planner is not ready to serve; an empty list when it is.

    Ready means: the planner runs, every queue of its links answers, and every inlet and
    outlet of every link has started (a node whose ``on_start`` failed, ignored by
    ``ignore_exceptions``, makes the pipeline not ready).
    """
    if planner is None:
        return ["no planner"]
    problems = []
    state = getattr(getattr(planner, "state", None), "value", "unknown")
    if state != "running":
        problems.append(f"planner is {state}")
    queues: dict[int, Any] = {}
    for link in planner.links:
        queue = link.queue
        if queue is not None:
            queues[id(queue)] = queue
        if state == "running":
            for node in (*link.inlets, *link.outlets):
                if not node.active:
                    problems.append(f"link {link_label(link)}: {node.name} did not start")
    for queue in queues.values():
        try:
            queue.stats()
        except Exception as exc:
            problems.append(f"queue {queue!r} unreachable: {type(exc).__name__}: {exc}")
    return problems
