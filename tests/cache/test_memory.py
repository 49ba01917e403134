"""The memory backend's bounds: least recently used entries go first, by count and by bytes."""

from __future__ import annotations

import pytest

from covet.cache import Cache, MemoryBackend
from covet.exceptions import ImproperlyConfigured
from tests.cache.conftest import Clock


def memory(**options: object) -> tuple[Cache, MemoryBackend]:
    backend = MemoryBackend(**options)  # type: ignore[arg-type]
    return Cache(backend, key_prefix="m"), backend


async def test_least_recently_used_entries_are_evicted_first():
    cache, backend = memory(max_entries=3)
    await cache.set_many({"a": 1, "b": 2, "c": 3})
    assert await cache.get("a") == 1  # "a" is now the most recently used
    await cache.set("d", 4)
    assert len(backend) == 3
    assert await cache.get_many(["a", "b", "c", "d"]) == {"a": 1, "c": 3, "d": 4}
    await cache.touch("c", 60)  # touching counts as a use
    await cache.incr("a")  # and so does incr
    await cache.set("e", 5)
    assert await cache.get_many(["a", "c", "d", "e"]) == {"a": 2, "c": 3, "e": 5}


async def test_bounded_by_bytes():
    cache, backend = memory(max_entries=None, max_bytes=2000)
    for n in range(20):
        await cache.set(f"k{n}", "x" * 300)
    assert backend.size <= 2000
    assert 0 < len(backend) < 20
    assert await cache.get("k19") == "x" * 300  # the newest is kept
    assert await cache.get("k0") is None


async def test_a_value_larger_than_the_cache_is_not_stored_and_evicts_nothing():
    cache, _ = memory(max_bytes=1000)
    await cache.set("small", "s")
    await cache.set("small", "x" * 5000)  # replaces: the old value goes, the new is refused
    assert await cache.get("small") is None
    await cache.set("other", 1)
    assert await cache.add("huge", "x" * 5000) is False
    assert await cache.get("other") == 1


async def test_size_accounting_follows_every_change():
    cache, backend = memory()
    await cache.set("k", "x" * 100)
    one = backend.size
    await cache.set("k", "x" * 100)
    assert backend.size == one
    await cache.set("n", 1)
    await cache.incr("n", 10**12)
    await cache.delete("n")
    await cache.delete_many(["k"])
    assert (backend.size, len(backend)) == (0, 0)


async def test_expired_entries_are_dropped_when_read():
    clock = Clock()
    cache, backend = memory(clock=clock)
    await cache.set("k", 1, ttl=10)
    clock.now += 11
    assert len(backend) == 1
    assert await cache.get("k") is None
    assert len(backend) == 0


async def test_one_store_per_backend():
    one, _ = memory()
    two, _ = memory()
    await one.set("k", 1)
    assert await two.get("k") is None


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "ten"])
def test_bounds_are_checked(bad):
    with pytest.raises(ImproperlyConfigured, match="must be a positive integer or None"):
        MemoryBackend(max_entries=bad)


def test_url_options():
    backend = Cache("memory://?max_entries=5&max_bytes=4096").backend
    assert isinstance(backend, MemoryBackend)
    assert (backend.max_entries, backend.max_bytes) == (5, 4096)
    assert Cache("memory://?max_entries=none").backend.max_entries is None  # type: ignore[attr-defined]
    with pytest.raises(ImproperlyConfigured, match="has no host or path"):
        Cache("memory://somewhere")
