"""The :class:`Cache` object: the cache API over one backend.

Everything that is the same on every backend lives here: making stored keys
(prefix, version, validation), encoding values, TTL defaults, and the
Django-compatible semantics of each operation. The backend stores bytes.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import math
import time
import weakref
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

from covet.cache import flight
from covet.cache.backends import create_backend, masked
from covet.cache.exceptions import CacheError, CacheValueError
from covet.cache.keys import KeyFunction, check_user_key, make_key, validate_key
from covet.cache.serializers import MISSING, Codec, JSONSerializer, Serializer
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from covet.cache.backends.base import CacheBackend

__all__ = ("DEFAULT_TIMEOUT", "TTL", "Cache")

_D = TypeVar("_D")


class _DefaultTimeout:
    """The marker of "the cache's default TTL"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DEFAULT_TIMEOUT"


#: Pass as ``ttl`` for the cache's default timeout (the default of every ``ttl``).
DEFAULT_TIMEOUT: Final = _DefaultTimeout()
#: A TTL: seconds (int or float), a :class:`datetime.timedelta`, None (never
#: expires) or :data:`DEFAULT_TIMEOUT`. Zero or less means "expired now".
TTL = float | datetime.timedelta | None | _DefaultTimeout
_UNSET: Any = object()
_EXPIRED: Final = 0.0


def _seconds(ttl: object, what: str) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, datetime.timedelta):
        return ttl.total_seconds()
    if isinstance(ttl, int | float) and not isinstance(ttl, bool) and not math.isnan(ttl):
        return float(ttl)
    raise TypeError(
        f"{what} must be seconds (int or float), a timedelta or None, got {ttl!r}. "
        "For example ttl=300 or ttl=timedelta(minutes=5)."
    )


