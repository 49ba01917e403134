"""Profile covet's per-operation overhead against one backend (CPU time, cProfile or instructions).

Creates a private schema/database/file with the benchmark's tables and rows,
runs one operation in a loop, and prints the client CPU time per operation
(default), cProfile's hot spots (``--profile``), or the number of machine
instructions per operation counted by valgrind (``--instructions``), the one
figure that does not move with the load of a shared machine. Run from the
repository root::

    .venv/bin/python benchmarks/orm/hotpath.py --backend postgres --op get_by_pk
    .venv/bin/python benchmarks/orm/hotpath.py --backend sqlite --op filter_20 --profile
    .venv/bin/python benchmarks/orm/hotpath.py --backend sqlite --op filter_20 --instructions

``--tasks N`` runs the operations from N tasks at once, so that with more tasks
than the pool has connections (SQLite's 5 by default) statements queue for one:
what a pool that runs dry under load costs per operation::

    .venv/bin/python benchmarks/orm/hotpath.py --backend sqlite --tasks 32 --instructions
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.orm import run  # noqa: E402
from benchmarks.orm.common import CPU_HELP, create_target, drop_target, pin_cpu  # noqa: E402

#: Operations run before anything is measured (caches, prepared statements, pools).
WARM_UP = 200
#: Loop lengths of the two valgrind runs whose difference --instructions reports.
INSTRUCTION_RUNS = (100, 1100)


async def main_async(opts: argparse.Namespace) -> None:
    """Set up, warm up, loop, report, tear down."""
    with tempfile.TemporaryDirectory(prefix="covet-ormprof-") as tmp:
        target = run.targets_for(opts.backend, f"prof{os.getpid()}", opts, tmp)
        await create_target(target)
        contender = run.make_contender(opts.contender, opts.backend)
        try:
            await contender.start(target)
            await contender.seed()
            fn = run.method(contender, opts.op)
            for a in run.make_args(opts.op, opts.warm_up, random.Random(0)):
                await fn(*a)
            if opts.op in run.WRITES:
                await contender.clear_comments()
            args = run.make_args(opts.op, opts.n, random.Random(1))
            profiler = cProfile.Profile() if opts.profile else None
            best = float("inf")
            for _ in range(opts.samples):
                cpu0 = time.process_time()
                if profiler is not None:
                    profiler.enable()
                await run_all(fn, args, opts.tasks)
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


async def run_all(fn: Any, args: list[Any], tasks: int) -> None:
    """Await ``fn(*a)`` for each of ``args``: in turn, or shared among ``tasks`` tasks at once."""
    if tasks <= 1:
        for a in args:
            await fn(*a)
        return

    async def share(part: list[Any]) -> None:
        for a in part:
            await fn(*a)

    await asyncio.gather(*(share(args[i::tasks]) for i in range(tasks)))


def count_instructions(opts: argparse.Namespace) -> None:
    """Print the instructions per operation: two valgrind runs of different lengths, subtracted.

    Everything but the measured loop (start-up, imports, seeding, warm-up) is
    the same in both runs, so the difference is the loop alone. Both threads of
    an aiosqlite connection are counted; the kernel and the database server
    are not. ``PYTHONHASHSEED=0`` makes the runs repeatable to about 0.1%.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind on PATH (apt-get install valgrind).")
    refs = []
    runs = opts.runs
    for n in runs:
        command = [
            valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
            sys.executable, __file__, "--backend", opts.backend, "--contender", opts.contender,
            "--op", opts.op, "-n", str(n), "--samples", "1", "--cpu", "none", "--loop", opts.loop,
            "--pg-url", opts.pg_url, "--mysql-url", opts.mysql_url, "--warm-up", str(opts.warm_up),
            "--tasks", str(opts.tasks),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"valgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
        refs.append(int(found.group(1).replace(",", "")))
    low, high = runs
    per_op = (refs[1] - refs[0]) / (high - low)
    print(f"{opts.contender} {opts.backend} {opts.op}: {per_op:,.0f} instructions/op "
          f"(valgrind, {high} - {low} operations)")  # fmt: skip


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
    p.add_argument(
        "--instructions", action="store_true", help="count instructions per operation (valgrind)"
    )
    p.add_argument(
        "--warm-up", type=int, default=WARM_UP, help=f"operations before measuring ({WARM_UP})"
    )
    p.add_argument(
        "--runs",
        type=lambda text: tuple(int(n) for n in text.split(",", 1)),
        default=INSTRUCTION_RUNS,
        help="with --instructions: the two loop lengths subtracted (default 100,1100); "
        "bulk operations take e.g. --runs 2,12 --warm-up 20",
    )
    p.add_argument("--cpu", default="auto", help=CPU_HELP)
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument(
        "--tasks",
        type=int,
        default=1,
        help="run the operations from this many tasks at once (more than the pool's "
        "connections: statements queue for one); not for raw1, a single connection",
    )
    p.add_argument("--pg-url", default=os.environ.get("COVET_BENCH_PG_URL", run.PG_URL))
    p.add_argument("--mysql-url", default=os.environ.get("COVET_BENCH_MYSQL_URL", run.MYSQL_URL))
    opts = p.parse_args()
    if opts.instructions:
        count_instructions(opts)
        return
    try:
        pin_cpu(opts.cpu, opts.backend)
    except ValueError as exc:
        p.error(str(exc))
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
