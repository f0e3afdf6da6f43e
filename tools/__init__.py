"""Developer tools that are not part of the installed package (run from the repository root)."""

from __future__ import annotations

__all__: list[str] = []
