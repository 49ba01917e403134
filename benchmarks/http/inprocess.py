"""Measure per-request framework overhead without a server, and profile it.

``run.py`` measures what users get (uvicorn + network stack), which is noisy
on a shared machine. This script calls each app's ASGI callable directly in a
loop, with the scope uvicorn would build, so the numbers are the framework's
own cost in microseconds per request, stable to a few percent. With
``--profile`` it runs cProfile over covet and prints the hot spots.

Run from the repository root::

    .venv/bin/python benchmarks/http/inprocess.py
    .venv/bin/python benchmarks/http/inprocess.py --profile /plaintext
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.http import bare_app, covet_app, starlette_app  # noqa: E402

APPS: dict[str, Any] = {
    "bare": bare_app.app,
    "starlette": starlette_app.app,
    "covet": covet_app.app,
}
PATHS = ("/plaintext", "/json", "/r99/12345", "/static99")


def make_scope(path: str) -> dict[str, Any]:
    """Return the scope uvicorn's httptools protocol builds for a wrk request."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "GET",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "state": {},
    }


async def run_requests(app: Any, path: str, count: int) -> float:
    """Serve ``count`` requests for ``path``; return CPU seconds per request.

    CPU time of this thread, not wall time, so other processes competing for
    the machine barely move the figure.
    """
    statuses: list[int] = []
    request_message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request_message

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    template = make_scope(path)
    start = time.thread_time()
    for _ in range(count):
        scope = dict(template)
        scope["state"] = {}
        await app(scope, receive, send)
    elapsed = time.thread_time() - start
    if set(statuses) != {200}:
        raise SystemExit(f"{path}: unexpected statuses {sorted(set(statuses))}.")
    return elapsed / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per sample")
    parser.add_argument("--samples", type=int, default=5, help="samples; the median is shown")
    parser.add_argument("--profile", metavar="PATH", help="profile covet serving PATH instead")
    parser.add_argument("--top", type=int, default=25, help="functions shown by --profile")
    args = parser.parse_args(argv)

    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run

    if args.profile:
        app = APPS["covet"]
        runner(run_requests(app, args.profile, 1000))  # warm up: build the stack
        profiler = cProfile.Profile()
        profiler.enable()
        runner(run_requests(app, args.profile, args.requests))
        profiler.disable()
        stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
        stats.print_stats(args.top)
        return 0

    results: dict[tuple[str, str], float] = {}
    for path in PATHS:
        for name, app in APPS.items():
            runner(run_requests(app, path, 1000))  # warm up
            samples = [runner(run_requests(app, path, args.requests)) for _ in range(args.samples)]
            results[name, path] = statistics.median(samples)

    print(f"CPU microseconds per request, median of {args.samples} x {args.requests:,} requests")
    print(f"{'path':<14}" + "".join(f"{name:>12}" for name in APPS) + "   covet - bare")
    for path in PATHS:
        row = f"{path:<14}"
        for name in APPS:
            row += f"{results[name, path] * 1e6:>12.2f}"
        overhead = (results["covet", path] - results["bare", path]) * 1e6
        print(f"{row}   {overhead:>+8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
