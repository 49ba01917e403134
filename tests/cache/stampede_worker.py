"""One process of the cross-process stampede test: ``python -m tests.cache.stampede_worker``.

Arguments: the store (``redis``, ``sqlite``, ``postgres``, ``mysql``), its URL,
the key prefix and the key. The worker prints ``ready`` once connected, waits
for a line on standard input (the parent releases every worker at once), runs
``get_or_set`` with a producer that takes 0.3 s and prints ``produced`` if its
own producer ran, then ``value <value>``.
"""

from __future__ import annotations

import asyncio
import sys

from covet.cache import Cache
from covet.db import Database


async def main(store: str, url: str, prefix: str, key: str) -> None:
    database: Database | None = None
    if store == "redis":
        cache = Cache(url, key_prefix=prefix)
    else:
        database = Database(url, alias="stampede")
        await database.connect()
        cache = Cache("database://stampede", key_prefix=prefix)
    await cache.get("warm-up")  # open the connections before the race
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)

    async def produce() -> str:
        print("produced", flush=True)
        await asyncio.sleep(0.3)
        return f"made by {prefix}"

    # Several tasks in this process too: single flight here, the lock across processes.
    values = await asyncio.gather(*(cache.get_or_set(key, produce, 60) for _ in range(5)))
    print("value", *set(values), flush=True)
    await cache.close()
    if database is not None:
        await database.disconnect()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
