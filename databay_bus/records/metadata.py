"""MetadataKey and the merge rule for global and local metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["INLET_KEY", "MetadataKey", "merge_metadata"]

INLET_KEY = "__inlet__"


class MetadataKey(str):
    """Marks a class attribute whose value is a metadata key an outlet reads.

    Name keys after the outlet to avoid clashes: ``CSV_FILE = MetadataKey('CsvOutlet.CSV_FILE')``
    (a plain string annotated ``: MetadataKey`` works too, as in Databay).
    """

    __slots__ = ()


def merge_metadata(
    global_metadata: Mapping[str, Any], local_metadata: Mapping[str, Any] | None, inlet_name: str
) -> dict[str, Any]:
    """Return global metadata overridden by local metadata, with ``'__inlet__'`` set last."""
    merged = dict(global_metadata)
    if local_metadata:
        merged.update(local_metadata)
    merged[INLET_KEY] = inlet_name
    return merged
