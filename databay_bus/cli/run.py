"""``databay-bus run PIPELINE``: run a pipeline until a signal or a bound, then stop gracefully."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from databay_bus import logs
from databay_bus._signals import stop_event_on_signals
from databay_bus.cli._common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandFailure,
    level,
    load_pipeline,
    positive_float,
    positive_int,
)
from databay_bus.errors import QueueError

__all__ = ["ORDER", "register"]

ORDER = 10

_LOGGER = logging.getLogger(__name__)

_REASONS = {
    "stopped": "signal received",
    "duration": "--duration reached",
    "transfers": "--transfers reached",
}


def register(commands: Any) -> None:
    """Add the ``run`` command."""
    run = commands.add_parser(
        "run",
        help="run a pipeline until SIGINT/SIGTERM (or a bound)",
        description="Load PIPELINE, start its planner and run until SIGINT or SIGTERM, "
        "--duration or --transfers; then shut down gracefully and exit 0.",
    )
    run.add_argument("pipeline", metavar="PIPELINE", help="the pipeline file (.toml or .json)")
    run.add_argument(
        "--duration", type=positive_float, metavar="S", help="stop after S seconds ('90', '5m')"
    )
    run.add_argument(
        "--transfers",
        type=positive_int,
        metavar="N",
        help="stop once every link has completed at least N transfers",
    )
    run.add_argument(
        "--status-interval",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="log one status line per link every S seconds at INFO (default 10)",
    )
    run.add_argument(
        "--log-level",
        type=level,
        metavar="LEVEL",
        help="level of the databay_bus logger (default: the file's log_level, else INFO)",
    )
    run.add_argument(
        "--web",
        metavar="HOST:PORT",
        help="serve the web interface there (overrides the file's [web] listen; docs/web.md)",
    )
    run.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default="text",
        help="'text' (default) or 'json': one JSON object per line with link, outlet and "
        "transfer fields",
    )
    run.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop (exit 1) at the first failed transfer, for batch jobs; by default a "
        "failed transfer is logged and the pipeline keeps running",
    )
    run.add_argument(
        "--shutdown-timeout",
        type=positive_float,
        default=30.0,
        metavar="S",
        help="wait at most S seconds for transfers in flight when stopping (default 30); "
        "records of a transfer still hung then stay queued",
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    """Run the pipeline; print each link's final status line and why it stopped."""
    try:
        pipeline = load_pipeline(args.pipeline)
    except QueueError as exc:  # a queue in use or unusable: a runtime failure, not a bad file
        raise CommandFailure(" ".join(str(exc).split())) from None
    chosen = args.log_level or pipeline.log_level or logging.INFO
    pipeline.configure_logging(chosen)
    logs.enable(chosen, format=args.log_format)
    _unattended(args, pipeline)
    stop = threading.Event()
    _LOGGER.info("running %s (%d links)", args.pipeline, len(pipeline.links))
    web = _web_interface(args, pipeline)
    if web is None:
        with stop_event_on_signals(stop, at_once=_exit_at_once):
            reason = pipeline.run(
                duration=args.duration,
                transfers=args.transfers,
                stop=stop,
                status_interval=args.status_interval,
                shutdown_timeout=args.shutdown_timeout,
            )
    else:
        with stop_event_on_signals(stop, at_once=_exit_at_once):
            pipeline, reason = _run_served(args, pipeline, web, stop)
    for line in _final_status(pipeline):
        print(line)
    if reason == "failed":
        raise CommandFailure("the pipeline stopped after an error (see the log above)")
    print(f"stopped ({_REASONS[reason]})")
    return EXIT_OK


def _unattended(args: argparse.Namespace, pipeline: Any) -> None:
    """A service keeps running through failed transfers unless ``--fail-fast`` or the file's
    ``[planner]`` says otherwise; its shutdown waits at most ``--shutdown-timeout``."""
    planner = pipeline.planner
    if args.fail_fast:
        planner.ignore_exceptions = False
    elif "ignore_exceptions" not in pipeline.planner_spec[1]:
        planner.ignore_exceptions = True
    planner.shutdown_timeout = args.shutdown_timeout


