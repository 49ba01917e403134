"""Profile covet's per-operation overhead against one backend (cProfile or a timing loop).

Creates a private schema/database/file with the benchmark's tables and rows,
runs one operation in a loop, and prints either the client CPU time per
operation (default) or cProfile's hot spots (``--profile``). Run from the
repository root::

    .venv/bin/python benchmarks/orm/hotpath.py --backend postgres --op get_by_pk
    .venv/bin/python benchmarks/orm/hotpath.py --backend sqlite --op filter_20 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import os
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.orm import run  # noqa: E402
from benchmarks.orm.common import create_target, drop_target  # noqa: E402


async def main_async(opts: argparse.Namespace) -> None:
    """Set up, loop, report, tear down."""
    with tempfile.TemporaryDirectory(prefix="covet-ormprof-") as tmp:
        target = run.targets_for(opts.backend, f"prof{os.getpid()}", opts, tmp)
        await create_target(target)
        contender = importlib.import_module(run.MODULES[opts.contender]).make(opts.backend)
        try:
            await contender.start(target)
            await contender.seed()
            fn = run.method(contender, opts.op)
            args = run.make_args(opts.op, opts.n, random.Random(1))
            for a in args[:200]:
                await fn(*a)
            profiler = cProfile.Profile() if opts.profile else None
            best = float("inf")
            for _ in range(opts.samples):
                cpu0 = time.process_time()
                if profiler is not None:
                    profiler.enable()
                for a in args:
                    await fn(*a)
                if profiler is not None:
                    profiler.disable()
                best = min(best, (time.process_time() - cpu0) / len(args) * 1e6)
                if opts.op in run.WRITES:
                    await contender.clear_comments()
            print(f"{opts.contender} {opts.backend} {opts.op}: {best:.1f} µs CPU/op (best of "
                  f"{opts.samples} x {len(args)})")  # fmt: skip
            if profiler is not None:
                stats = pstats.Stats(profiler)
                stats.sort_stats(opts.sort).print_stats(opts.lines)
        finally:
            await contender.stop()
            await drop_target(target)


def main() -> None:
    """Parse the command line and run."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--backend", choices=run.BACKENDS, default="postgres")
    p.add_argument("--contender", choices=run.CONTENDERS, default="covet")
    p.add_argument("--op", choices=tuple(run.OPERATIONS), default="get_by_pk")
    p.add_argument("-n", type=int, default=2000, help="operations per sample")
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--profile", action="store_true", help="print cProfile hot spots")
    p.add_argument("--sort", default="tottime", help="pstats sort key (tottime, cumulative)")
    p.add_argument("--lines", type=int, default=30)
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument("--pg-url", default=os.environ.get("COVET_BENCH_PG_URL", run.PG_URL))
    p.add_argument("--mysql-url", default=os.environ.get("COVET_BENCH_MYSQL_URL", run.MYSQL_URL))
    opts = p.parse_args()
    runner: Any
    if opts.loop == "uvloop":
        import uvloop

        runner = uvloop.run
    else:
        import asyncio

        runner = asyncio.run
    runner(main_async(opts))


if __name__ == "__main__":
    main()
