"""Measure what the access log, metrics and tracing cost per request, in-process.

Each variant is one covet app with the same two endpoints, observed differently:

- ``none``: no observer (what an app pays when none of this is switched on);
- ``hook``: an observer whose two methods do nothing: the cost of covet's
  per-request hook itself (the request context, the wrapped ``send``);
- ``access-log``: covet's access log (``configure_logging()``, JSON lines written
  to ``/dev/null``, so formatting and the write are counted, not a terminal);
- ``uvicorn-access-log``: no covet observer; uvicorn's own access log instead
  (its default logging configuration, written to ``/dev/null``), called after
  each request with the arguments uvicorn's protocol passes, behind a ``send``
  wrapper that notes the status as covet's hook does: what covet's access log
  replaces;
- ``metrics``: ``covet.metrics.Metrics`` (one process, no multiprocess directory);
- ``tracing``: ``covet.tracing.Tracing`` on an SDK ``TracerProvider`` whose
  ``SimpleSpanProcessor`` hands every finished span to an exporter that drops
  it: the SDK's work per span (creation, attributes, ending, the processor
  call), without a network or a batch thread;
- ``tracing-unsampled``: the same SDK provider with a sampler that keeps no
  trace (``ParentBased(ALWAYS_OFF)``): what a request a sampler drops costs;
- ``tracing-api``: ``Tracing()`` with no SDK configured (the API's no-op
  provider): what the observer costs where tracing is wired but not set up;
- ``all``: access log, metrics and tracing (SDK) together.

Endpoints: ``/plaintext`` (``Hello, World!``) and ``/db`` (one ORM
``get(pk=1)`` on a SQLite file, which tracing turns into a child span and
metrics into a query count). Each variant runs in a fresh interpreter (logging,
the query observers and the tracer provider are process-wide), calling the
app's ASGI callable in a loop with the scope uvicorn builds, as
``inprocess.py`` does. The default reports CPU microseconds per request
(median of samples; ``process_time``, so the SQLite thread counts too); with
``--instructions`` it counts, under valgrind, the instructions per request
(two runs of different lengths, subtracted: start-up cancels out).

Run from the repository root::

    .venv/bin/python benchmarks/http/observability.py
    .venv/bin/python benchmarks/http/observability.py --instructions
    .venv/bin/python benchmarks/http/observability.py --only none,tracing --paths /plaintext
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.http.inprocess import make_scope  # noqa: E402
from benchmarks.http.run import pick_apps, split_list  # noqa: E402

VARIANTS = (
    "none",
    "hook",
    "access-log",
    "uvicorn-access-log",
    "metrics",
    "tracing",
    "tracing-unsampled",
    "tracing-api",
    "all",
)
PATHS = ("/plaintext", "/db")
#: Requests served before anything is counted (caches, the pool, the first spans).
WARM_UP = 300


def build(variant: str, workdir: str) -> tuple[Any, Any]:
    """Return the app of ``variant`` and the database it queries (connected by the caller)."""
    from covet import Covet, PlainTextResponse, Request
    from covet.db import Database, Model, fields

    class Item(Model):
        name = fields.CharField(max_length=50)

        class Meta:
            table = "bench_item"

    app = Covet(allowed_hosts=["127.0.0.1"])
    database = Database(f"sqlite:///{Path(workdir) / 'observability.sqlite3'}")

    @app.get("/plaintext")
    async def plaintext(request: Request) -> PlainTextResponse:
        return PlainTextResponse("Hello, World!")

    @app.get("/db")
    async def db(request: Request) -> PlainTextResponse:
        item = await Item.objects.get(pk=1)
        return PlainTextResponse(item.name)

    if variant == "hook":

        class Nothing:
            def request_started(self, context: Any) -> None:
                return None

            def request_finished(self, context: Any) -> None:
                return None

        app.add_observer(Nothing())
    if variant in ("access-log", "all"):
        import logging

        from covet.logging import LoggingOptions, configure_logging

        configure_logging(LoggingOptions(format="json"))
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(Path(os.devnull).open("w"))  # noqa: SIM115 - kept for the run
    if variant == "uvicorn-access-log":
        app = _with_uvicorn_access_log(app)
    if variant in ("metrics", "all"):
        from covet.metrics import Metrics

        app.add_observer(Metrics())
    if variant in ("tracing", "tracing-unsampled", "all"):
        from opentelemetry.sdk.trace import TracerProvider, sampling
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        from covet.tracing import Tracing

        class DroppingExporter(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        sampler = sampling.ParentBased(sampling.ALWAYS_OFF)
        provider = TracerProvider(sampler=sampler if variant == "tracing-unsampled" else None)
        provider.add_span_processor(SimpleSpanProcessor(DroppingExporter()))
        app.add_observer(Tracing(tracer_provider=provider))
    if variant == "tracing-api":
        from covet.tracing import Tracing

        app.add_observer(Tracing())
    return app, (database, Item)


def _with_uvicorn_access_log(app: Any) -> Any:
    """Wrap ``app`` so each request is logged as uvicorn's HTTP protocols log it."""
    import copy
    import logging
    import logging.config

    from uvicorn.config import LOGGING_CONFIG
    from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

    logging.config.dictConfig(copy.deepcopy(LOGGING_CONFIG))
    access = logging.getLogger("uvicorn.access")
    for handler in access.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(Path(os.devnull).open("w"))  # noqa: SIM115 - kept for the run

    async def logged(scope: Any, receive: Any, send: Any) -> None:
        status = 0

        def noting_send(message: Any) -> Any:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        await app(scope, receive, noting_send)
        access.info(
            '%s - "%s %s HTTP/%s" %d',
            get_client_addr(scope),
            scope["method"],
            get_path_with_query_string(scope),
            scope["http_version"],
            status,
        )

    return logged


