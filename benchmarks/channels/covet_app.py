"""The covet side of the fan-out benchmark: websockets in one room, a server-side publisher."""

from __future__ import annotations

import asyncio
import os
import time

from covet import Covet, Request, WebSocket
from covet.channels import Channels

channels = Channels(
    os.environ.get("BENCH_URL", "memory://"),
    prefix=os.environ.get("BENCH_PREFIX") or None,
    history=0,
    max_queue=1024,
)
app = Covet(allowed_hosts=["127.0.0.1"], on_shutdown=[channels.close])
_tasks: set[asyncio.Task[None]] = set()


@app.websocket("/ws")
async def subscriber(websocket: WebSocket) -> None:
    await websocket.accept()
    async with channels.socket(websocket, user_channel=False) as sock:
        await sock.join("bench", presence=False)
        await websocket.send_text("ready")
        async for _ in websocket.iter_text():
            pass


async def _burst(count: int, interval: float) -> None:
    for n in range(count):
        await channels.publish("bench", {"t": time.time_ns(), "n": n})
        await asyncio.sleep(interval)


@app.post("/burst")
async def burst(request: Request) -> dict[str, int]:
    count = int(request.query_params["count"])
    interval = float(request.query_params["interval"])
    task = asyncio.get_running_loop().create_task(_burst(count, interval))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return {"count": count}
