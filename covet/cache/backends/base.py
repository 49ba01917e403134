"""What a cache backend does: bytes in, bytes out, under stored keys.

:class:`~covet.cache.Cache` does everything that is the same on every
backend (keys, prefixes, versions, validation, serialisation, TTL defaults,
get_or_set's stampede protection) and hands a backend stored keys and
encoded bytes. A backend only stores them.

TTLs reach a backend as positive seconds (a float) or ``None`` for "never
expires"; a TTL of zero or less never reaches it (the cache deletes instead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ("CacheBackend",)


@runtime_checkable
class CacheBackend(Protocol):
    """The storage under a :class:`~covet.cache.Cache`."""

    async def get(self, key: str) -> bytes | None:
        """Return the live value of ``key``, or None."""
        ...

    async def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """Return the live values of ``keys`` that exist."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds (None: no expiry)."""
        ...

    async def set_many(self, items: Mapping[str, bytes], ttl: float | None) -> None:
        """Store every item, all with the same TTL."""
        ...

    async def add(self, key: str, value: bytes, ttl: float | None) -> bool:
        """Store ``value`` unless ``key`` holds a live value; return whether it did (atomic)."""
        ...

    async def delete(self, key: str) -> bool:
        """Delete ``key``; return whether a live value was there."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete ``keys``; return how many live values were deleted."""
        ...

    async def touch(self, key: str, ttl: float | None) -> bool:
        """Give a live ``key`` a new TTL; return whether it existed."""
        ...

    async def incr(self, key: str, delta: int) -> int:
        """Add ``delta`` to the integer under ``key`` atomically; return the new value.

        Raises:
            CacheValueError: If ``key`` has no live value, or not an integer.
        """
        ...

    async def clear(self, prefix: str) -> None:
        """Delete every key that starts with ``prefix``."""
        ...

    async def release(self, key: str, token: bytes) -> bool:
        """Delete ``key`` only if its value is ``token`` (releasing a lock); return whether."""
        ...

    async def close(self) -> None:
        """Release connections (the backend may be used again afterwards)."""
        ...
