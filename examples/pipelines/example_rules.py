"""Predicates for the PredicateRouter of examples/pipelines/full.toml.

The pipeline file puts this directory on ``sys.path`` (``python_path = ["${PIPELINE_DIR}"]``)
and names the function ``example_rules.is_extreme``.
"""

from __future__ import annotations

from databay_bus import Record

__all__ = ["is_extreme"]


def is_extreme(record: Record) -> bool:
    """True for readings below 5 or above 95."""
    value = record.payload
    return isinstance(value, (int, float)) and not 5 <= value <= 95
