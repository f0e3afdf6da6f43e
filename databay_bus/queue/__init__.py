"""The persistent record queue between pull and push."""

from __future__ import annotations

__all__: list[str] = []
