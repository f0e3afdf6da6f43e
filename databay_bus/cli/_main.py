"""The parser and the dispatcher: every command module of this package registers itself.

A command module (any module of ``databay_bus.cli`` whose name does not start with ``_``)
defines ``register(commands)``, which adds its sub-parser to
``commands`` (the ``add_subparsers()`` object) and sets ``handler`` (a function taking the
parsed arguments and returning the exit code) with ``set_defaults``. ``ORDER`` (an int,
default 100) places it in ``--help``. Adding a command is adding a module.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from databay_bus import __version__
from databay_bus.cli._common import CommandFailure

__all__ = ["build_parser", "command_modules", "main"]


def command_modules() -> list[ModuleType]:
    """The command modules of ``databay_bus.cli``, in ``--help`` order.

    Listed once per process: the package's folder need not stay readable (a process that
    drops its privileges after a first parse keeps its commands).
    """
    return list(_command_modules())


@functools.cache
def _command_modules() -> tuple[ModuleType, ...]:
    package = importlib.import_module("databay_bus.cli")
    modules = [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_")
    ]
    return tuple(sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``databay-bus``."""
    parser = argparse.ArgumentParser(
        prog="databay-bus",
        description="Run and operate databay_bus pipelines declared in TOML or JSON files.",
        epilog="Docs: docs/cli.md (commands), docs/config.md (the pipeline file format).",
    )
    parser.add_argument("--version", action="version", version=f"databay_bus {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for module in command_modules():
        module.register(commands)
    return parser


#: The exit code when the reader of stdout went away (``| head``): 128 + SIGPIPE, as a
#: Unix tool killed by SIGPIPE reports, but without a message.
EXIT_BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        try:
            code: int = args.handler(args)
        except CommandFailure as exc:
            print(f"databay-bus {args.command}: {exc}", file=sys.stderr)
            return exc.code
        except KeyboardInterrupt:
            print(f"databay-bus {args.command}: interrupted", file=sys.stderr)
            return 130
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing what is left at exit raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (a test's captured stdout)
        pass
