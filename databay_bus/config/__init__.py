"""Pipelines declared in a file: ``databay_bus.config.load('pipeline.toml').planner.start()``.

The file format is described in docs/config.md; ``databay-bus validate FILE`` checks a file
and prints what it resolves to.
"""

from __future__ import annotations

from databay_bus.config.loader import build, load, loads, parse_duration
from databay_bus.config.names import BUILTINS
from databay_bus.config.objects import factory
from databay_bus.config.pipeline import Pipeline
from databay_bus.errors import ConfigError
from databay_bus.observers import LogObserver

__all__ = [
    "BUILTINS",
    "ConfigError",
    "LogObserver",
    "Pipeline",
    "build",
    "factory",
    "load",
    "loads",
    "parse_duration",
]
