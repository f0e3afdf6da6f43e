"""Reading a pipeline file (TOML or JSON) and expanding ``${VAR}`` in its strings."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from databay_bus._secrets import is_secret_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["expand_variables", "key_path", "parse_text", "read_file"]

_VARIABLE = re.compile(r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\{)")


def key_path(parent: str, key: str | int) -> str:
    """``key_path('links', 2) == 'links[2]'``, ``key_path('links[2]', 'interval') == ...``."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        key = json.dumps(key)
        return f"{parent}[{key}]" if parent else key
    return f"{parent}.{key}" if parent else key


def parse_text(text: str, fmt: str) -> Any:
    """Parse ``text`` as ``'toml'`` or ``'json'``; raises ValueError with the parser's reason."""
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"invalid TOML: {exc}") from None


def read_file(path: str | os.PathLike[str]) -> tuple[Any, str]:
    """Read and parse a pipeline file; JSON when it ends in ``.json``, TOML otherwise.

    Returns:
        The parsed data and the format name.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not valid TOML/JSON.
    """
    fmt = "json" if Path(path).suffix.lower() == ".json" else "toml"
    text = Path(path).read_text(encoding="utf-8")
    return parse_text(text, fmt), fmt


def expand_variables(
    value: Any,
    env: Mapping[str, str],
    path: str,
    problems: list[tuple[str, str]],
    secrets: set[str] | None = None,
) -> Any:
    """Replace ``${NAME}`` / ``${NAME:-default}`` in every string of ``value``; ``$$`` is ``$``.

    Unset variables without a default, and a ``${`` that does not start a well-formed
    variable (``${HOME`` without its brace), are added to ``problems`` under their key path.
    Values of variables whose name or key path looks secret are added to ``secrets``.
    """
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(1) == "$":
                return "$"
            if match.group(1) == "{":
                start = match.start()
                problems.append(
                    (
                        path,
                        f"malformed variable at {value[start : start + 24]!r}: write ${{NAME}} "
                        "or ${NAME:-default}, and $$ for a literal $",
                    )
                )
                return match.group(0)
            name, default = match.group(2), match.group(3)
            if name in env:
                if secrets is not None and (is_secret_name(name) or is_secret_name(path)):
                    secrets.add(env[name])
                return env[name]
            if default is not None:
                return default
            problems.append((path, f"environment variable {name!r} is not set"))
            return ""

        return _VARIABLE.sub(substitute, value)
    if isinstance(value, dict):
        return {
            k: expand_variables(v, env, key_path(path, k), problems, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            expand_variables(v, env, key_path(path, i), problems, secrets)
            for i, v in enumerate(value)
        ]
    return value
