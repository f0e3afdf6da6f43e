"""Users, roles, password and token hashes, sessions and the login rate limit.

Passwords are stored as salted scrypt hashes (``hash_password``; the ``databay-bus
hash-password`` command prints one), never in clear. API tokens are random strings of which
only a SHA-256 digest is configured (a token carries enough entropy that a slow hash adds
nothing, and every API call checks one). Sessions live in memory: a restart logs everyone out.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from databay_bus._clock import Clock, SystemClock
from databay_bus.errors import ArgumentTypeError, ConfigurationError, describe

__all__ = [
    "LoginLimiter",
    "Role",
    "Session",
    "Sessions",
    "User",
    "Users",
    "hash_password",
    "hash_token",
    "new_token",
    "verify_password",
]

# scrypt cost: n=2**14, r=8 takes about 50 ms and 16 MiB here; enough against offline guessing
# of a leaked file, cheap enough for a login form.
_N, _R, _P = 2**14, 8, 1


class Role(enum.IntEnum):
    """What a user may do; each role includes the ones below it."""

    VIEWER = 1  #: read every page, export
    OPERATOR = 2  #: also pause/resume, transfer now, replay/drop dead letters
    ADMINISTRATOR = 3  #: also edit the pipeline file, read the audit trail

    @classmethod
    def parse(cls, value: Any, owner: str) -> Role:
        """``'viewer'``, ``'operator'`` or ``'administrator'`` (also ``'admin'``)."""
        if isinstance(value, Role):
            return value
        names = {"viewer": cls.VIEWER, "operator": cls.OPERATOR}
        names.update(administrator=cls.ADMINISTRATOR, admin=cls.ADMINISTRATOR)
        if isinstance(value, str) and value.lower() in names:
            return names[value.lower()]
        raise ConfigurationError(
            f"{owner}: role must be viewer, operator or administrator, got {describe(value)}"
        )

    @property
    def label(self) -> str:
        """The role's name as users write it."""
        return self.name.lower()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of ``password``: ``'scrypt$n$r$p$salt$hash'``."""
    if not isinstance(password, str) or not password:
        raise ConfigurationError(f"password must be a non-empty str, got {describe(password)}")
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the ``stored`` hash (constant time); False if malformed."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def new_token() -> str:
    """A fresh random API token (store only :func:`hash_token` of it)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The configured form of an API token: ``'sha256$<hex>'``."""
    if not isinstance(token, str) or not token:
        error = ConfigurationError if isinstance(token, str) else ArgumentTypeError
        raise error(f"token must be a non-empty str, got {describe(token)}")
    return "sha256$" + hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    """A user: ``password_hash`` from :func:`hash_password`, ``tokens`` from :func:`hash_token`."""

    name: str
    role: Role
    password_hash: str | None = None
    tokens: tuple[str, ...] = ()


class Users:
    """The configured users, looked up by name or by API token.

    Args:
        users: ``User`` objects, or a mapping ``{name: {"role": ..., "password_hash": ...,
            "tokens": [...]}}`` as a pipeline file's ``[web.users]`` table holds it.
    """

    def __init__(self, users: Iterable[User] | Mapping[str, Any] | None = None) -> None:
        self._by_name: dict[str, User] = {}
        self._by_token: dict[str, User] = {}
        for user in _as_users(users):
            if user.name in self._by_name:
                raise ConfigurationError(f"web users: {user.name!r} is defined twice")
            if user.password_hash is None and not user.tokens:
                raise ConfigurationError(
                    f"web users: {user.name!r} has neither a password_hash nor tokens: "
                    f"nobody could log in as them (databay-bus hash-password makes both)"
                )
            self._by_name[user.name] = user
            for token in user.tokens:
                self._by_token[token] = user

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> User | None:
        """The user called ``name``, or None."""
        return self._by_name.get(name)

    def check_password(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None (also for unknown names)."""
        user = self._by_name.get(name)
        if user is None or user.password_hash is None:
            # Same cost as a real check: whether a name exists does not show in the timing.
            verify_password(password, _DUMMY_HASH)
            return None
        return user if verify_password(password, user.password_hash) else None

    def listing(self) -> list[dict[str, Any]]:
        """Every user's name, role and how they log in (never a hash), sorted by name."""
        return [
            {
                "name": user.name,
                "role": user.role.label,
                "password": user.password_hash is not None,
                "tokens": len(user.tokens),
            }
            for user in sorted(self._by_name.values(), key=lambda u: u.name)
        ]

    def by_token(self, token: str) -> User | None:
        """The user holding API ``token``, or None."""
        return self._by_token.get(hash_token(token))


