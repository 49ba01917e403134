"""Benchmark covet's ORM against the raw driver, SQLAlchemy 2 (async ORM) and Tortoise ORM.

The raw driver runs twice: ``raw1`` on one connection (the physical floor, no
pool) and ``raw`` through the driver's own pool (one checkout per operation);
every other contender is reported against both.

For each backend (SQLite file, PostgreSQL, MariaDB/MySQL), every contender
gets its own schema/database/file with the same tables and rows, and runs the
same nine operations:

========================  =================================================================
``get_by_pk``             one post by primary key
``filter_20``             the 20 posts of one author
``insert_one``            one comment, committed (the new key read back)
``bulk_insert_1000``      1,000 comments in one transaction
``update_one``            one post's ``views``, committed
``count``                 ``COUNT(*)`` over the 2,000 posts
``select_related_20``     20 posts with their authors, in one JOINed query
``upsert_1000``           1,000 rows by a unique column, half existing (updated), half new
``bulk_update_1000``      the ``views`` of 1,000 posts by primary key, in one transaction
========================  =================================================================

Every answer is checked before anything is timed. Then, for each round and
each operation, the iterations are cut into ``--blocks`` slices and every
slice runs on all contenders back to back in a fresh shuffled order, so the
contenders share whatever the background load of a shared machine does
during the measurement; the ratio to the raw driver is taken within the
round. The SQLite run is pinned to one CPU (``--cpu``): aiosqlite hands every
statement to a worker thread and back, and the cost of those two hand-offs
swings by 2-3x with the scheduler's placement of the two threads; on one core
it is a plain context switch, the same every time. Two figures come out:
operations per second (wall clock, what users see) and client CPU time per
operation (``time.process_time()``: the Python cost of the ORM and driver,
including the SQLite worker thread; the database server's own time is in
another process and not counted).

Run from the repository root::

    .venv/bin/python benchmarks/orm/run.py
    .venv/bin/python benchmarks/orm/run.py --backends postgres --rounds 7
    .venv/bin/python benchmarks/orm/run.py --quick --json results.json

Needs ``tortoise-orm`` (``pip install tortoise-orm``) unless ``--only``
leaves it out, PostgreSQL at ``--pg-url`` and MariaDB/MySQL at ``--mysql-url``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.orm.common import (  # noqa: E402
    AUTHORS,
    BULK_SIZE,
    CPU_HELP,
    MYSQL_URL,
    PG_URL,
    POSTS,
    SKUS_SEEDED,
    UPSERT_SIZE,
    Contender,
    Target,
    bulk_update_rows,
    comment_values,
    create_target,
    drop_target,
    parse_cpu,
    pin_cpu,
    upsert_rows,
)

if TYPE_CHECKING:
    from collections.abc import Callable

CONTENDERS = ("raw1", "raw", "covet", "sqlalchemy", "tortoise")
#: Contender -> "module" (its make()) or "module:factory".
MODULES = {
    "raw1": "benchmarks.orm.raw:make_single",
    "raw": "benchmarks.orm.raw",
    "covet": "benchmarks.orm.covet_orm",
    "sqlalchemy": "benchmarks.orm.sqlalchemy_orm",
    "tortoise": "benchmarks.orm.tortoise_orm",
}
BACKENDS = ("sqlite", "postgres", "mysql")
#: Operation -> iterations per measurement (``--quick`` divides by 5).
OPERATIONS: dict[str, int] = {
    "get_by_pk": 1000,
    "filter_20": 500,
    "insert_one": 300,
    "bulk_insert_1000": 5,
    "update_one": 500,
    "count": 500,
    "select_related_20": 400,
    "upsert_1000": 5,
    "bulk_update_1000": 5,
}
WRITES = frozenset({"insert_one", "bulk_insert_1000"})
#: Operations that leave rows a repeat would see (measure() resets the SKUs after them).
UPSERTS = frozenset({"upsert_1000"})
#: Operation -> the contender method that runs it (default: the operation's name).
METHODS = {
    "bulk_insert_1000": "bulk_insert",
    "upsert_1000": "upsert",
    "bulk_update_1000": "bulk_update",
}
#: Slices each measurement is cut into, the contenders alternating slice by slice (--blocks).
BLOCKS = 10


# -- arguments per operation ---------------------------------------------------------------------


def make_args(op: str, n: int, rng: random.Random) -> list[tuple[Any, ...]]:
    """Return the argument tuples of ``n`` calls of ``op``."""
    if op == "get_by_pk":
        return [(rng.randint(1, POSTS),) for _ in range(n)]
    if op == "filter_20":
        return [(rng.randint(1, AUTHORS),) for _ in range(n)]
    if op == "insert_one":
        return [(i, rng.randint(1, POSTS)) for i in range(n)]
    if op == "bulk_insert_1000":
        return [([comment_values(i, rng.randint(1, POSTS)) for i in range(BULK_SIZE)],)] * n
    if op == "update_one":
        return [(rng.randint(1, POSTS), i) for i in range(n)]
    if op == "count":
        return [()] * n
    if op == "select_related_20":
        return [(rng.randint(0, POSTS - 20),) for _ in range(n)]
    if op == "upsert_1000":
        # Call k writes keys from k * 500: the previous call's (or the seed's) 500 and 500 new.
        return [(upsert_rows(k),) for k in range(n)]
    if op == "bulk_update_1000":
        return [(bulk_update_rows(k + 1),) for k in range(n)]
    raise ValueError(op)


def make_contender(name: str, backend: str) -> Contender:
    """Build contender ``name`` for ``backend`` through its module's factory."""
    module, _, factory = MODULES[name].partition(":")
    return getattr(importlib.import_module(module), factory or "make")(backend)  # type: ignore[no-any-return]


