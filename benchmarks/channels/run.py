"""Fan-out benchmark: N websocket subscribers on one server worker, one room, per backend.

For each framework (covet, Litestar's ChannelsPlugin) and backend (memory, Redis,
PostgreSQL), a uvicorn worker serves the app in ``<framework>_app.py``;
this process opens ``--subscribers`` websockets to it, asks the server to
publish ``--messages`` messages spaced ``--interval`` seconds (each carries
its publish time), and records for every delivery the time from publish to
receipt. It reports deliveries per second and p50/p99 delivery latency.

    python -m benchmarks.channels.run --subscribers 1000 --messages 200 --interval 0.01

Both apps publish from inside the server, so the memory backend can take part;
Litestar's publish() only queues the message (a background task sends it), so
the latency figures, measured end to end, are the comparable ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[2]
URLS = {
    "memory": "memory://",
    "redis": os.environ.get("COVET_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    "postgres": os.environ.get(
        "COVET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    ),
}
PATHS = {"covet": "/ws", "litestar": "/ws/bench"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(framework: str, backend: str, port: int, prefix: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, BENCH_URL=URLS[backend], BENCH_PREFIX=prefix, PYTHONPATH=str(ROOT))
    argv = [sys.executable, "-m", "uvicorn", f"benchmarks.channels.{framework}_app:app"]
    argv += ["--port", str(port), "--log-level", "warning", "--ws-max-size", "1048576"]
    return subprocess.Popen(argv, env=env, cwd=ROOT)


async def _wait_up(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


async def _subscriber(
    url: str,
    expected: int,
    latencies: list[float],
    ready: asyncio.Event,
    counter: list[int],
    framework: str,
) -> None:
    async with connect(url, max_queue=None, ping_interval=None) as ws:
        if framework == "covet":
            assert await ws.recv() == "ready"
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        received = 0
        while received < expected:
            try:
                raw = await asyncio.wait_for(ws.recv(), 30)
            except TimeoutError:
                return
            now = time.time_ns()
            item = json.loads(raw)
            data = item.get("data", item) if isinstance(item, dict) else item
            if isinstance(data, dict) and "t" in data:
                latencies.append((now - data["t"]) / 1e6)
                received += 1


async def measure(
    framework: str, backend: str, subscribers: int, messages: int, interval: float
) -> dict[str, object]:
    port = _free_port()
    prefix = f"bench{secrets.token_hex(4)}" + ("_" if backend == "postgres" else ":")
    server = _start(framework, backend, port, prefix)
    try:
        await _wait_up(port)
        latencies: list[float] = []
        ready = asyncio.Event()
        counter = [0, subscribers]
        url = f"ws://127.0.0.1:{port}{PATHS[framework]}"
        tasks = []
        for start in range(0, subscribers, 100):  # connect in batches of 100
            tasks += [
                asyncio.ensure_future(
                    _subscriber(url, messages, latencies, ready, counter, framework)
                )
                for _ in range(start, min(subscribers, start + 100))
            ]
            await asyncio.sleep(0.05)
        await asyncio.wait_for(ready.wait(), 60)
        await asyncio.sleep(0.5 if framework == "covet" else 2.0)  # Litestar: no ready signal
        began = time.perf_counter()
        async with httpx.AsyncClient() as http:
            await http.post(
                f"http://127.0.0.1:{port}/burst", params={"count": messages, "interval": interval}
            )
        await asyncio.wait(tasks, timeout=120)
        elapsed = time.perf_counter() - began
        latencies.sort()
        delivered = len(latencies)
        return {
            "framework": framework,
            "backend": backend,
            "subscribers": subscribers,
            "published": messages,
            "delivered": delivered,
            "lost": subscribers * messages - delivered,
            "deliveries_per_s": round(delivered / elapsed),
            "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
            "p99_ms": round(latencies[int(delivered * 0.99) - 1], 2) if latencies else None,
        }
    finally:
        server.terminate()
        server.wait(30)
        await _cleanup(backend, prefix)


async def _cleanup(backend: str, prefix: str) -> None:
    if backend == "redis":
        from redis.asyncio import Redis

        client = Redis.from_url(URLS["redis"])
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    elif backend == "postgres":
        import asyncpg

        conn = await asyncpg.connect(URLS["postgres"])
        for suffix in ("messages", "sequences", "presence"):
            await conn.execute(f'DROP TABLE IF EXISTS "{prefix}{suffix}"')
        await conn.close()


async def publish_rate(backend: str, count: int) -> float:
    """Sequential ``await channels.publish()`` calls per second, no subscriber."""
    from covet.channels import Channels

    prefix = f"bench{secrets.token_hex(4)}" + ("_" if backend == "postgres" else ":")
    channels = Channels(URLS[backend], prefix=prefix, history=100)
    try:
        await channels.publish("rate", 0)
        began = time.perf_counter()
        for n in range(count):
            await channels.publish("rate", {"n": n})
        return count / (time.perf_counter() - began)
    finally:
        await channels.close()
        await _cleanup(backend, prefix)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--backends", default="memory,redis,postgres")
    parser.add_argument("--frameworks", default="covet,litestar")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        rate = await publish_rate(backend, 2000)
        print(json.dumps({"backend": backend, "covet_publish_calls_per_s": round(rate)}))
        for framework in args.frameworks.split(","):
            result = await measure(
                framework, backend, args.subscribers, args.messages, args.interval
            )
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
