"""Cache get/set throughput: covet.cache beside aiocache and cashews, run the same way.

For each backend (memory, Redis, and covet's database backend on SQLite,
PostgreSQL and MariaDB) and each library that has it, one coroutine (or
``--concurrency`` of them) does ``--ops`` ``set`` calls on distinct keys, then
``--ops`` ``get`` calls on the same keys (all hits), with one small dict as the
value and a 60 s TTL. Rounds are interleaved across libraries and medians
reported, with covet's ratio to each peer (above 1: covet is faster).

    python -m benchmarks.cache.run                        # about a minute
    python -m benchmarks.cache.run --ops 5000 --rounds 5 --only memory,redis --uvloop

Each library runs with its defaults for values: covet JSON-encodes (memory
too: its byte bound needs sizes), aiocache keeps objects as they are in memory
and JSON-encodes for Redis, cashews pickles. aiocache and cashews have no SQL
backend, so the database rows have covet alone. Every key lives under a random
prefix that is deleted afterwards; PostgreSQL and MariaDB get a throw-away
schema or database. Needs the ``bench`` extra (aiocache, cashews) for the peers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

REDIS_URL = os.environ.get("COVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URLS = {
    "postgres": os.environ.get(
        "COVET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get("COVET_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}
VALUE = {"id": 42, "name": "widget", "tags": ["a", "b"], "price": 9.99}
BACKENDS = ("memory", "redis", "sqlite", "postgres", "mysql")

# A client: (set(key, value), get(key), close()).
Client = tuple[
    Callable[[str, Any], Awaitable[Any]],
    Callable[[str], Awaitable[Any]],
    Callable[[], Awaitable[Any]],
]


async def covet_client(backend: str, prefix: str, url: str) -> Client:
    from covet.cache import Cache

    cache = Cache(url if backend in ("memory", "redis") else "database://bench", key_prefix=prefix)

    async def set_(key: str, value: Any) -> None:
        await cache.set(key, value, 60)

    async def close() -> None:
        await cache.clear()
        await cache.close()

    return set_, cache.get, close


async def aiocache_client(backend: str, prefix: str, url: str) -> Client | None:
    try:
        from aiocache.backends.memory import SimpleMemoryCache
        from aiocache.backends.redis import RedisCache
    except ImportError:
        return None
    if backend == "memory":
        cache: Any = SimpleMemoryCache(namespace=prefix)
    elif backend == "redis":
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        cache = RedisCache(
            endpoint=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=int(parts.path.strip("/") or 0),
            namespace=prefix,
        )
    else:
        return None

    async def set_(key: str, value: Any) -> None:
        await cache.set(key, value, ttl=60)

    async def close() -> None:
        await cache.clear(namespace=prefix)
        await cache.close()

    return set_, cache.get, close


async def cashews_client(backend: str, prefix: str, url: str) -> Client | None:
    try:
        from cashews import Cache
    except ImportError:
        return None
    if backend not in ("memory", "redis"):
        return None
    cache = Cache()
    # covet's memory cache keeps 10,000 entries by default; give cashews the same bound.
    cache.setup("mem://?size=10000" if backend == "memory" else url, client_side=False)

    async def set_(key: str, value: Any) -> None:
        await cache.set(prefix + key, value, expire=60)

    async def get(key: str) -> Any:
        return await cache.get(prefix + key)

    async def close() -> None:
        await cache.delete_match(prefix + "*")
        await cache.close()

    return set_, get, close


LIBRARIES: dict[str, Callable[[str, str, str], Awaitable[Client | None]]] = {
    "covet": covet_client,
    "aiocache": aiocache_client,
    "cashews": cashews_client,
}


async def measure(client: Client, ops: int, concurrency: int) -> tuple[float, float]:
    """Return (set ops/s, get ops/s)."""
    set_, get, _ = client
    keys = [f"k{n}" for n in range(ops)]
    shares = [keys[n::concurrency] for n in range(concurrency)]

    async def run(call: Callable[[str], Awaitable[Any]]) -> float:
        async def worker(share: list[str]) -> None:
            for key in share:
                await call(key)

        started = time.perf_counter()
        await asyncio.gather(*(worker(share) for share in shares))
        return ops / (time.perf_counter() - started)

    async def one_set(key: str) -> None:
        await set_(key, VALUE)

    async def one_get(key: str) -> None:
        value = await get(key)
        if value != VALUE:
            raise AssertionError(f"wrong value for {key!r}: {value!r}")  # a fast wrong answer

    return await run(one_set), await run(one_get)


@contextlib.asynccontextmanager
async def database(backend: str, workdir: Path) -> Any:
    """Connect alias 'bench' to a private database holding the cache table."""
    from covet.cache import CacheEntry
    from covet.db import Database, create_all

    admin = None
    name = f"covet_bench_{secrets.token_hex(4)}"
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        admin = Database(DATABASE_URLS[backend], alias="bench_admin")
        await admin.connect()
        for sql in admin.backend.creation.create_test_database_sql(name):
            await admin.execute(sql)
        url = admin.backend.creation.test_database_url(DATABASE_URLS[backend], name)
    db = Database(url, alias="bench")
    await db.connect()
    try:
        await create_all([CacheEntry], using="bench")
        yield
    finally:
        await db.disconnect()
        if admin is not None:
            for sql in admin.backend.creation.drop_test_database_sql(name):
                await admin.execute(sql)
            await admin.disconnect()


async def bench_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url = {"memory": "memory://", "redis": REDIS_URL}.get(backend, "")
    samples: dict[str, dict[str, list[float]]] = {}
    async with contextlib.AsyncExitStack() as stack:
        if backend not in ("memory", "redis"):
            await stack.enter_async_context(database(backend, workdir))
        for _ in range(args.rounds):
            for library, factory in LIBRARIES.items():
                prefix = f"bench{secrets.token_hex(4)}"
                client = await factory(backend, prefix, url)
                if client is None:
                    continue
                try:
                    set_rate, get_rate = await measure(client, args.ops, args.concurrency)
                finally:
                    await client[2]()
                found = samples.setdefault(library, {"set": [], "get": []})
                found["set"].append(set_rate)
                found["get"].append(get_rate)
    return {
        library: {op: statistics.median(rates) for op, rates in found.items()}
        for library, found in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000, help="operations per round and kind")
    # (at most 10,000: the memory caches' bound)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=1, help="coroutines sharing the ops")
    parser.add_argument("--only", default=",".join(BACKENDS), help="backends to run")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    parser.add_argument("--json", type=Path, help="write the medians here")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.install()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for backend in args.only.split(","):
            results[backend] = asyncio.run(bench_backend(backend, args, Path(workdir)))
    print(f"ops={args.ops} rounds={args.rounds} concurrency={args.concurrency} (medians, ops/s)")
    print(f"{'backend':<9} {'library':<9} {'set/s':>10} {'get/s':>10}  covet/peer set, get")
    for backend, libraries in results.items():
        ours = libraries["covet"]
        for library, rates in libraries.items():
            ratio = ""
            if library != "covet":
                ratio = f"  {ours['set'] / rates['set']:.2f}x, {ours['get'] / rates['get']:.2f}x"
            print(f"{backend:<9} {library:<9} {rates['set']:>10.0f} {rates['get']:>10.0f}{ratio}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
