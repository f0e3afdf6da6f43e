"""``validate --check``: try what a pipeline needs from its environment, without side effects.

Nothing is created, written, connected to or started. What is tried, by argument name:

* files an inlet reads (``filepath``, ``path``, ``file``, ``filename``, ``cacert``) exist and
  are readable;
* files an outlet writes (``default_filepath``, ``filepath``, ``path``, ``file``,
  ``filename``): their directory exists and is writable, and so is the file if it exists;
  ``directory`` / ``dir``: exists and is writable;
* hosts named by ``url``, ``uri``, ``dsn``, ``host`` (of any node, and of the queue) resolve
  (a DNS lookup only, no connection);
* the queue file: an existing one opens read-only as an SQLite database; a new one's
  directory is writable.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Check", "probe"]

_READ_KEYS = ("filepath", "path", "file", "filename", "cacert")
_WRITE_KEYS = ("default_filepath", "filepath", "path", "file", "filename")
_DIR_KEYS = ("directory", "dir")
_URL_KEYS = ("url", "uri", "dsn", "conninfo", "connection_string")
_HOST_KEYS = ("host", "hostname")
_DSN_HOST = re.compile(r"(?:^|\s)host\s*=\s*'?([^\s']+)")


@dataclass(frozen=True)
class Check:
    """One thing tried: where in the file, what, and how it went."""

    where: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"  {'ok  ' if self.ok else 'FAIL'}  {self.where}: {self.detail}"


def probe(pipeline: Any) -> list[Check]:
    """Every check for ``pipeline`` (a dry-run :class:`~databay_bus.config.Pipeline`)."""
    checks: list[Check] = []
    for spec in pipeline.link_specs:
        base = f"links[{spec.index}]"
        for kind, nodes in (("inlets", spec.inlets), ("outlets", spec.outlets)):
            for index, (_type_name, args) in enumerate(nodes):
                where = f"{base}.{kind}[{index}]"
                checks.extend(_node_checks(where, args, writes=kind == "outlets"))
    queue = dict(pipeline.queue_spec or {})
    if queue:
        checks.extend(_queue_checks(queue))
    return checks


def _node_checks(where: str, args: dict[str, Any], writes: bool) -> list[Check]:
    checks = []
    for key, value in args.items():
        if not isinstance(value, (str, os.PathLike)):
            continue
        text = os.fspath(value)
        at = f"{where}.{key}"
        if key in _URL_KEYS:
            checks.extend(_host_check(at, _host_of(text)))
        elif key in _HOST_KEYS:
            checks.extend(_host_check(at, text))
        elif key in _DIR_KEYS:
            checks.append(_directory_check(at, Path(text)))
        elif writes and key in _WRITE_KEYS:
            checks.append(_writable_file_check(at, Path(text)))
        elif not writes and key in _READ_KEYS:
            checks.append(_readable_file_check(at, Path(text)))
    return checks


def _queue_checks(queue: dict[str, Any]) -> list[Check]:
    checks = []
    path = queue.get("path")
    if isinstance(path, (str, os.PathLike)) and queue.get("kind") in ("sqlite", None):
        checks.append(_queue_file_check("queue.path", Path(os.fspath(path))))
    for key in _URL_KEYS:
        value = queue.get(key)
        if isinstance(value, str):
            checks.extend(_host_check(f"queue.{key}", _host_of(value)))
    return checks


def _host_of(text: str) -> str | None:
    """The host a URL or a libpq ``key=value`` DSN names, if any."""
    match = _DSN_HOST.search(text)
    if match and "://" not in text:
        return match.group(1)
    try:
        return urlsplit(text).hostname
    except ValueError:
        return None


def _host_check(where: str, host: str | None) -> list[Check]:
    if not host or host.startswith("/"):  # no host, or a Unix socket directory
        return []
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError) as exc:
        return [Check(where, False, f"host {host!r} does not resolve: {exc}")]
    return [Check(where, True, f"host {host!r} resolves")]


def _readable_file_check(where: str, path: Path) -> Check:
    if not path.is_file():
        return Check(where, False, f"{path} does not exist (or is not a file)")
    if not os.access(path, os.R_OK):
        return Check(where, False, f"{path} is not readable")
    return Check(where, True, f"{path} exists and is readable")


def _writable_file_check(where: str, path: Path) -> Check:
    if path.exists():
        if path.is_dir() or not os.access(path, os.W_OK):
            return Check(where, False, f"{path} exists but is not a writable file")
        return Check(where, True, f"{path} exists and is writable")
    return _directory_check(where, path.parent, f"{path} will be created; ")


def _directory_check(where: str, path: Path, prefix: str = "") -> Check:
    if not path.is_dir():
        return Check(where, False, f"{prefix}directory {path} does not exist")
    if not os.access(path, os.W_OK | os.X_OK):
        return Check(where, False, f"{prefix}directory {path} is not writable")
    return Check(where, True, f"{prefix}directory {path} is writable")


def _queue_file_check(where: str, path: Path) -> Check:
    if not path.exists():
        return _directory_check(where, path.parent, f"{path} will be created; ")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return Check(where, False, f"{path} does not open as an SQLite queue: {exc}")
    if not os.access(path, os.W_OK):
        return Check(where, False, f"{path} opens but is not writable")
    return Check(where, True, f"{path} opens (read-only check) and is writable")