class Cache:
    """An async cache: values under string keys, with TTLs, on one backend.

    Args:
        backend: A URL (``"memory://"``, ``"redis://127.0.0.1:6379/0"``,
            ``"database://"``) or a backend object.
        key_prefix: Put before every key (Django's ``KEY_PREFIX``), so several
            applications or caches share one store; :meth:`clear` deletes only
            keys under it.
        version: The default key version (Django's ``VERSION``): change it and
            every old entry is out of reach.
        timeout: The default TTL in seconds (300), or None for "never expires".
        key_function: ``f(key, key_prefix, version) -> stored key`` instead of
            ``f"{key_prefix}:{version}:{key}"``; its keys should still start with
            ``key_prefix + ":"`` for :meth:`clear` to find them.
        serializer: How values other than ints and bytes are stored: JSON by
            default (see :mod:`covet.cache.serializers` for why not pickle).
        clock: The Unix time, for get_or_set's early expiration; tests pass a fake one.

    ``key_prefix``, ``version`` and ``timeout`` may also come from the URL's
    query (``redis://host/0?key_prefix=site&timeout=60``); arguments win.

    Raises:
        ImproperlyConfigured: For an unsupported URL or a bad option.
        MissingDependencyError: If the backend's driver is not installed.
    """

    def __init__(
        self,
        backend: str | CacheBackend = "memory://",
        *,
        key_prefix: str = _UNSET,
        version: int = _UNSET,
        timeout: float | datetime.timedelta | None = _UNSET,
        key_function: KeyFunction | None = None,
        serializer: Serializer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        options: dict[str, str] = {}
        if isinstance(backend, str):
            self.url: str | None = backend
            self.backend, options = create_backend(backend)
        else:
            self.url = None
            self.backend = backend
        where = f"cache {masked(self.url)!r}" if self.url else "Cache()"
        if key_prefix is _UNSET:
            key_prefix = options.get("key_prefix", "")
        if version is _UNSET:
            version = _int_option(options.get("version", "1"), "version", where)
        if timeout is _UNSET:
            raw = options.get("timeout", "300")
            timeout = None if raw.lower() in ("none", "") else _float_option(raw, where)
        given: tuple[object, object] = (key_prefix, version)  # callers may be untyped
        if not isinstance(given[0], str):
            raise ImproperlyConfigured(f"{where}: key_prefix must be a string, got {key_prefix!r}.")
        if not isinstance(given[1], int) or isinstance(given[1], bool):
            raise ImproperlyConfigured(f"{where}: version must be an integer, got {version!r}.")
        self.key_prefix = key_prefix
        self.version = version
        self.timeout = _seconds(timeout, f"{where}: timeout")
        self.key_function: KeyFunction = key_function or make_key
        self.codec = Codec(serializer or JSONSerializer())
        self.clock = clock
        self._flights: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Future[Any]]
        ] = weakref.WeakKeyDictionary()

    def __repr__(self) -> str:
        where = masked(self.url) if self.url else type(self.backend).__name__
        return f"Cache({where!r}, key_prefix={self.key_prefix!r}, version={self.version})"

    # -- keys and TTLs ----------------------------------------------------------------------

    def make_key(self, key: str, version: int | None = None) -> str:
        """Return the stored form of ``key`` (prefix and version added), checked.

        Raises:
            InvalidCacheKeyError: If ``key`` is not a string, or the stored key
                is too long or holds a control character.
        """
        stored = self.key_function(
            check_user_key(key), self.key_prefix, self.version if version is None else version
        )
        validate_key(stored)
        return stored

    def lock_key(self, stored: str) -> str:
        """Return the key of get_or_set's cross-process lock for the stored key ``stored``."""
        digest = hashlib.sha256(stored.encode("utf-8")).hexdigest()[:40]
        return f"{self.key_prefix}:lock:{digest}"

    def resolve_ttl(self, ttl: TTL) -> float | None:
        """Return ``ttl`` as seconds (None: never expires; 0 or less: expired now)."""
        if isinstance(ttl, _DefaultTimeout):
            return self.timeout
        seconds = _seconds(ttl, "ttl")
        return _EXPIRED if seconds is not None and seconds <= 0 else seconds

    def encode(self, key: str, value: Any) -> bytes:
        """Encode ``value`` for ``key``.

        Raises:
            TypeError: If the serializer cannot store it, naming the key.
        """
        try:
            return self.codec.encode(value)
        except TypeError as exc:
            raise TypeError(f"Cannot cache the value for key {key!r}: {exc}") from exc

    # -- reading ----------------------------------------------------------------------------

    @overload
    async def get(self, key: str, default: None = None, *, version: int | None = None) -> Any: ...
    @overload
    async def get(self, key: str, default: _D, *, version: int | None = None) -> Any | _D: ...
    async def get(self, key: str, default: Any = None, *, version: int | None = None) -> Any:
        """Return the value of ``key``, or ``default`` when it is missing or expired."""
        stored = self.make_key(key, version)
        data = await self.backend.get(stored)
        if data is None:
            return default
        value = self.codec.decode(data, stored)
        return default if value is MISSING else value

    async def get_many(self, keys: Iterable[str], *, version: int | None = None) -> dict[str, Any]:
        """Return ``{key: value}`` for the keys that have a value (one round trip)."""
        stored = {self.make_key(key, version): key for key in keys}
        found = await self.backend.get_many(list(stored))
        values: dict[str, Any] = {}
        for name, data in found.items():
            value = self.codec.decode(data, name)
            if value is not MISSING:
                values[stored[name]] = value
        return values

    async def has_key(self, key: str, *, version: int | None = None) -> bool:
        """Return whether ``key`` has a live value."""
        return await self.backend.get(self.make_key(key, version)) is not None

    # -- writing ----------------------------------------------------------------------------

    async def set(
        self, key: str, value: Any, ttl: TTL = DEFAULT_TIMEOUT, *, version: int | None = None
    ) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (a TTL of 0 or less deletes it)."""
        stored = self.make_key(key, version)
        data = self.encode(key, value)
        seconds = self.resolve_ttl(ttl)
        if seconds == _EXPIRED:
            await self.backend.delete(stored)
        else:
            await self.backend.set(stored, data, seconds)

    async def set_many(
        self,
        mapping: Mapping[str, Any],
        ttl: TTL = DEFAULT_TIMEOUT,
        *,
        version: int | None = None,
    ) -> None:
        """Store every item of ``mapping`` with one TTL (one round trip where the backend can)."""
        items = {self.make_key(key, version): self.encode(key, v) for key, v in mapping.items()}
        seconds = self.resolve_ttl(ttl)
        if seconds == _EXPIRED:
            await self.backend.delete_many(list(items))
        else:
            await self.backend.set_many(items, seconds)

    async def add(
        self, key: str, value: Any, ttl: TTL = DEFAULT_TIMEOUT, *, version: int | None = None
    ) -> bool:
        """Store ``value`` only if ``key`` has no live value; return whether it was stored.

        Atomic on every backend: of many concurrent ``add()`` calls for one
        key, across processes too, exactly one returns True.
        """
        stored = self.make_key(key, version)
        data = self.encode(key, value)
        seconds = self.resolve_ttl(ttl)
        if seconds == _EXPIRED:
            return await self.backend.get(stored) is None
        return await self.backend.add(stored, data, seconds)

    async def touch(
        self, key: str, ttl: TTL = DEFAULT_TIMEOUT, *, version: int | None = None
    ) -> bool:
        """Give ``key`` a new TTL without changing its value; return whether it existed."""
        stored = self.make_key(key, version)
        seconds = self.resolve_ttl(ttl)
        if seconds == _EXPIRED:
            return await self.backend.delete(stored)
        return await self.backend.touch(stored, seconds)

    async def delete(self, key: str, *, version: int | None = None) -> bool:
        """Delete ``key``; return whether it had a live value."""
        return await self.backend.delete(self.make_key(key, version))

    async def delete_many(self, keys: Iterable[str], *, version: int | None = None) -> int:
        """Delete ``keys``; return how many had a live value."""
        return await self.backend.delete_many([self.make_key(key, version) for key in keys])

    async def incr(self, key: str, delta: int = 1, *, version: int | None = None) -> int:
        """Add ``delta`` to the integer under ``key`` atomically; return the new value.

        The TTL is kept. Like Django, a missing key is an error (create
        counters with ``add(key, 0)``).

        Raises:
            CacheValueError: If ``key`` has no value, or not an integer.
        """
        if not _is_int(delta):
            raise TypeError(f"incr() delta must be an int, got {delta!r}.")
        return await self.backend.incr(self.make_key(key, version), delta)

    async def decr(self, key: str, delta: int = 1, *, version: int | None = None) -> int:
        """Subtract ``delta`` from the integer under ``key`` (see :meth:`incr`)."""
        if not _is_int(delta):
            raise TypeError(f"decr() delta must be an int, got {delta!r}.")
        return await self.incr(key, -delta, version=version)

    async def incr_version(self, key: str, delta: int = 1, *, version: int | None = None) -> int:
        """Move ``key``'s value to version ``version + delta``; return the new version.

        Raises:
            CacheValueError: If ``key`` has no value at ``version``.
        """
        old = self.version if version is None else version
        stored = self.make_key(key, old)
        data = await self.backend.get(stored)
        if data is None:
            raise CacheValueError(
                f"Cache key {key!r} has no value at version {old}, so there is nothing to move."
            )
        new = old + delta
        await self.backend.set(self.make_key(key, new), data, self.timeout)
        await self.backend.delete(stored)
        return new

    async def decr_version(self, key: str, delta: int = 1, *, version: int | None = None) -> int:
        """Move ``key``'s value to version ``version - delta``; return the new version."""
        return await self.incr_version(key, -delta, version=version)

    async def clear(self) -> None:
        """Delete every key of this cache: those starting with ``key_prefix + ":"``.

        Other data in the same Redis database or table (other prefixes) stays.
        """
        await self.backend.clear(f"{self.key_prefix}:")

    async def close(self) -> None:
        """Close the backend's connections for the running event loop."""
        await self.backend.close()

    # -- get_or_set -------------------------------------------------------------------------

    async def get_or_set(
        self,
        key: str,
        default: Any,
        ttl: TTL = DEFAULT_TIMEOUT,
        *,
        version: int | None = None,
        lock: bool = True,
        lock_timeout: float = 30.0,
        early: float = 1.0,
    ) -> Any:
        """Return the value of ``key``, producing and storing it when missing, once.

        ``default`` is the value, or a function (plain or ``async``) that
        produces it. Stampede protection, in three layers:

        - In one process, concurrent callers for one key share one call of
          ``default`` (single flight): the others wait for its result.
        - Across processes, the caller that produces holds a lock in the
          backend (``add`` of a lock key, ``lock_timeout`` seconds); the others
          poll the cache until the value appears or the lock is gone.
        - Before expiry, a reader refreshes the value early with a probability
          that grows as expiry nears and with how long ``default`` took
          (XFetch, Vattani et al., VLDB 2015; ``early`` is its beta, 0 turns it
          off): one caller recomputes while the others keep the old value.

        Args:
            key: The key.
            default: The value or its producer.
            ttl: The TTL of the stored value.
            version: The key version.
            lock: Take the cross-process lock (False: single flight only).
            lock_timeout: Seconds the lock lives; longer than ``default`` takes.
            early: XFetch's beta (1.0 as in the paper; 0 disables early refresh).

        Returns:
            The cached or produced value.

        Raises:
            Exception: Whatever ``default`` raised (nothing is stored then); the
                callers waiting for it in this process get the same exception.
        """
        if not lock_timeout > 0:
            raise CacheError(f"lock_timeout must be positive seconds, got {lock_timeout!r}.")
        if not early >= 0:
            raise CacheError(f"early must be 0 or more, got {early!r}.")
        return await flight.get_or_set(
            self,
            self.make_key(key, version),
            key,
            default,
            self.resolve_ttl(ttl),
            lock=lock,
            lock_timeout=lock_timeout,
            early=early,
        )

    def flights(self) -> dict[str, asyncio.Future[Any]]:
        """Return the running event loop's in-flight get_or_set calls, by stored key."""
        loop = asyncio.get_running_loop()
        found = self._flights.get(loop)
        if found is None:
            found = self._flights[loop] = {}
        return found


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_option(raw: str, name: str, where: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{where}: {name} must be an integer, got {raw!r}.") from None


def _float_option(raw: str, where: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isnan(value):
        raise ImproperlyConfigured(
            f"{where}: timeout must be seconds or 'none', got {raw!r}. Write ?timeout=300."
        )
    return value
