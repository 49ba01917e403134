"""The Litestar side of the fan-out benchmark, built the same way with its ChannelsPlugin."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

from litestar import Litestar, post
from litestar.channels import ChannelsPlugin
from litestar.channels.backends.asyncpg import AsyncPgChannelsBackend
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.backends.redis import RedisChannelsPubSubBackend

if TYPE_CHECKING:
    from litestar.channels.backends.base import ChannelsBackend


def _backend(url: str) -> ChannelsBackend:
    if url.startswith("redis"):
        from redis.asyncio import Redis

        return RedisChannelsPubSubBackend(
            redis=Redis.from_url(url), key_prefix=os.environ.get("BENCH_PREFIX") or "bench"
        )
    if url.startswith("postgres"):
        return AsyncPgChannelsBackend(url)
    return MemoryChannelsBackend()


plugin = ChannelsPlugin(
    backend=_backend(os.environ.get("BENCH_URL", "memory://")),
    channels=["bench"],
    create_ws_route_handlers=True,
    ws_handler_base_path="/ws",
    subscriber_max_backlog=1024,
    subscriber_backlog_strategy="dropleft",
)
_tasks: set[asyncio.Task[None]] = set()


async def _burst(count: int, interval: float) -> None:
    for n in range(count):
        plugin.publish({"t": time.time_ns(), "n": n}, "bench")
        await asyncio.sleep(interval)


@post("/burst", status_code=200)
async def burst(count: int, interval: float) -> dict[str, int]:
    task = asyncio.get_running_loop().create_task(_burst(count, interval))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return {"count": count}


app = Litestar(route_handlers=[burst], plugins=[plugin])
