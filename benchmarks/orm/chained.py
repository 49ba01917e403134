"""Count what a scaffold's list view costs the ORM: remembered statements against the general path.

A project made by ``covet new`` lists a user's notes with
``Note.objects.filter(author=user).order_by("-created_at", "-id")``, then
``count()`` and a slice of 20 (``own_notes()`` and ``paginate()``), and opens
one with ``filter(id=..., author=user).first()``. From its second call on,
each of these reuses statements remembered from the first
(``covet.db.statements``); the same calls written with ``Q(...)`` always
build and compile their query. This script runs each form in a loop on a
SQLite file under valgrind (two loop lengths, subtracted: start-up cancels
out) and prints the instructions per call, driver and aiosqlite's thread
included, with ``general / remembered`` beside them. Covet only: the ORM
benchmark (``run.py``) compares covet with its peers.

Needs valgrind (``apt-get install -y valgrind``). Run from the repository
root (about 3 minutes)::

    .venv/bin/python benchmarks/orm/chained.py
    .venv/bin/python benchmarks/orm/chained.py --ops page_build,page_rows
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from covet.db import Database, Model, Q, create_all, fields  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable

#: Loop lengths of the two valgrind runs whose difference is reported, and the warm-up.
RUNS = (100, 600)
WARM_UP = 200
_TOTAL = re.compile(r"I\s+refs:\s+([\d,]+)")


class Author(Model):
    email = fields.CharField(max_length=255, unique=True)

    class Meta:
        table = "chained_author"


class Note(Model):
    author = fields.ForeignKey(Author, related_name="notes", on_delete="CASCADE")
    title = fields.CharField(max_length=200)
    body = fields.TextField(default="")
    created_at = fields.DateTimeField()

    class Meta:
        table = "chained_note"


ORDER = ("-created_at", "-id")


def _forms(user: Author, note_id: int) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    """Each operation as (remembered form, general form): the same SQL and rows."""
    return {
        "page_build": (
            lambda: Note.objects.filter(author=user).order_by(*ORDER)[:20],
            lambda: Note.objects.filter(Q(author=user)).order_by(*ORDER)[:20],
        ),
        "page_rows": (
            lambda: Note.objects.filter(author=user).order_by(*ORDER)[:20],
            lambda: Note.objects.filter(Q(author=user)).order_by(*ORDER)[:20],
        ),
        "page_count": (
            lambda: Note.objects.filter(author=user).order_by(*ORDER).count(),
            lambda: Note.objects.filter(Q(author=user)).order_by(*ORDER).count(),
        ),
        "own_note": (
            lambda: Note.objects.filter(id=note_id, author=user).first(),
            lambda: Note.objects.filter(Q(id=note_id, author=user)).first(),
        ),
    }


async def _loop(op: str, general: bool, count: int, path: str) -> None:
    """Set up the file on first use, then run ``op`` ``WARM_UP + count`` times."""
    db = Database(f"sqlite:///{path}")
    await db.connect()
    try:
        if await Author.objects.count() == 0:
            user = await Author.objects.create(email="reader@example.com")
            start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
            for i in range(30):
                created = start + datetime.timedelta(minutes=i)
                await Note.objects.create(author=user, title=f"t{i}", body="x", created_at=created)
        user = await Author.objects.get(email="reader@example.com")
        note = await Note.objects.filter(Q(author=user)).order_by("id").first()
        assert note is not None  # set up just above
        make = _forms(user, note.pk)[op][general]
        awaited = op != "page_build"
        for _ in range(WARM_UP + count):
            result = make()
            if awaited:
                await result
    finally:
        await db.disconnect()


async def _create(path: str) -> None:
    db = Database(f"sqlite:///{path}")
    await db.connect()
    try:
        await create_all([Author, Note])
    finally:
        await db.disconnect()


def _instructions(op: str, general: bool, count: int, path: str) -> int:
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, __file__, "--child", op, str(int(general)), str(count), path,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    match = _TOTAL.search(done.stderr)
    if done.returncode != 0 or match is None:
        raise SystemExit(f"valgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default="page_build,page_rows,page_count,own_note")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        op, general, count, path = args.child
        asyncio.run(_loop(op, general == "1", int(count), path))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install -y valgrind", file=sys.stderr)
        return 2
    ops = [op.strip() for op in args.ops.split(",") if op.strip()]
    unknown = set(ops) - {"page_build", "page_rows", "page_count", "own_note"}
    if unknown:
        parser.error(f"unknown --ops {', '.join(sorted(unknown))}")
    low, high = RUNS
    with tempfile.TemporaryDirectory(prefix="covet-chained-") as tmp:
        path = str(Path(tmp) / "chained.db")
        asyncio.run(_create(path))
        _instructions(ops[0], False, 1, path)  # fills the file and compiles the bytecode
        print(f"Instructions per call (valgrind, {high} - {low} calls, SQLite, driver included)")
        print(f"{'operation':<12} {'remembered':>12} {'general':>12}  general/remembered")
        for op in ops:
            per = []
            for general in (False, True):
                total = _instructions(op, general, high, path) - _instructions(
                    op, general, low, path
                )
                per.append(total / (high - low))
            print(f"{op:<12} {per[0]:>12,.0f} {per[1]:>12,.0f}  {per[1] / per[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