def method(contender: Contender, op: str) -> Callable[..., Any]:
    """Return the contender's coroutine function for ``op``."""
    return getattr(contender, METHODS.get(op, op))  # type: ignore[no-any-return]


# -- answers are checked before anything is timed -------------------------------------------------


def _field(obj: Any, name: str) -> Any:
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


async def count_comments(target: Target, table: str = "bench_comment") -> int:
    """Count the rows of ``table`` (the comments) of ``target`` with the bare driver."""
    if target.backend == "postgres":
        import asyncpg

        conn = await asyncpg.connect(
            host=target.host, port=target.port, user=target.user, database=target.database
        )
        try:
            return int(await conn.fetchval(f'SELECT COUNT(*) FROM "{target.name}".{table}'))
        finally:
            await conn.close()
    if target.backend == "mysql":
        import aiomysql

        conn = await aiomysql.connect(
            host=target.host, port=target.port, user=target.user, db=target.name, autocommit=True
        )
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"SELECT COUNT(*) FROM {table}")
                return int((await cur.fetchone())[0])
        finally:
            conn.close()
    import aiosqlite

    async with aiosqlite.connect(target.name) as conn:
        rows = list(await conn.execute_fetchall(f"SELECT COUNT(*) FROM {table}"))
        return int(rows[0][0])


