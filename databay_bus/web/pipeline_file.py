"""The pipeline file behind a running planner: read it, and replace it safely.

A new text is validated with the pipeline loader (a dry run: nothing opens the real queue)
before anything is written. The file is then replaced atomically, its previous version kept
beside it as ``<file>.prev``, and the ``reload`` callback (given by whoever runs the pipeline,
e.g. ``databay-bus run``) applies it. A text that does not validate changes nothing.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from databay_bus.errors import ConfigError, ConfigurationError

__all__ = ["MAX_PIPELINE_BYTES", "PipelineFile"]

#: The largest pipeline file accepted from the web (bytes).
MAX_PIPELINE_BYTES = 1024 * 1024


class PipelineFile:
    """A pipeline file that administrators may edit.

    Args:
        path: the file.
        reload: called with the path after a new version was saved; None when the process
            cannot reload (the page then says a restart applies the change).
    """

    def __init__(
        self, path: str | os.PathLike[str], reload: Callable[[Path], None] | None = None
    ) -> None:
        self.path = Path(path)
        self.reload = reload
        self._lock = threading.Lock()

    @property
    def previous_path(self) -> Path:
        """Where the version before the last save is kept."""
        return self.path.with_name(self.path.name + ".prev")

    def read(self) -> str:
        """The file's text."""
        return self.path.read_text(encoding="utf-8")

    def validate(self, text: str) -> None:
        """Raise ConfigError (listing every problem) unless ``text`` builds a pipeline."""
        from databay_bus.config.loader import build
        from databay_bus.config.source import parse_text

        if len(text.encode("utf-8")) > MAX_PIPELINE_BYTES:
            raise ConfigurationError(
                f"{self.path}: the new text is larger than {MAX_PIPELINE_BYTES} bytes"
            )
        fmt = "json" if self.path.suffix.lower() == ".json" else "toml"
        source = str(self.path)
        try:
            data = parse_text(text, fmt)
        except ValueError as exc:
            raise ConfigError(source, [("", str(exc))]) from None
        pipeline = build(data, source, base_dir=self.path.resolve().parent, dry_run=True)
        pipeline.close()

    def save(self, text: str) -> bool:
        """Validate, keep the previous version, write ``text``, reload; True if reloaded.

        Raises:
            ConfigError / ConfigurationError: the text is not a valid pipeline (nothing
                was written).
        """
        with self._lock:
            self.validate(text)
            old = self.read()
            self._write(self.previous_path, old)
            self._write(self.path, text)
        if self.reload is None:
            return False
        self.reload(self.path)
        return True

    @staticmethod
    def _write(path: Path, text: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
