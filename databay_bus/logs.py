"""The ``databay_bus`` logger tree, its line format and its one default handler.

Every module logs to ``logging.getLogger(__name__)``, so the tree mirrors the package::

    databay_bus                      level WARNING, default handler below
    databay_bus.link                 transfers ('{update} transfer', '{update} done')
    databay_bus.planners.base        start, shutdown, added/removed links, planner-level errors
    databay_bus.planners.aps_planner / .schedule_planner
    databay_bus.inlets.<module> / databay_bus.outlets.<module>
    databay_bus.processors.buffer
    databay_bus.queue.<module>

Lines look like Databay's::

    2026-11-23 10:15:02.118|W| prices: transfer skipped, ... (databay_bus.link)

The default handler prints to stderr only while the application has not configured logging
itself (the root logger has no handlers); once it has, records simply propagate, so nothing is
printed twice. Raise the verbosity with ``logging.getLogger('databay_bus').setLevel(logging.DEBUG)``
and remove the handler with :func:`remove_default_handler`.
"""

from __future__ import annotations

import logging
import time

__all__ = [
    "LOGGER_NAME",
    "ISO8601Formatter",
    "install_default_handler",
    "remove_default_handler",
]

LOGGER_NAME = "databay_bus"
DEFAULT_FORMAT = "%(asctime)s|%(levelname)-.1s| %(message)s (%(name)s)"


class ISO8601Formatter(logging.Formatter):
    """Formats times as ``YYYY-MM-DD HH:MM:SS.mmm`` (pretty) or ISO 8601 with zone offset.

    Args:
        millis_precision: digits of the fraction of a second, 0 to 6.
        pretty: a space instead of ``T`` and no zone offset.
    """

    def __init__(
        self, fmt: str | None = DEFAULT_FORMAT, *, millis_precision: int = 3, pretty: bool = True
    ) -> None:
        super().__init__(fmt)
        self.millis_precision = millis_precision
        self.pretty = pretty

    def set_pretty(self, pretty: bool = True) -> None:
        """Switch between the pretty and the strict ISO 8601 time format."""
        self.pretty = pretty

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        local = time.localtime(record.created)
        if datefmt:
            return time.strftime(datefmt, local)
        text = time.strftime("%Y-%m-%d %H:%M:%S" if self.pretty else "%Y-%m-%dT%H:%M:%S", local)
        if self.millis_precision > 0:
            digits = int((record.created % 1) * 10**self.millis_precision)
            text += f".{digits:0{self.millis_precision}d}"
        if not self.pretty:
            text += time.strftime("%z", local)
        return text


class _DefaultHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Prints only while the application has configured no logging of its own."""

    def emit(self, record: logging.LogRecord) -> None:
        if logging.getLogger().handlers:
            return
        super().emit(record)


def install_default_handler() -> None:
    """Attach the default stderr handler to the ``databay_bus`` logger (done once at import)."""
    logger = logging.getLogger(LOGGER_NAME)
    if any(isinstance(h, _DefaultHandler) for h in logger.handlers):
        return
    handler = _DefaultHandler()
    handler.setFormatter(ISO8601Formatter())
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.WARNING)


def remove_default_handler() -> None:
    """Detach the default handler, e.g. when the application routes logs elsewhere."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in [h for h in logger.handlers if isinstance(h, _DefaultHandler)]:
        logger.removeHandler(handler)
