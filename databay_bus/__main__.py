"""``python -m databay_bus``: the ``databay-bus`` command line (see docs/cli.md)."""

from __future__ import annotations

import sys

from databay_bus.cli import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
