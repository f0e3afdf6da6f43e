"""Records, metadata keys and the helpers that move them."""

from __future__ import annotations

from databay_bus.records.codecs import Codec, JsonCodec, OrjsonCodec, PickleCodec, default_codec
from databay_bus.records.metadata import INLET_KEY, MetadataKey, merge_metadata
from databay_bus.records.record import Record

__all__ = [
    "INLET_KEY",
    "Codec",
    "JsonCodec",
    "MetadataKey",
    "OrjsonCodec",
    "PickleCodec",
    "Record",
    "default_codec",
    "merge_metadata",
]
