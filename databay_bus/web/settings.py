"""The ``[web]`` table of a pipeline file, checked without importing aiohttp.

::

    [web]
    listen = "127.0.0.1:8080"     # HOST:PORT; loopback by default
    alias = "TEST"                # shown in every page's header
    history_life_span = "7d"      # how long run history is kept
    users_file = "users.toml"     # or an inline [web.users] table
    tls = { cert = "cert.pem", key = "key.pem" }

    [web.users.alice]
    role = "administrator"
    password_hash = "scrypt$..."  # databay-bus hash-password
    tokens = ["sha256$..."]       # databay-bus hash-password --token
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from databay_bus.errors import ConfigurationError, describe

__all__ = ["DEFAULT_LISTEN", "WEB_KEYS", "WebSettings", "parse_listen", "web_settings"]

DEFAULT_LISTEN = "127.0.0.1:8080"
WEB_KEYS = ("listen", "alias", "users", "users_file", "tls", "history_life_span")


@dataclass
class WebSettings:
    """What a ``[web]`` table (or ``--web``) asks for."""

    host: str = "127.0.0.1"
    port: int = 8080
    alias: str = ""
    users: dict[str, Any] = field(default_factory=dict)
    tls_cert: str | None = None
    tls_key: str | None = None
    history_life_span: float | None = 7 * 86400.0


def parse_listen(value: Any, owner: str = "web.listen") -> tuple[str, int]:
    """``'HOST:PORT'`` (``'[::1]:8080'`` for IPv6, ``':8080'`` for loopback) -> (host, port)."""
    if not isinstance(value, str) or ":" not in value:
        raise ConfigurationError(f"{owner}: must be 'HOST:PORT', got {describe(value)}")
    host, _, port_text = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port_text.isdecimal() or not 0 <= int(port_text) <= 65535:
        raise ConfigurationError(f"{owner}: port must be 0..65535, got {describe(value)}")
    return host, int(port_text)


def web_settings(table: Any, base_dir: str | Path = ".") -> WebSettings:
    """Check a ``[web]`` table; raises ConfigurationError naming the key and the value."""
    from databay_bus.config.checks import parse_duration

    if not isinstance(table, dict):
        raise ConfigurationError(f"web: must be a table, got {describe(table)}")
    unknown = sorted(set(table) - set(WEB_KEYS))
    if unknown:
        raise ConfigurationError(f"web: unknown keys {unknown}; known: {list(WEB_KEYS)}")
    settings = WebSettings()
    if "listen" in table:
        settings.host, settings.port = parse_listen(table["listen"])
    alias = table.get("alias", "")
    if not isinstance(alias, str):
        raise ConfigurationError(f"web.alias: must be a string, got {describe(alias)}")
    settings.alias = alias
    users = table.get("users", {})
    if "users_file" in table:
        users = _users_file(table["users_file"], Path(base_dir))
    if not isinstance(users, dict):
        raise ConfigurationError(f"web.users: must be a table of users, got {describe(users)}")
    from databay_bus.web.auth import Users  # no aiohttp there either

    try:
        Users(users)
    except ConfigurationError as exc:
        raise ConfigurationError(f"web.users: {str(exc).removeprefix('web users: ')}") from None
    settings.users = users
    tls = table.get("tls")
    if tls is not None:
        if not isinstance(tls, dict) or set(tls) != {"cert", "key"}:
            raise ConfigurationError(
                f"web.tls: must be a table with 'cert' and 'key' files, got {describe(tls)}"
            )
        for key in ("cert", "key"):
            path = Path(base_dir, str(tls[key]))
            if not path.is_file():
                raise ConfigurationError(f"web.tls.{key}: no file {str(path)!r}")
        settings.tls_cert = str(Path(base_dir, tls["cert"]))
        settings.tls_key = str(Path(base_dir, tls["key"]))
    if "history_life_span" in table:
        try:
            settings.history_life_span = parse_duration(table["history_life_span"])
        except Exception as exc:
            raise ConfigurationError(f"web.history_life_span: {exc}") from None
    return settings


def _users_file(value: Any, base_dir: Path) -> Any:
    from databay_bus.config.source import read_file

    if not isinstance(value, str):
        raise ConfigurationError(f"web.users_file: must be a path, got {describe(value)}")
    path = base_dir / value
    try:
        data, _ = read_file(path)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"web.users_file: cannot read {str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"web.users_file: {str(path)!r} must hold a table of users")
    return data.get("users", data)
