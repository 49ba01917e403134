"""Many kept-alive connections and a websocket flood against one live worker (issue 16).

    .venv/bin/python -m benchmarks.reliability.concurrency                 # 1,000 conns, 200 ws
    .venv/bin/python -m benchmarks.reliability.concurrency --connections 1000 --rounds 5 \\
        --websockets 200 --messages 200

Starts the hostile-corpus app (``benchmarks/reliability/hostile/app.py``) as
``covet run`` serves it (one uvicorn worker, covet's limits), then:

* opens ``--connections`` raw TCP connections at once and keeps every one
  open while each sends ``--rounds`` sequential ``GET /ping`` requests on
  it (HTTP/1.1 keep-alive); any status but 200, any reset or any reconnect
  is an error;
* opens ``--websockets`` websocket connections at once, each sending
  ``--messages`` text messages of 1 KiB and checking every echo;

and reports errors, request latencies, the worker's peak loop lag and RSS.
Raises the soft ``RLIMIT_NOFILE`` to the hard one when it is too low for the
connections asked for. Exits 1 on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from benchmarks.reliability.hostile.harness import free_port, prepare_root, start_server


def raise_nofile(needed: int) -> int:
    """Raise the soft open-files limit to at least ``needed`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


async def _keepalive_client(
    port: int, rounds: int, ready: asyncio.Barrier, latencies: list[float], errors: list[str]
) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as exc:
        errors.append(f"connect: {exc}")
        await ready.wait()
        return
    await ready.wait()  # every connection is open before the first request
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            writer.write(b"GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200 ") or body != b"pong":
                errors.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
                break
    except (OSError, asyncio.IncompleteReadError) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        writer.close()


async def _websocket_client(
    port: int, messages: int, ready: asyncio.Barrier, errors: list[str]
) -> int:
    payload = "x" * 1024
    echoed = 0
    try:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=60) as ws:
            await ready.wait()
            for number in range(messages):
                await ws.send(f"{number}:{payload}")
            for number in range(messages):
                if await ws.recv() != f"{number}:{payload}":
                    errors.append(f"websocket: message {number} echoed wrong")
                    break
                echoed += 1
    except (OSError, websockets.WebSocketException, TimeoutError) as exc:
        errors.append(f"websocket: {type(exc).__name__}: {exc}")
    return echoed


async def _keepalive(port: int, connections: int, rounds: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    ready = asyncio.Barrier(connections)
    started = time.monotonic()
    await asyncio.gather(
        *(_keepalive_client(port, rounds, ready, latencies, errors) for _ in range(connections))
    )
    ordered = sorted(latencies)
    return {
        "connections": connections,
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1) if ordered else None,
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 1) if ordered else None,
        "seconds": round(time.monotonic() - started, 1),
    }


async def _flood(port: int, clients: int, messages: int) -> dict[str, Any]:
    errors: list[str] = []
    ready = asyncio.Barrier(clients)
    started = time.monotonic()
    echoed = await asyncio.gather(
        *(_websocket_client(port, messages, ready, errors) for _ in range(clients)),
        return_exceptions=False,
    )
    return {
        "websockets": clients,
        "messages_echoed": sum(echoed),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "seconds": round(time.monotonic() - started, 1),
    }


def run(connections: int, rounds: int, clients: int, messages: int) -> dict[str, Any]:
    """Serve the app, run both loads one after the other and return the figures."""
    nofile = raise_nofile(max(connections, clients) + 200)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        prepare_root(root)
        port = free_port()
        log = root / "server.log"
        process = start_server(root, port, log, header_timeout=None, body_timeout=None)
        base = f"http://127.0.0.1:{port}"
        try:
            before = httpx.get(base + "/_stats?reset=1").json()
            keepalive = asyncio.run(_keepalive(port, connections, rounds))
            middle = httpx.get(base + "/_stats?reset=1").json()
            flood = asyncio.run(_flood(port, clients, messages)) if clients else {}
            after = httpx.get(base + "/_stats").json()
        finally:
            process.terminate()
            process.wait(timeout=35)
        text = log.read_text("utf-8", "replace")
    keepalive.update(
        loop_lag_max_ms=middle["lag_max_ms"], loop_lag_cpu_max_ms=middle["lag_cpu_max_ms"]
    )
    flood.update(loop_lag_max_ms=after["lag_max_ms"], loop_lag_cpu_max_ms=after["lag_cpu_max_ms"])
    return {
        "nofile": nofile,
        "keepalive": keepalive,
        "websocket_flood": flood,
        "rss_before_mib": round(before["VmRSS"] / 2**20, 1),
        "rss_after_mib": round(after["VmRSS"] / 2**20, 1),
        "rss_peak_mib": round(after["VmHWM"] / 2**20, 1),
        "log_tracebacks": text.count("Traceback"),
        "log_errors": text.count("ERROR"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--websockets", type=int, default=200)
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    figures = run(args.connections, args.rounds, args.websockets, args.messages)
    print(json.dumps(figures, indent=2))
    failed = (
        figures["keepalive"]["errors"]
        or figures["websocket_flood"].get("errors")
        or figures["log_tracebacks"]
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
