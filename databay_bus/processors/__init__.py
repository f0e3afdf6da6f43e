"""Ready-made processors and groupers."""

from __future__ import annotations

__all__: list[str] = []