async def verify(contender: Contender, target: Target) -> None:
    """Check every operation's answer; raise AssertionError naming the contender and check."""

    def check(ok: bool, what: str) -> None:
        if not ok:
            raise AssertionError(f"{contender.name} on {target.backend}: {what}")

    post = await contender.get_by_pk(7)
    check(_field(post, "title") == "Post number 7", f"get_by_pk(7) gave {post!r}")
    rows = await contender.filter_20(3)
    check(len(rows) == 20, f"filter_20(3) gave {len(rows)} rows")
    check(all(_field(r, "author_id") == 3 for r in rows), "filter_20(3) gave other authors")
    check(await contender.count() == POSTS, "count() is wrong")
    pairs = await contender.select_related_20(40)
    expected = [(f"Post number {i}", f"Author {(i - 1) % AUTHORS + 1}") for i in range(41, 61)]
    check(pairs == expected, f"select_related_20(40) gave {pairs[:2]!r}...")
    await contender.update_one(5, 4242)
    check(_field(await contender.get_by_pk(5), "views") == 4242, "update_one() was not saved")
    key = await contender.insert_one(1, 9)
    check(isinstance(key, int) and key > 0, f"insert_one() returned the key {key!r}")
    await contender.bulk_insert([comment_values(i, 11) for i in range(BULK_SIZE)])
    check(await count_comments(target) == BULK_SIZE + 1, "the inserts did not all land")
    await contender.clear_comments()
    check(await count_comments(target) == 0, "clear_comments() left rows")
    await contender.reset_skus()
    check(await count_comments(target, "bench_sku") == SKUS_SEEDED, "reset_skus() is wrong")
    if "upsert_1000" not in contender.unsupported:
        for k in range(2):
            await contender.upsert(upsert_rows(k))
        check(await count_comments(target, "bench_sku") == SKUS_SEEDED + UPSERT_SIZE, "upsert()")
        await contender.reset_skus()
        check(await count_comments(target, "bench_sku") == SKUS_SEEDED, "reset_skus() again")
    await contender.bulk_update(bulk_update_rows(3))
    check(_field(await contender.get_by_pk(7), "views") == 10, "bulk_update() was not saved")


# -- measuring ----------------------------------------------------------------------------------


