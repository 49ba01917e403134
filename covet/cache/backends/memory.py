"""A cache in this process's memory: a bounded LRU with TTLs.

Bounded by the number of entries and, optionally, by the bytes of the keys
and values: the least recently used entries go first. An expired entry is
dropped when it is read, and counts towards the bounds until then (so the
bounds hold whatever the TTLs). One store per :class:`MemoryBackend`, shared
by every event loop and thread of the process (a lock guards it); other
processes have their own, so use Redis or the database to share a cache
between workers.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from covet.cache.exceptions import CacheValueError
from covet.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = ("DEFAULT_MAX_ENTRIES", "MemoryBackend")

#: Entries kept by default before the least recently used are evicted.
DEFAULT_MAX_ENTRIES = 10_000
# Bytes counted per entry on top of its key and value: the dict slot, the tuple
# and the objects' headers, roughly (CPython 3.11+, 64-bit).
_OVERHEAD = 200


def _bound(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ImproperlyConfigured(
            f"MemoryBackend {name} must be a positive integer or None, got {value!r}."
        )
    return value


class MemoryBackend:
    """An in-process LRU cache store.

    Args:
        max_entries: The most entries kept (None: unbounded by count).
        max_bytes: The most bytes of keys, values and bookkeeping kept (None:
            unbounded by size). A value larger than this is not stored.
        clock: Returns the current time in seconds; tests pass a fake one.

    Raises:
        ImproperlyConfigured: If a bound is not a positive integer or None.
    """

    def __init__(
        self,
        *,
        max_entries: int | None = DEFAULT_MAX_ENTRIES,
        max_bytes: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = _bound(max_entries, "max_entries")
        self.max_bytes = _bound(max_bytes, "max_bytes")
        self.clock = clock
        self._data: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @classmethod
    def from_options(cls, options: dict[str, str], location: str) -> MemoryBackend:
        """Build from the query options of a ``memory://`` URL (``max_entries``, ``max_bytes``)."""
        if location:
            raise ImproperlyConfigured(
                f"A memory cache URL has no host or path, got {location!r}. Write 'memory://'."
            )
        max_entries: object = options.pop("max_entries", DEFAULT_MAX_ENTRIES)
        max_bytes: object = options.pop("max_bytes", None)
        if max_entries in ("", "none", "None"):
            max_entries = None
        return cls(
            max_entries=_bound(max_entries, "max_entries"),
            max_bytes=_bound(max_bytes, "max_bytes"),
        )

    def __len__(self) -> int:
        return len(self._data)

    @property
    def size(self) -> int:
        """Return the bytes currently counted against ``max_bytes``."""
        return self._size

    # -- internals (the lock is held) ----------------------------------------------------

    @staticmethod
    def _cost(key: str, value: bytes) -> int:
        return len(key) + len(value) + _OVERHEAD

    def _live(self, key: str, now: float) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and expires_at <= now:
            self._remove(key)
            return None
        return value

    def _remove(self, key: str) -> bool:
        entry = self._data.pop(key, None)
        if entry is None:
            return False
        self._size -= self._cost(key, entry[0])
        return True

    def _store(self, key: str, value: bytes, ttl: float | None, now: float) -> None:
        self._remove(key)
        cost = self._cost(key, value)
        if self.max_bytes is not None and cost > self.max_bytes:
            return  # larger than the whole cache: keeping it would evict everything else
        self._data[key] = (value, None if ttl is None else now + ttl)
        self._size += cost
        # Evict least recently used entries until both bounds hold.
        while (self.max_entries is not None and len(self._data) > self.max_entries) or (
            self.max_bytes is not None and self._size > self.max_bytes
        ):
            oldest, (old_value, _) = self._data.popitem(last=False)
            self._size -= self._cost(oldest, old_value)

    # -- the backend interface -----------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """Return the live value of ``key`` and mark it recently used."""
        with self._lock:
            value = self._live(key, self.clock())
            if value is not None:
                self._data.move_to_end(key)
            return value

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Return the live values of ``keys``."""
        found: dict[str, bytes] = {}
        with self._lock:
            now = self.clock()
            for key in keys:
                value = self._live(key, now)
                if value is not None:
                    self._data.move_to_end(key)
                    found[key] = value
        return found

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` (evicting least recently used entries past the bounds)."""
        with self._lock:
            self._store(key, value, ttl, self.clock())

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        """Store every item."""
        with self._lock:
            now = self.clock()
            for key, value in items.items():
                self._store(key, value, ttl, now)

    async def add(self, key: str, value: bytes, ttl: float | None) -> bool:
        """Store ``value`` unless ``key`` is live."""
        with self._lock:
            now = self.clock()
            if self._live(key, now) is not None:
                return False
            self._store(key, value, ttl, now)
            return key in self._data

    async def delete(self, key: str) -> bool:
        """Delete ``key``; return whether it was live."""
        with self._lock:
            live = self._live(key, self.clock()) is not None
            self._remove(key)
            return live

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete ``keys``; return how many were live."""
        with self._lock:
            now = self.clock()
            count = 0
            for key in keys:
                count += self._live(key, now) is not None
                self._remove(key)
            return count

    async def touch(self, key: str, ttl: float | None) -> bool:
        """Give a live ``key`` a new TTL."""
        with self._lock:
            now = self.clock()
            value = self._live(key, now)
            if value is None:
                return False
            self._data[key] = (value, None if ttl is None else now + ttl)
            self._data.move_to_end(key)
            return True

    async def incr(self, key: str, delta: int) -> int:
        """Add ``delta`` to the integer under ``key``, keeping its expiry."""
        with self._lock:
            now = self.clock()
            value = self._live(key, now)
            if value is None:
                raise CacheValueError(
                    f"Cache key {key!r} has no value to increment. Set it first, for example "
                    "with await cache.add(key, 0)."
                )
            try:
                number = int(value) + delta
            except ValueError:
                raise CacheValueError(
                    f"Cache key {key!r} does not hold an integer, so it cannot be incremented. "
                    "Store an int there."
                ) from None
            expires_at = self._data[key][1]
            new = str(number).encode("ascii")
            self._size += len(new) - len(value)
            self._data[key] = (new, expires_at)
            self._data.move_to_end(key)
            return number

    async def clear(self, prefix: str) -> None:
        """Delete every key starting with ``prefix``."""
        with self._lock:
            for key in [key for key in self._data if key.startswith(prefix)]:
                self._remove(key)

    async def release(self, key: str, token: bytes) -> bool:
        """Delete ``key`` if it holds ``token``."""
        with self._lock:
            if self._live(key, self.clock()) != token:
                return False
            return self._remove(key)

    async def close(self) -> None:
        """Nothing to release: the entries stay for the next use."""
