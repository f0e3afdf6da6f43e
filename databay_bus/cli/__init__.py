"""The ``databay-bus`` command (also ``python -m databay_bus``): one module per command.

``_main.py`` builds the parser from the command modules beside it and dispatches; ``run``,
``validate``, ``schedule``, ``demo`` and ``queue`` are one module each (see
:mod:`databay_bus.cli._main` for how a module registers a command); ``_common.py`` holds what
they share. Docs: docs/cli.md.

Exit codes: 0 success (also after a graceful stop on SIGINT/SIGTERM), 1 a runtime failure
(the pipeline failed, a queue operation failed), 2 a usage error or an invalid pipeline file.
"""

from __future__ import annotations

from databay_bus.cli._common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from databay_bus.cli._main import build_parser, main

__all__ = ["EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]