async def measure(
    contenders: dict[str, Contender],
    op: str,
    args: list[tuple[Any, ...]],
    *,
    blocks: int = BLOCKS,
    rng: random.Random | None = None,
) -> dict[str, tuple[float, float]]:
    """Run ``op`` once per argument tuple on every contender, interleaved in ``blocks``.

    The arguments are cut into ``blocks`` consecutive slices; each slice runs on
    every contender back to back, in a fresh shuffled order, and each
    contender's time is summed over its slices. A change in the background load
    of a shared machine (another job starting, a core going idle) then lands on
    all contenders alike instead of on whichever ran at that moment.

    Returns:
        ``{contender: (operations per second, client CPU µs per operation)}``.
    """
    order_rng = rng or random.Random(0)
    fns = {
        name: method(contender, op)
        for name, contender in contenders.items()
        if op not in contender.unsupported
    }
    wall = dict.fromkeys(fns, 0.0)
    cpu = dict.fromkeys(fns, 0.0)
    size = max(1, -(-len(args) // blocks))
    gc.collect()
    for start in range(0, len(args), size):
        chunk = args[start : start + size]
        order = list(fns)
        order_rng.shuffle(order)
        for name in order:
            fn = fns[name]
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for a in chunk:
                await fn(*a)
            wall[name] += time.perf_counter() - wall0
            cpu[name] += time.process_time() - cpu0
    if op in WRITES:
        for contender in contenders.values():
            await contender.clear_comments()
    if op in UPSERTS:
        for contender in contenders.values():
            await contender.reset_skus()
    return {name: (len(args) / wall[name], cpu[name] / len(args) * 1e6) for name in fns}


def targets_for(backend: str, name: str, opts: argparse.Namespace, tmp: str) -> Target:
    """Return the private database of contender ``name`` on ``backend``."""
    tag = f"ormbench_{name}_{os.getpid()}"
    if backend == "postgres":
        u = urllib.parse.urlsplit(opts.pg_url)
        return Target(
            "postgres", tag, u.hostname or "127.0.0.1", u.port or 5432, u.username or "postgres",
            u.path.lstrip("/") or "postgres",
        )  # fmt: skip
    if backend == "mysql":
        u = urllib.parse.urlsplit(opts.mysql_url)
        return Target("mysql", tag, u.hostname or "127.0.0.1", u.port or 3306, u.username or "root")
    return Target("sqlite", str(Path(tmp) / f"{tag}.db"))


async def run_backend(backend: str, opts: argparse.Namespace, samples: dict[str, Any]) -> None:
    """Set up every contender on ``backend``, check it, then run the interleaved rounds."""
    names = [n for n in CONTENDERS if n in opts.only]
    counts = {op: max(2 if op.endswith("_1000") else 20, n // (5 if opts.quick else 1))
              for op, n in OPERATIONS.items() if op in opts.ops}  # fmt: skip
    started: dict[str, tuple[Contender, Target]] = {}
    with tempfile.TemporaryDirectory(prefix="covet-ormbench-") as tmp:
        try:
            for name in names:
                target = targets_for(backend, name, opts, tmp)
                await create_target(target)
                contender = make_contender(name, backend)
                started[name] = (contender, target)
                await contender.start(target)
                await contender.seed()
                await verify(contender, target)
                # Warm up: caches, prepared statements, pools, JITted paths in the drivers.
                for op, n in counts.items():
                    args = make_args(op, min(n, 50), random.Random(0))
                    await measure({name: contender}, op, args, blocks=1)
            print(f"[{backend}] checked: {', '.join(names)}", file=sys.stderr)
            for name in names:
                for op, why in started[name][0].unsupported.items():
                    print(f"[{backend}] {name} skips {op}: {why}", file=sys.stderr)
            per_op: dict[str, dict[str, list[tuple[float, float]]]] = samples.setdefault(
                backend, {}
            )
            contenders = {name: started[name][0] for name in names}
            # All five contenders live in this one process, so every full pass of the cyclic
            # garbage collector would also walk the other four ORMs' modules, metadata and
            # caches (a heap no application with one ORM has), and it would land on whichever
            # contender's allocations happened to trigger it: 50-70 ms spikes inside
            # covet's bulk_insert_1000 on PostgreSQL, three times its median CPU. What exists
            # after set-up is frozen (gc.freeze(), as long-running servers do after start-up);
            # each operation's own garbage is still collected.
            gc.collect()
            gc.freeze()
            for rnd in range(opts.rounds):
                for op, n in counts.items():
                    args = make_args(op, n, random.Random(rnd * 1000 + len(op)))
                    results = await measure(
                        contenders, op, args, blocks=opts.blocks, rng=random.Random(rnd)
                    )
                    for name, result in results.items():
                        per_op.setdefault(op, {}).setdefault(name, []).append(result)
                print(f"[{backend}] round {rnd + 1}/{opts.rounds} done", file=sys.stderr)
        finally:
            for contender, target in started.values():
                try:
                    await contender.stop()
                finally:
                    await drop_target(target)


# -- reporting ----------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


#: The floor targets (issue 22): covet's ops/s over one raw connection's, and over raw
#: executemany for the bulk insert.
FLOOR_TARGETS = {"get_by_pk": 0.85, "filter_20": 0.85, "bulk_insert_1000": 1.0}


def _ratio_cells(
    runs: list[tuple[float, float]], base: list[tuple[float, float]] | None
) -> tuple[float, str, str]:
    """Return (median ops/s ratio, ops cell part, CPU cell part) of ``runs`` against ``base``."""
    if base is None:
        return float("nan"), "", ""
    ratios = [r[0] / b[0] for r, b in zip(runs, base, strict=True)]
    cpu_ratios = [b[1] / r[1] for r, b in zip(runs, base, strict=True)]
    med = statistics.median(ratios)
    return (
        med,
        f" · {med:.2f} [{min(ratios):.2f}-{max(ratios):.2f}]",
        f" · {statistics.median(cpu_ratios):.2f}",
    )


def report(samples: dict[str, Any], opts: argparse.Namespace) -> list[str]:
    """Return the Markdown tables for ``samples`` (and the target check).

    Every contender but the raw ones gets two ratios per cell: to ``raw1`` (one
    driver connection, the floor) first, then to ``raw`` (the driver's own pool).
    """
    out: list[str] = []
    verdicts: list[str] = []
    for backend, per_op in samples.items():
        names = [n for n in CONTENDERS if any(n in per_op[op] for op in per_op)]
        head = "| Operation | " + " | ".join(names) + " |"
        rule = "|---|" + "---:|" * len(names)
        ops_rows, cpu_rows = [head, rule], [head, rule]
        for op, by_name in per_op.items():
            cells, cpu_cells = [], []
            medians: dict[str, tuple[float, float]] = {}
            for name in names:
                if name not in by_name:
                    cells.append("n/a")
                    cpu_cells.append("n/a")
                    continue
                runs = by_name[name]
                ops = statistics.median(r[0] for r in runs)
                cpu = statistics.median(r[1] for r in runs)
                medians[name] = (ops, cpu)
                if name.startswith("raw"):
                    cells.append(_fmt(ops))
                    cpu_cells.append(f"{cpu:.1f}")
                    continue
                floor, floor_ops, floor_cpu = _ratio_cells(runs, by_name.get("raw1"))
                pooled, pooled_ops, pooled_cpu = _ratio_cells(runs, by_name.get("raw"))
                cells.append(_fmt(ops) + floor_ops + pooled_ops)
                cpu_cells.append(f"{cpu:.1f}" + floor_cpu + pooled_cpu)
                goal = FLOOR_TARGETS.get(op)
                if name == "covet" and goal is not None:
                    # The bulk insert is held to raw executemany on the driver's pool; the
                    # per-row reads to one raw connection.
                    got = pooled if op == "bulk_insert_1000" else floor
                    base = "raw" if op == "bulk_insert_1000" else "raw1"
                    verdicts.append(
                        f"{backend} {op}: covet/{base} = {got:.2f} ops/s "
                        f"({'met' if got >= goal else 'MISSED'} >= {goal:.2f})"
                    )
            ops_rows.append(f"| `{op}` | " + " | ".join(cells) + " |")
            cpu_rows.append(f"| `{op}` | " + " | ".join(cpu_cells) + " |")
            if "covet" in medians:
                peers = [n for n in ("sqlalchemy", "tortoise") if n in medians]
                behind = [n for n in peers if medians[n][0] >= medians["covet"][0]]
                cpu_behind = [n for n in peers if medians[n][1] <= medians["covet"][1]]
                if behind or cpu_behind:
                    verdicts.append(
                        f"{backend} {op}: covet not ahead of {sorted(set(behind + cpu_behind))} "
                        f"(ops/s behind: {behind}, CPU behind: {cpu_behind})"
                    )
        out += [
            f"### {backend}",
            "",
            "Operations per second (median over rounds), then the ratio to `raw1` (one driver "
            "connection) and to `raw` (the driver's pool), each the median of per-round "
            "ratios with the range (n/a: the contender cannot run it on this server, the "
            "reason is printed while running):",
            "",
            *ops_rows,
            "",
            "Client CPU time per operation in microseconds (process CPU time / operations), "
            "then `raw1 / contender` and `raw / contender`:",
            "",
            *cpu_rows,
            "",
        ]
    out += ["### Targets", "", *(f"- {v}" for v in verdicts or ["every target met"]), ""]
    return out


def versions() -> str:
    """Return the interpreter, library and server versions for the record."""
    parts = [f"Python {platform.python_version()}"]
    for dist in ("asyncpg", "aiomysql", "aiosqlite", "sqlalchemy", "tortoise-orm", "uvloop"):
        try:
            from importlib.metadata import version

            parts.append(f"{dist} {version(dist)}")
        except Exception:  # noqa: BLE001 - a missing package is simply not listed
            continue
    import sqlite3

    parts.append(f"SQLite {sqlite3.sqlite_version}")
    return ", ".join(parts)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated subset")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--quick", action="store_true", help="a fifth of the iterations, 2 rounds")
    p.add_argument("--only", default=",".join(CONTENDERS), help="comma-separated contenders")
    p.add_argument("--ops", default=",".join(OPERATIONS), help="comma-separated operations")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument(
        "--blocks", type=int, default=BLOCKS,
        help=f"slices per measurement, contenders alternating slice by slice (default {BLOCKS})",
    )  # fmt: skip
    p.add_argument("--cpu", default="auto", help=CPU_HELP)
    p.add_argument("--pg-url", default=os.environ.get("COVET_BENCH_PG_URL", PG_URL))
    p.add_argument("--mysql-url", default=os.environ.get("COVET_BENCH_MYSQL_URL", MYSQL_URL))
    p.add_argument("--json", metavar="FILE", help="write the raw samples to FILE")
    # Each backend runs in a fresh interpreter (Tortoise binds its models to the first
    # dialect it meets; caches of every ORM start cold): the parent passes this.
    p.add_argument("--worker-output", metavar="FILE", help=argparse.SUPPRESS)
    opts = p.parse_args(argv)
    opts.backends = [b for b in opts.backends.split(",") if b]
    opts.only = [c for c in opts.only.split(",") if c]
    opts.ops = [o for o in opts.ops.split(",") if o]
    for value, allowed, what in (
        (opts.backends, BACKENDS, "backend"),
        (opts.only, CONTENDERS, "contender"),
        (opts.ops, tuple(OPERATIONS), "operation"),
    ):
        bad = sorted(set(value) - set(allowed))
        if bad:
            p.error(f"unknown {what}(s) {bad!r}; choose from {', '.join(allowed)}")
    if opts.quick and opts.rounds == 5:
        opts.rounds = 2
    if opts.rounds < 1:
        p.error("--rounds must be at least 1")
    if opts.blocks < 1:
        p.error("--blocks must be at least 1")
    try:
        parse_cpu(opts.cpu)
    except ValueError as exc:
        p.error(str(exc))
    return opts


def run_worker(opts: argparse.Namespace) -> None:
    """Run the single backend in ``opts.backends`` and write its samples to a file."""
    cpu = pin_cpu(opts.cpu, opts.backends[0])
    if cpu is not None:
        print(f"[{opts.backends[0]}] pinned to CPU {cpu}", file=sys.stderr)
    if opts.loop == "uvloop":
        import uvloop

        runner: Any = uvloop.run
    else:
        runner = asyncio.run
    samples: dict[str, Any] = {}
    runner(run_backend(opts.backends[0], opts, samples))
    Path(opts.worker_output).write_text(json.dumps(samples))


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (one child interpreter per backend) and print Markdown tables."""
    opts = parse_args(argv)
    if opts.worker_output:
        run_worker(opts)
        return
    started = time.strftime("%Y-%m-%d %H:%M")
    samples: dict[str, Any] = {}
    passthrough = sys.argv[1:] if argv is None else list(argv)
    with tempfile.TemporaryDirectory(prefix="covet-ormbench-") as tmp:
        for backend in opts.backends:
            out = Path(tmp) / f"{backend}.json"
            args = [a for a in passthrough if not a.startswith("--backends")]
            if "--backends" in passthrough:
                i = passthrough.index("--backends")
                args = passthrough[:i] + passthrough[i + 2 :]
            subprocess.run(
                [sys.executable, __file__, *args, "--rounds", str(opts.rounds),
                 "--backends", backend, "--worker-output", str(out)],
                check=True,
            )  # fmt: skip
            samples.update(json.loads(out.read_text()))
    lines = report(samples, opts)
    print(f"<!-- {started}; {versions()}; loop {opts.loop}; rounds {opts.rounds}; "
          f"blocks {opts.blocks}; cpu {opts.cpu}; quick {opts.quick} -->")  # fmt: skip
    print("\n".join(lines))
    if opts.json:
        Path(opts.json).write_text(json.dumps({"versions": versions(), "samples": samples}))


if __name__ == "__main__":
    main()