async def serve(variant: str, path: str, counts: list[int], workdir: str) -> list[float]:
    """Serve ``WARM_UP`` requests, then each of ``counts``; return CPU seconds per request."""
    from covet.db.schema import create_all

    app, (database, item) = build(variant, workdir)
    await database.connect()
    try:
        await create_all(database, [item])
        if not await item.objects.filter(pk=1).exists():
            await item.objects.create(name="one")
        statuses: list[int] = []
        request_message = {"type": "http.request", "body": b"", "more_body": False}

        async def receive() -> dict[str, Any]:
            return request_message

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        for _ in range(WARM_UP):
            await app(make_scope(path), receive, send)
        if set(statuses) != {200}:
            raise SystemExit(f"{variant} {path}: unexpected statuses {sorted(set(statuses))}.")
        results = []
        for count in counts:
            start = time.process_time()
            for _ in range(count):
                await app(make_scope(path), receive, send)
            results.append((time.process_time() - start) / count)
        return results
    finally:
        await database.disconnect()


def run_child(variant: str, path: str, counts: list[int]) -> list[float]:
    """Run :func:`serve` in this (fresh) interpreter and print the results."""
    with tempfile.TemporaryDirectory(prefix="covet-observability-") as workdir:
        return asyncio.run(serve(variant, path, counts, workdir))


def microseconds(variant: str, path: str, requests: int) -> float:
    """Return the CPU microseconds per request of one fresh run of ``variant`` on ``path``."""
    command = [sys.executable, __file__, "--child", variant, path, str(requests)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant} {path} failed:\n{done.stderr[-2000:]}")
    return float(done.stdout) * 1e6


def instructions(variant: str, path: str, extra: int) -> float:
    """Return the instructions per request: two valgrind runs, ``extra`` requests apart."""
    totals = []
    for count in (100, 100 + extra):
        command = [
            "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
            sys.executable, __file__, "--child", variant, path, str(count),
        ]  # fmt: skip
        # A fixed hash seed: string hashing must not change the count from one run to the next.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"valgrind failed for {variant} {path}:\n{done.stderr[-2000:]}")
        totals.append(int(found.group(1).replace(",", "")))
    return (totals[1] - totals[0]) / extra


def table(
    title: str, names: list[str], paths: list[str], values: dict[tuple[str, str], float]
) -> str:
    """Format ``values`` with each variant's excess over ``none`` beside it."""
    out = io.StringIO()
    print(title, file=out)
    print(f"{'variant':<19}" + "".join(f"{path:>24}" for path in paths), file=out)
    for name in names:
        row = f"{name:<19}"
        for path in paths:
            value = values[name, path]
            base = values.get(("none", path))
            precise = value < 1000
            shown = f"{value:,.2f}" if precise else f"{value:,.0f}"
            if base is not None and name != "none":
                shown += f" ({value - base:+,.2f})" if precise else f" ({value - base:+,.0f})"
            row += f"{shown:>24}"
        print(row, file=out)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated paths")
    parser.add_argument("--requests", type=int, default=5000, help="requests per sample")
    parser.add_argument(
        "--samples", type=int, default=5, help="runs per variant and path; the median is shown"
    )
    parser.add_argument(
        "--instructions", action="store_true", help="count instructions per request (valgrind)"
    )
    parser.add_argument("--extra", type=int, default=2000, help="requests counted (--instructions)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        variant, path, counts = args.child
        results = run_child(variant, path, [int(count) for count in counts.split(",")])
        print(" ".join(f"{value:.9f}" for value in results))
        return 0

    names = pick_apps(parser, args.only, VARIANTS)
    paths = split_list(args.paths)
    values: dict[tuple[str, str], float] = {}
    if args.instructions:
        if shutil.which("valgrind") is None:
            print("valgrind is not installed: apt-get install -y valgrind", file=sys.stderr)
            return 2
        for path in paths:
            for name in names:
                values[name, path] = instructions(name, path, args.extra)
        title = f"Instructions per request (valgrind, {args.extra:,} requests counted; +over none)"
    else:
        # Rounds interleave the variants, so a busy moment of the machine spreads over all.
        samples: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.samples):
            for path in paths:
                for name in names:
                    found = microseconds(name, path, args.requests)
                    samples.setdefault((name, path), []).append(found)
        values = {key: statistics.median(found) for key, found in samples.items()}
        title = (
            f"CPU microseconds per request, median of {args.samples} interleaved runs "
            f"x {args.requests:,} requests (+over none)"
        )
    print(table(title, names, paths, values), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
