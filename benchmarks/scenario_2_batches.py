"""Scenario 2: throughput with bigger transfers.

One inlet returning B records per transfer (B = 1, 100, 10 000 small dict payloads), 1 or 3
outlets, ``copy_records`` True or False; ``link.transfer()`` in a loop. Figure: records/s
(records pulled per second of transfers).
Targets at B = 10 000 with 3 outlets: copy_records=True at least 5x Databay's records/s
(every outlet isolated from the others' changes), copy_records=False at least 1.5x. At B = 1
with 3 outlets, at least 10x either way (issue 19: lanes that stay quick run on the calling
thread instead of paying a thread hop each).
"""

from __future__ import annotations

from typing import Any

from benchmarks._common import (
    BUS,
    DATABAY,
    GE,
    LIBS,
    TIMES,
    Row,
    fmt_count,
    fmt_ratio,
    make_link,
    node_classes,
    status,
    timed_loop,
    verdict,
)

__all__ = ["ID", "TITLE", "cases", "measure", "payloads", "summarize"]

ID = 2
TITLE = "B records per transfer x outlets x copy_records"
FRESH_PROCESS = False
TARGETS = {True: 5.0, False: 1.5}  # copy_records -> minimum ratio at B=10 000, 3 outlets
B1_THREE_OUTLETS = 10.0  # issue 19: minimum ratio at B=1, 3 outlets, either copy_records
_SIZES = {"full": (1, 100, 10_000), "quick": (1, 100, 10_000), "smoke": (1, 100)}
_MIN_TIME = {"full": 0.5, "quick": 0.1, "smoke": 0.01}
_REPEATS = {"full": 5, "quick": 3, "smoke": 1}


def payloads(size: int) -> list[dict[str, Any]]:
    """``size`` small, typical payloads: a few scalars and a short list each."""
    return [
        {"id": i, "name": f"item-{i}", "value": i * 0.5, "ok": i % 2 == 0, "tags": ["a", "b"]}
        for i in range(size)
    ]


def cases(mode: str) -> list[dict[str, Any]]:
    """Every combination of B, outlet count and copy_records."""
    return [
        {
            "id": f"B={size} outlets={outlets} copy={copy}",
            "size": size,
            "outlets": outlets,
            "copy": copy,
            "libs": list(LIBS),
            "repeats": _REPEATS[mode],
        }
        for size in _SIZES[mode]
        for outlets in (1, 3)
        for copy in (True, False)
    ]


def measure(lib: str, case: dict[str, Any], mode: str) -> dict[str, Any]:
    """Time transfers of B records to the outlets."""
    nodes = node_classes(lib)
    size = case["size"]
    inlet = nodes["ListInlet"](payloads(size))
    outlets = [nodes["CountOutlet"]() for _ in range(case["outlets"])]
    link = make_link(lib, [inlet], outlets, 60.0, copy_records=case["copy"])
    link.on_start()
    try:
        count, seconds = timed_loop(link.transfer, _MIN_TIME[mode], min_count=3, warmup=1)
    finally:
        link.on_shutdown()
    if any(outlet.count != (count + 1) * size for outlet in outlets):
        raise AssertionError("an outlet missed records")
    return {"records_per_s": count * size / seconds, "s_per_transfer": seconds / count}


def summarize(mode: str, results: dict[str, dict[str, Any]]) -> list[Row]:
    """One row per case; targets on B = 10 000 with 3 outlets."""
    rows = []
    for case in cases(mode):
        sides = results.get(case["id"], {})
        old = sides.get(DATABAY, {}).get("records_per_s")
        new = sides.get(BUS, {}).get("records_per_s")
        ratio = new / old if old and new else None
        target, met = "", ""
        wanted = None
        if case["size"] == 10_000 and case["outlets"] == 3:
            wanted = TARGETS[case["copy"]]
        elif case["size"] == 1 and case["outlets"] == 3:
            wanted = B1_THREE_OUTLETS
        if wanted is not None:
            target = f"{GE} {wanted:g}{TIMES} Databay's records/s"
            met = verdict(None if ratio is None else ratio >= wanted)
        rows.append(
            Row(
                ID,
                f"B={case['size']:,}, {case['outlets']} outlet(s), copy_records={case['copy']}",
                fmt_count(old, "rec/s") if old else status(sides.get(DATABAY)),
                fmt_count(new, "rec/s") if new else status(sides.get(BUS)),
                fmt_ratio(ratio, "faster", "slower") if ratio else "—",
                target,
                met,
            )
        )
    return rows