_DUMMY_HASH = hash_password("databay-bus", salt=b"\0" * 16)


def _as_users(users: Iterable[User] | Mapping[str, Any] | None) -> list[User]:
    if users is None:
        return []
    if isinstance(users, Mapping):
        result = []
        for name, entry in users.items():
            owner = f"web users: {name!r}"
            if not isinstance(entry, Mapping):
                raise ConfigurationError(f"{owner} must be a table, got {describe(entry)}")
            unknown = set(entry) - {"role", "password_hash", "tokens"}
            if unknown:
                raise ConfigurationError(f"{owner}: unknown keys {sorted(unknown)}")
            password_hash = entry.get("password_hash")
            if password_hash is not None and (
                not isinstance(password_hash, str) or not password_hash.startswith("scrypt$")
            ):
                raise ConfigurationError(
                    f"{owner}: password_hash must come from 'databay-bus hash-password', "
                    f"got {describe(password_hash)}"
                )
            tokens = entry.get("tokens", [])
            if not isinstance(tokens, list) or not all(
                isinstance(t, str) and t.startswith("sha256$") for t in tokens
            ):
                raise ConfigurationError(
                    f"{owner}: tokens must be a list of 'sha256$...' hashes from "
                    f"'databay-bus hash-password --token', got {describe(tokens)}"
                )
            role = Role.parse(entry.get("role"), owner)
            result.append(User(str(name), role, password_hash, tuple(tokens)))
        return result
    result = list(users)
    for user in result:
        if not isinstance(user, User):
            raise ConfigurationError(f"web users must be User objects, got {describe(user)}")
    return result


@dataclass
class Session:
    """A logged-in browser: who, the CSRF token of its forms, and when it expires."""

    id: str
    user: User
    csrf: str
    expires: float
    last_seen: float = field(default=0.0)
    flash: str | None = None  #: a message for the next page shown


class Sessions:
    """Sessions in memory, ended after ``idle`` seconds without a request or ``lifetime``.

    Args:
        idle: seconds of inactivity after which a session expires.
        lifetime: seconds after login after which it expires anyway.
        clock: time source (tests pass a FakeClock).
    """

    def __init__(
        self, idle: float = 3600.0, lifetime: float = 12 * 3600.0, clock: Clock | None = None
    ) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self.clock: Clock = clock or SystemClock()
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: User) -> Session:
        """A new session for ``user``."""
        now = self.clock.time()
        session = Session(
            secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), now + self.lifetime, now
        )
        with self._lock:
            self._expire(now)
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (and mark it used), or None."""
        if not session_id:
            return None
        now = self.clock.time()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now >= session.expires or now - session.last_seen >= self.idle:
                del self._sessions[session_id]
                return None
            session.last_seen = now
            return session

    def end(self, session_id: str | None) -> None:
        """Log a session out (no error if unknown)."""
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def _expire(self, now: float) -> None:
        dead = [
            key
            for key, s in self._sessions.items()
            if now >= s.expires or now - s.last_seen >= self.idle
        ]
        for key in dead:
            del self._sessions[key]


class LoginLimiter:
    """At most ``attempts`` failed logins per client address and per user name in ``window``.

    Args:
        attempts: failures allowed in the window.
        window: seconds the failures are remembered.
        clock: time source.
    """

    def __init__(
        self, attempts: int = 5, window: float = 300.0, clock: Clock | None = None
    ) -> None:
        self.attempts = attempts
        self.window = window
        self.clock: Clock = clock or SystemClock()
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> float:
        """Seconds until a login for ``keys`` may be tried again; 0 when allowed now."""
        now = self.clock.time()
        wait = 0.0
        with self._lock:
            for key in keys:
                recent = [t for t in self._failures.get(key, []) if now - t < self.window]
                if recent:
                    self._failures[key] = recent
                else:
                    self._failures.pop(key, None)
                if len(recent) >= self.attempts:
                    wait = max(wait, recent[0] + self.window - now)
        return wait

    def failed(self, *keys: str) -> None:
        """Count a failed login for each of ``keys``."""
        now = self.clock.time()
        with self._lock:
            if len(self._failures) > 10_000:  # bounded memory under a spray of names
                self._failures.clear()
            for key in keys:
                self._failures.setdefault(key, []).append(now)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of ``keys``."""
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
