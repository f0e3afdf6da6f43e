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
printed twice. Raise the verbosity with :func:`enable` (``enable('INFO')``) or
``logging.getLogger('databay_bus').setLevel(...)``, switch to one JSON object per line with
``enable(format='json')`` (or :class:`JsonFormatter` on a handler of your own), and remove the
handler with :func:`remove_default_handler`.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

__all__ = [
    "FORMATS",
    "LOGGER_NAME",
    "ISO8601Formatter",
    "JsonFormatter",
    "enable",
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


#: Attributes every LogRecord has; anything else on a record came from ``extra=...``.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_FIELDS = ("link", "transfer", "inlet", "outlet")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
    and, when the record is about them, ``link``, ``transfer``, ``inlet`` and ``outlet``.

    Those fields come from ``extra={...}`` of the log call, or else from the objects the message
    was formatted with (an Update gives ``link`` and ``transfer``, a Link its tags, an Inlet or
    Outlet its name), so every databay_bus message is covered without special calls. Other
    ``extra`` keys are kept as fields too; a traceback goes in ``exc``.
    """

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(_fields_from_args(record.args))
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def _utc_iso(created: float) -> str:
    millis = int((created % 1) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


def _fields_from_args(args: Any) -> dict[str, Any]:
    """``link``/``transfer``/``inlet``/``outlet`` from the objects a message names."""
    if not args or not isinstance(args, tuple):
        return {}
    from databay_bus._node import Node  # late: this module is imported first of all

    fields: dict[str, Any] = {}
    for arg in args:
        number = getattr(arg, "transfer_number", None)
        tags = getattr(arg, "tags", None)
        if isinstance(number, int) and isinstance(tags, list):  # an Update, or a Link
            fields.setdefault("link", ".".join(str(tag) for tag in tags))
            if not hasattr(arg, "interval"):  # a Link's transfer_number is its last one
                fields.setdefault("transfer", number)
        elif isinstance(arg, Node):
            kind = "outlet" if hasattr(arg, "push") else "inlet"
            fields.setdefault(kind, arg.name)
    return fields


FORMATS = ("text", "json")


def enable(level: int | str = "INFO", format: str | None = None) -> None:
    """Show databay_bus logs from ``level`` up, in one call (e.g. INFO progress in a script).

    Sets the ``databay_bus`` logger's level and makes sure the default handler is attached.
    That handler prints to stderr while the application has configured no logging of its own;
    otherwise records go to the application's handlers as usual.

    Args:
        level: a level name (``'INFO'``) or number.
        format: ``'text'`` (Databay's line format) or ``'json'`` (:class:`JsonFormatter`) for
            the default handler; None keeps the current one.

    Raises:
        ValueError: an unknown level or format.
    """
    if isinstance(level, str):
        number = logging.getLevelName(level.upper())
        if not isinstance(number, int):
            raise ValueError(f"enable: unknown log level {level!r}")
        level = number
    if format is not None and format not in FORMATS:
        raise ValueError(f"enable: format must be one of {FORMATS}, got {format!r}")
    install_default_handler()
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    if format is not None:
        formatter = JsonFormatter() if format == "json" else ISO8601Formatter()
        for handler in logger.handlers:
            if isinstance(handler, _DefaultHandler):
                handler.setFormatter(formatter)
