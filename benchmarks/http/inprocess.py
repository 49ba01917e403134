"""Measure per-request framework overhead without a server, and profile it.

``run.py`` measures what users get (uvicorn + network stack), which is noisy
on a shared machine. This script calls each app's ASGI callable directly in a
loop, with the scope uvicorn would build, so the numbers are the framework's
own cost in microseconds per request, stable to a few percent. With
``--profile`` it runs cProfile over covet and prints the hot spots. With
``--instructions`` it counts, under valgrind's callgrind, the instructions
each app spends per request (exact, whatever the machine's load, in about
20 seconds per cell): the quickest exact measure of a change to the request
path. Add uvicorn's own cost per request (``instructions.py``'s bare figure
minus this script's) to turn the counts into the worker's.

Run from the repository root::

    .venv/bin/python benchmarks/http/inprocess.py
    .venv/bin/python benchmarks/http/inprocess.py --profile /plaintext
    .venv/bin/python benchmarks/http/inprocess.py --instructions --paths /plaintext,/json
    .venv/bin/python benchmarks/http/inprocess.py --instructions --only bare,covet,scaffold \
        --paths /plaintext,/json,/page

``--profile`` profiles covet, or the one app given with ``--only``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.http import bare_app, covet_app, minimal_app, starlette_app  # noqa: E402
from benchmarks.http.instructions import collected, have_valgrind  # noqa: E402
from benchmarks.http.run import pick_apps, split_list  # noqa: E402

APPS: dict[str, Any] = {
    "bare": bare_app.app,
    "starlette": starlette_app.app,
    "covet": covet_app.app,
    # Not a peer: the floor for any framework with request and response objects
    # (/plaintext and /json only; see minimal_app.py).
    "minimal": minimal_app.app,
    # covet behind the middleware `covet new` scaffolds: imported only when asked for
    # (see app()), so the other apps' processes do not hold its modules.
    "scaffold": None,
}
MAIN_APPS = ("bare", "starlette", "covet")
PATHS = ("/plaintext", "/json", "/r99/12345", "/static99")
#: Extra request headers by path (the scaffold app's /page carries a session cookie).
REQUEST_HEADERS: dict[str, list[tuple[bytes, bytes]]] = {}


def app(name: str) -> Any:
    """Return the ASGI app called ``name``, importing the scaffold app on first use."""
    if APPS[name] is None:
        from benchmarks.http import scaffold_app

        APPS[name] = scaffold_app.app
        REQUEST_HEADERS.update(scaffold_app.REQUEST_HEADERS)
    return APPS[name]


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
        "headers": [(b"host", b"127.0.0.1:8000"), *REQUEST_HEADERS.get(path, ())],
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


def drive(app: Any, path: str, count: int) -> None:
    """Serve ``count`` requests by stepping each app coroutine by hand, without an event loop.

    The benchmark endpoints never wait for anything, so each coroutine runs to
    completion on its first step; one that suspends is an error. Without the
    loop, nothing but the app's own work (and this driver's, the same for
    every app) is counted.
    """
    request_message = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return request_message

    async def send(message: dict[str, Any]) -> None:
        return None

    statuses: list[int] = []

    async def checking_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    # One request whose answer is checked (a fast 404 is not a result), then the counted ones.
    asyncio.run(app(make_scope(path), receive, checking_send))
    if statuses != [200]:
        raise SystemExit(f"{path}: unexpected statuses {statuses}.")
    for _ in range(count):
        # A new scope built as uvicorn builds it (a dict display, not a copy): the
        # layout of its hash table decides what each lookup in it costs.
        step = app(make_scope(path), receive, send)
        try:
            step.send(None)
        except StopIteration:
            continue
        step.close()
        raise SystemExit(f"{path}: the app waited for something; it cannot be driven by hand.")


def count_instructions(name: str, path: str, count: int, workdir: str) -> int:
    """Return the instructions of a whole interpreter run that serves ``count`` requests."""
    out = Path(workdir) / f"callgrind.{name}.{count}"
    command = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, __file__, "--drive", name, path, str(count),
    ]  # fmt: skip
    # A fixed hash seed: string hashing must not change the count from one run to the next.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=False)
    total = collected(done.stderr)
    if done.returncode != 0 or total is None:
        raise SystemExit(f"callgrind failed for {name} {path}:\n{done.stderr.decode()[-2000:]}")
    return total


def instructions(names: list[str], paths: list[str], extra: int) -> int:
    """Print the instructions per request of each app, from two runs differenced."""
    if not have_valgrind():
        return 2
    base = 200  # warm-up requests in both runs: the difference is ``extra`` requests
    counts: dict[tuple[str, str], float] = {}
    # One driven request per cell outside valgrind first: bytecode compiled in the short
    # run and found cached by the long one would come out as fewer instructions per request.
    for name in names:
        for path in paths:
            command = [sys.executable, __file__, "--drive", name, path, "1"]
            subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
    with tempfile.TemporaryDirectory(prefix="covet-inprocess-") as tmp:
        for path in paths:
            for name in names:
                short = count_instructions(name, path, base, tmp)
                long = count_instructions(name, path, base + extra, tmp)
                counts[name, path] = (long - short) / extra
    print("Instructions per request in-process (callgrind), each app's excess over bare after it")
    print(f"{'path':<14}" + "".join(f"{name:>26}" for name in names))
    for path in paths:
        row = f"{path:<14}"
        for name in names:
            value = counts[name, path]
            bare = counts.get(("bare", path))
            extra_cost = "" if bare is None or name == "bare" else f" +{value - bare:,.0f}"
            row += f"{f'{value:,.0f}{extra_cost}':>26}"
        print(row)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per sample")
    parser.add_argument("--samples", type=int, default=5, help="samples; the median is shown")
    parser.add_argument("--profile", metavar="PATH", help="profile covet serving PATH instead")
    parser.add_argument("--top", type=int, default=25, help="functions shown by --profile")
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions per request (callgrind)"
    )
    parser.add_argument(
        "--only",
        default=",".join(MAIN_APPS),
        help=(
            f"comma-separated apps among {', '.join(APPS)} "
            "(minimal: /plaintext, /json; scaffold: /plaintext, /json, /page)"
        ),
    )
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated paths")
    parser.add_argument("--extra", type=int, default=5000, help="requests counted (--instructions)")
    parser.add_argument(
        "--drive", nargs=3, metavar=("APP", "PATH", "COUNT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    names = pick_apps(parser, args.only, APPS)
    paths = split_list(args.paths)

    if args.drive:
        name, path, count = args.drive
        drive(app(name), path, int(count))
        return 0
    if args.instructions:
        return instructions(names, paths, args.extra)

    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run

    if args.profile:
        profiled = app(names[-1] if len(names) == 1 else "covet")
        runner(run_requests(profiled, args.profile, 1000))  # warm up: build the stack
        profiler = cProfile.Profile()
        profiler.enable()
        runner(run_requests(profiled, args.profile, args.requests))
        profiler.disable()
        stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
        stats.print_stats(args.top)
        return 0

    results: dict[tuple[str, str], float] = {}
    for path in paths:
        for name in names:
            served = app(name)
            runner(run_requests(served, path, 1000))  # warm up
            samples = [
                runner(run_requests(served, path, args.requests)) for _ in range(args.samples)
            ]
            results[name, path] = statistics.median(samples)

    print(f"CPU microseconds per request, median of {args.samples} x {args.requests:,} requests")
    compare = "covet" in names and "bare" in names
    print(f"{'path':<14}" + "".join(f"{name:>12}" for name in names) + compare * "   covet - bare")
    for path in paths:
        row = f"{path:<14}"
        for name in names:
            row += f"{results[name, path] * 1e6:>12.2f}"
        if compare:
            row += f"   {(results['covet', path] - results['bare', path]) * 1e6:>+8.2f}"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
