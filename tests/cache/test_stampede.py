"""get_or_set's stampede protection: single flight, the cross-process lock, early refresh."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from pathlib import Path

import pytest

from covet.cache import CacheError, flight
from tests.cache.conftest import DATABASES

REPO = Path(__file__).resolve().parents[2]
#: Memory caches are per process: the cross-process tests run on the shared stores.
shared_stores = pytest.mark.parametrize("store", ["redis", *DATABASES], indirect=True)


class Producer:
    """Counts its calls; takes ``delay`` seconds (on the event loop) to produce."""

    def __init__(self, value: object = "fresh", delay: float = 0.05) -> None:
        self.value = value
        self.delay = delay
        self.calls = 0

    async def __call__(self) -> object:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return self.value


async def test_concurrent_callers_share_one_production(make):
    cache = make()
    produce = Producer()
    values = await asyncio.gather(*(cache.get_or_set("k", produce, 60) for _ in range(20)))
    assert values == ["fresh"] * 20
    assert produce.calls == 1
    assert await cache.get("k") == "fresh"
    assert cache.flights() == {}
    # Later calls read the cache.
    assert await cache.get_or_set("k", produce, 60) == "fresh"
    assert produce.calls == 1


async def test_plain_values_and_sync_functions(make):
    cache = make()
    assert await cache.get_or_set("value", [1, 2], 60) == [1, 2]
    assert await cache.get_or_set("value", [3], 60) == [1, 2]
    assert await cache.get_or_set("sync", lambda: {"a": 1}, 60) == {"a": 1}
    assert await cache.get_or_set("none", lambda: None, 60) is None  # None is cached too
    assert await cache.get_or_set("none", lambda: "other", 60) is None
    assert await cache.get_or_set("no-ttl", "kept", None) == "kept"
    assert await cache.get("no-ttl") == "kept"


async def test_a_failing_producer_fails_every_waiter_and_stores_nothing(make):
    cache = make()

    async def fail() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("backend down")

    results = await asyncio.gather(
        *(cache.get_or_set("k", fail, 60) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await cache.get("k") is None
    produce = Producer("second try")
    assert await cache.get_or_set("k", produce, 60) == "second try"  # the lock was released


async def test_a_cancelled_leader_hands_over_to_a_waiter(make):
    cache = make()
    slow = Producer("never", delay=10)
    leader = asyncio.ensure_future(cache.get_or_set("k", slow, 60))
    await asyncio.sleep(0.05)
    fast = Producer("from the waiter")
    waiter = asyncio.ensure_future(cache.get_or_set("k", fast, 60))
    await asyncio.sleep(0.05)
    leader.cancel()
    assert await waiter == "from the waiter"
    assert (slow.calls, fast.calls) == (1, 1)
    with pytest.raises(asyncio.CancelledError):
        await leader


@shared_stores
async def test_two_caches_on_one_store_produce_once(make, store):
    # Two Cache objects have separate single flights, like two processes: only the
    # backend lock stands between them.
    prefix = f"ct{secrets.token_hex(5)}"
    one, two = make(key_prefix=prefix), make(key_prefix=prefix)
    produce = Producer(delay=0.2)
    values = await asyncio.gather(
        *(c.get_or_set("k", produce, 60) for c in (one, two) for _ in range(5))
    )
    assert values == ["fresh"] * 10
    assert produce.calls == 1


@shared_stores
async def test_a_dead_holders_lock_expires(make, store):
    cache = make()
    lock_key = cache.lock_key(cache.make_key("k"))
    await cache.backend.add(lock_key, b"someone-who-died", 0.3)
    produce = Producer("after the lock expired")
    if store.name != "redis":
        asyncio.get_running_loop().call_later(0.1, lambda: setattr(store.clock, "now", 2e9))
    started = asyncio.get_running_loop().time()
    assert await cache.get_or_set("k", produce, 60, lock_timeout=5) == "after the lock expired"
    assert asyncio.get_running_loop().time() - started < 3
    assert produce.calls == 1


async def test_without_the_lock_processes_do_not_wait(make):
    cache = make()
    produce = Producer()
    values = await asyncio.gather(
        *(cache.get_or_set("k", produce, 60, lock=False) for _ in range(5))
    )
    assert values == ["fresh"] * 5
    assert produce.calls == 1  # single flight still applies in the process


async def test_early_refresh_near_expiry(make, store, monkeypatch):
    cache = make()
    first = Producer("old", delay=0.05)  # delta: it took about 0.05 s to produce
    assert await cache.get_or_set("k", first, 100) == "old"
    refresh = Producer("new", delay=0)
    # U = 1 (ln U = 0): never early, however close the expiry.
    monkeypatch.setattr(flight._uniform, "random", lambda: 0.0)
    store.clock.now += 99.9
    assert await cache.get_or_set("k", refresh, 100) == "old"
    # U tiny: delta * -ln U (0.05 * 27.6) reaches past the expiry 0.1 s away: refresh.
    monkeypatch.setattr(flight._uniform, "random", lambda: 1 - 1e-12)
    assert await cache.get_or_set("k", refresh, 100) == "new"
    assert refresh.calls == 1
    assert await cache.get("k") == "new"
    # early=0 turns it off.
    assert await cache.get_or_set("k", refresh, 100, early=0) == "new"
    assert refresh.calls == 1


@shared_stores
async def test_early_refresh_leaves_the_old_value_to_others(make, store, monkeypatch):
    prefix = f"ct{secrets.token_hex(5)}"
    one, two = make(key_prefix=prefix), make(key_prefix=prefix)
    await one.get_or_set("k", Producer("old", delay=0.05), 100)
    store.clock.now += 99.9
    monkeypatch.setattr(flight._uniform, "random", lambda: 1 - 1e-12)
    slow = Producer("new", delay=0.2)
    refreshing = asyncio.ensure_future(one.get_or_set("k", slow, 100))
    await asyncio.sleep(0.05)
    # The other "process" sees the lock taken: it keeps the current value, now.
    assert await two.get_or_set("k", Producer("unused", delay=0), 100) == "old"
    assert await refreshing == "new"


async def test_get_or_set_checks_its_options(make):
    cache = make()
    with pytest.raises(CacheError, match="lock_timeout must be positive"):
        await cache.get_or_set("k", 1, lock_timeout=0)
    with pytest.raises(CacheError, match="early must be 0 or more"):
        await cache.get_or_set("k", 1, early=-1)


async def test_plain_reads_see_values_stored_by_get_or_set(make):
    cache = make()
    await cache.get_or_set("k", {"v": 1}, 60)
    assert await cache.get("k") == {"v": 1}
    assert await cache.get_many(["k"]) == {"k": {"v": 1}}


@shared_stores
async def test_two_processes_produce_once(store, make):
    make()  # the fixture's clean-up of this prefix needs one cache made on the store
    prefix = store.made[0].key_prefix
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.cache.stampede_worker",
            store.name,
            store.url,
            prefix,
            "report",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = await asyncio.wait_for(worker.stdout.readline(), 30)
            assert line == b"ready\n"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
        outputs = [
            (await asyncio.wait_for(worker.communicate(), 30))[0].decode() for worker in workers
        ]
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    assert [worker.returncode for worker in workers] == [0, 0]
    assert sum(output.count("produced") for output in outputs) == 1, outputs
    assert all(f"value made by {prefix}" in output for output in outputs), outputs