def _exit_at_once(signum: int, frame: FrameType | None) -> None:
    """A second SIGINT/SIGTERM: leave now, without waiting for transfers or closing queues.

    What a queued link pulled is committed in its queue already; a transfer cut short is
    redone (at least once) by the next run.
    """
    _LOGGER.warning(
        "%s received again: exiting at once; records not yet delivered stay queued",
        signal.Signals(signum).name,
    )
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(128 + signum)


class _Reload:
    """The web interface's reload callback: stop the running pipeline so that the loop in
    :func:`_run_served` loads the saved file and starts it again."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.stop: threading.Event | None = None

    def __call__(self, path: Path) -> None:
        _LOGGER.warning("%s was edited through the web interface; reloading", path)
        self.requested.set()
        if self.stop is not None:
            self.stop.set()


def _web_interface(args: argparse.Namespace, pipeline: Any) -> Any:
    """A WebInterface when ``--web`` or the file's ``[web]`` asks for one, else None."""
    settings = pipeline.web
    if args.web is None and settings is None:
        return None
    from databay_bus.errors import ConfigurationError, MissingDependencyError

    try:
        from databay_bus.web import WebInterface
        from databay_bus.web.settings import WebSettings, parse_listen
    except MissingDependencyError as exc:
        raise CommandFailure(str(exc), EXIT_USAGE) from None
    settings = settings or WebSettings()
    try:
        if args.web is not None:
            settings.host, settings.port = parse_listen(args.web, "--web")
        tls = (settings.tls_cert, settings.tls_key) if settings.tls_cert else None
        return WebInterface(
            pipeline.planner,
            host=settings.host,
            port=settings.port,
            alias=settings.alias,
            users=settings.users,
            tls=tls,  # type: ignore[arg-type]
            history_life_span=settings.history_life_span,
            pipeline_file=args.pipeline,
            reload=_Reload(),
        )
    except ConfigurationError as exc:
        pipeline.close()
        raise CommandFailure(str(exc), EXIT_USAGE) from None


def _run_served(
    args: argparse.Namespace, pipeline: Any, web: Any, stop: threading.Event
) -> tuple[Any, str]:
    """Run ``pipeline`` with ``web`` serving it; an edit saved through the web stops it, and
    the saved file is loaded and run in its place (queued records wait in the queue file)."""
    from databay_bus.errors import ConfigError

    reload: _Reload = web.pipeline_file.reload
    own_stop = threading.Event()
    reload.stop = own_stop
    started = time.monotonic()
    try:
        web.start()
    except Exception as exc:
        pipeline.close()
        web.close()
        raise CommandFailure(str(exc)) from None
    _LOGGER.info("web interface on %s", web.url)

    def forward() -> None:  # a signal (stop) also stops the pipeline running now
        stop.wait()
        own_stop.set()

    threading.Thread(target=forward, name="databay_bus-stop", daemon=True).start()
    try:
        while True:
            duration = None
            if args.duration is not None:
                duration = max(args.duration - (time.monotonic() - started), 0.001)
            reason = pipeline.run(
                duration=duration,
                transfers=args.transfers,
                stop=own_stop,
                status_interval=args.status_interval,
                shutdown_timeout=args.shutdown_timeout,
            )
            if not reload.requested.is_set() or stop.is_set():
                return pipeline, reason
            reload.requested.clear()
            own_stop.clear()
            try:
                pipeline = load_pipeline(args.pipeline)
            except (CommandFailure, ConfigError, QueueError) as exc:
                _LOGGER.error(
                    "reloading %s failed; running the previous version: %s", args.pipeline, exc
                )
                pipeline = load_pipeline(str(web.pipeline_file.previous_path))
            _unattended(args, pipeline)
            web.set_planner(pipeline.planner)
            if pipeline.web is not None:  # listen and tls need a restart; these do not
                web.update(alias=pipeline.web.alias, users=pipeline.web.users)
            _LOGGER.info("reloaded %s (%d links)", args.pipeline, len(pipeline.links))
    finally:
        stop.set()  # ends the forwarding thread
        web.close()


def _final_status(pipeline: Any) -> list[str]:
    from databay_bus.config.pipeline import status_line

    metrics = pipeline.final_metrics or {"links": []}
    return [status_line(entry) for entry in metrics["links"]]
