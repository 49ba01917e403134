"""What every ORM contender shares: the target database, the schema, the data, the interface.

Every contender works on its own schema (PostgreSQL), database (MariaDB/MySQL)
or file (SQLite), created and dropped by ``run.py``. The tables are created by
the same hand-written DDL for everyone (below), so that no ORM wins or loses
through a different index or column type; each ORM then maps its models onto
them and seeds the same rows through its own API.

The data set: ``AUTHORS`` authors and ``POSTS_PER_AUTHOR`` posts each. Post
``i`` (1-based) belongs to author ``(i - 1) % AUTHORS + 1``, so the posts of one
author are exactly 20 rows (the filter benchmark) and 20 consecutive posts have
20 different authors (the select_related benchmark).
"""

from __future__ import annotations

import abc
import datetime
import json
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

AUTHORS = 100
POSTS_PER_AUTHOR = 20
POSTS = AUTHORS * POSTS_PER_AUTHOR
BULK_SIZE = 1000
EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)

#: The upsert benchmark: SKUS_SEEDED rows exist before each measurement; call ``k`` of it
#: writes UPSERT_SIZE rows from key ``k * UPSERT_SIZE // 2``: half of them exist (the
#: previous call's second half, or the seed), half are new.
SKUS_SEEDED = 500
UPSERT_SIZE = 1000

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL_URL = "mysql://root@127.0.0.1:3306/test"

POST_COLUMNS = ("id", "author_id", "title", "body", "views", "created_at")
AUTHOR_COLUMNS = ("id", "name", "email")


@dataclass
class Target:
    """One contender's private database on one backend.

    Attributes:
        backend: ``"sqlite"``, ``"postgres"`` or ``"mysql"``.
        name: The schema (PostgreSQL), database (MySQL) or file path (SQLite).
        host, port, user: The server (PostgreSQL/MySQL).
        database: The database the PostgreSQL schema lives in.
    """

    backend: str
    name: str
    host: str = "127.0.0.1"
    port: int = 0
    user: str = ""
    database: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def author_row(i: int) -> tuple[int, str, str]:
    """Return author ``i`` as ``(id, name, email)``."""
    return i, f"Author {i}", f"author{i}@example.com"


def post_row(i: int) -> tuple[int, int, str, str, int, datetime.datetime]:
    """Return post ``i`` as ``(id, author_id, title, body, views, created_at)``."""
    return (
        i,
        (i - 1) % AUTHORS + 1,
        f"Post number {i}",
        f"The body of post {i}. " * 8,
        i % 1000,
        EPOCH + datetime.timedelta(minutes=i),
    )


def comment_values(i: int, post_id: int) -> tuple[int, str, str, datetime.datetime]:
    """Return the values of a new comment: ``(post_id, name, body, created_at)``."""
    return (
        post_id,
        f"Reader {i}",
        f"Comment {i}: well written.",
        EPOCH + datetime.timedelta(seconds=i),
    )


def sku_row(j: int, k: int = 0) -> tuple[str, str, int]:
    """Return SKU ``j`` as written by upsert call ``k``: ``(sku, name, stock)``."""
    return f"sku-{j:06d}", f"Item {j} v{k}", j + k


def upsert_rows(k: int) -> list[tuple[str, str, int]]:
    """Return the rows of upsert call ``k`` (half existing, half new; see UPSERT_SIZE)."""
    start = k * UPSERT_SIZE // 2
    return [sku_row(j, k) for j in range(start, start + UPSERT_SIZE)]


def bulk_update_rows(k: int) -> list[tuple[int, int]]:
    """Return ``(post id, views)`` for bulk-update call ``k``: posts 1..1000, new views."""
    return [(i, (i + k) % 997) for i in range(1, UPSERT_SIZE + 1)]


# -- CPU pinning -------------------------------------------------------------------------------

CPU_HELP = (
    "pin the benchmark to one CPU: a CPU number, 'none', or 'auto' (the default: the last CPU "
    "for SQLite, no pinning for the server backends)"
)


def child_result(cmd: list[str]) -> Any:
    """Run one backend's measurement in a child process; return the JSON of its last line.

    The benchmarks measure each backend in a fresh interpreter (its own memory, no other
    ORM loaded). A child that fails has its stderr printed and ends the run with its code.
    """
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        raise SystemExit(proc.returncode)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def parse_cpu(spec: str) -> str | int:
    """Return ``"auto"``, ``"none"`` or the CPU number ``spec`` names.

    Raises:
        ValueError: ``spec`` is none of these.
    """
    if spec in ("auto", "none"):
        return spec
    if spec.isdigit():
        return int(spec)
    raise ValueError(f"--cpu takes a CPU number, 'auto' or 'none', not {spec!r}")


def pin_cpu(spec: str, backend: str) -> int | None:
    """Pin this process, and the threads it starts from now on, to one CPU; return it.

    Why SQLite: aiosqlite runs each statement on the connection's worker thread,
    two thread hand-offs per statement. When the scheduler puts the two threads
    on different cores, each hand-off is a cross-core wake-up whose cost depends
    on what else the machine runs (the same raw ``get_by_pk`` measured 35-130 µs
    of wall time and 35-105 µs of CPU on the 2-vCPU benchmark machine); on one
    core it is a context switch of the same cost every time. The server
    backends talk to another process over a socket and are left unpinned unless
    a CPU is named. Returns None when nothing was pinned (or the platform has no
    ``sched_setaffinity``).
    """
    choice = parse_cpu(spec)
    if choice == "none" or (choice == "auto" and backend != "sqlite"):
        return None
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0)) if choice == "auto" else int(choice)
    os.sched_setaffinity(0, {cpu})
    return cpu


# -- DDL ---------------------------------------------------------------------------------------

_DDL = {
    "postgres": (
        "CREATE TABLE bench_sku (id BIGSERIAL PRIMARY KEY, sku VARCHAR(40) NOT NULL UNIQUE, "
        "name VARCHAR(100) NOT NULL, stock INTEGER NOT NULL)",
        "CREATE TABLE bench_author (id BIGSERIAL PRIMARY KEY, name VARCHAR(100) NOT NULL, "
        "email VARCHAR(200) NOT NULL)",
        "CREATE TABLE bench_post (id BIGSERIAL PRIMARY KEY, author_id BIGINT NOT NULL "
        "REFERENCES bench_author (id) ON DELETE CASCADE, title VARCHAR(200) NOT NULL, "
        "body TEXT NOT NULL, views INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL)",
        "CREATE INDEX bench_post_author_id ON bench_post (author_id)",
        "CREATE TABLE bench_comment (id BIGSERIAL PRIMARY KEY, post_id BIGINT NOT NULL "
        "REFERENCES bench_post (id) ON DELETE CASCADE, name VARCHAR(100) NOT NULL, "
        "body TEXT NOT NULL, created_at TIMESTAMPTZ NOT NULL)",
        "CREATE INDEX bench_comment_post_id ON bench_comment (post_id)",
    ),
    "mysql": (
        "CREATE TABLE bench_sku (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
        "sku VARCHAR(40) NOT NULL UNIQUE, name VARCHAR(100) NOT NULL, stock INTEGER NOT NULL) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE bench_author (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
        "name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE bench_post (id BIGINT AUTO_INCREMENT PRIMARY KEY, author_id BIGINT NOT NULL, "
        "title VARCHAR(200) NOT NULL, body LONGTEXT NOT NULL, views INTEGER NOT NULL, "
        "created_at DATETIME(6) NOT NULL, "
        "CONSTRAINT bench_post_author FOREIGN KEY (author_id) REFERENCES bench_author (id) "
        "ON DELETE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        "CREATE TABLE bench_comment (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
        "post_id BIGINT NOT NULL, name VARCHAR(100) NOT NULL, body LONGTEXT NOT NULL, "
        "created_at DATETIME(6) NOT NULL, "
        "CONSTRAINT bench_comment_post FOREIGN KEY (post_id) REFERENCES bench_post (id) "
        "ON DELETE CASCADE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    ),
    "sqlite": (
        "CREATE TABLE bench_sku (id INTEGER PRIMARY KEY, sku VARCHAR(40) NOT NULL UNIQUE, "
        "name VARCHAR(100) NOT NULL, stock INTEGER NOT NULL)",
        "CREATE TABLE bench_author (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, "
        "email VARCHAR(200) NOT NULL)",
        "CREATE TABLE bench_post (id INTEGER PRIMARY KEY, author_id INTEGER NOT NULL "
        "REFERENCES bench_author (id) ON DELETE CASCADE, title VARCHAR(200) NOT NULL, "
        "body TEXT NOT NULL, views INTEGER NOT NULL, created_at DATETIME NOT NULL)",
        "CREATE INDEX bench_post_author_id ON bench_post (author_id)",
        "CREATE TABLE bench_comment (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL "
        "REFERENCES bench_post (id) ON DELETE CASCADE, name VARCHAR(100) NOT NULL, "
        "body TEXT NOT NULL, created_at DATETIME NOT NULL)",
        "CREATE INDEX bench_comment_post_id ON bench_comment (post_id)",
    ),
}


async def create_target(target: Target) -> None:
    """Create the contender's schema/database/file and its tables."""
    if target.backend == "postgres":
        import asyncpg

        conn = await asyncpg.connect(
            host=target.host, port=target.port, user=target.user, database=target.database
        )
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{target.name}" CASCADE')
            await conn.execute(f'CREATE SCHEMA "{target.name}"')
            await conn.execute(f'SET search_path TO "{target.name}"')
            for statement in _DDL["postgres"]:
                await conn.execute(statement)
        finally:
            await conn.close()
    elif target.backend == "mysql":
        import aiomysql

        conn = await aiomysql.connect(
            host=target.host, port=target.port, user=target.user, autocommit=True
        )
        try:
            async with conn.cursor() as cur:
                with warnings.catch_warnings():
                    # "Can't drop database ...; database doesn't exist" is the normal case.
                    warnings.simplefilter("ignore")
                    await cur.execute(f"DROP DATABASE IF EXISTS `{target.name}`")
                await cur.execute(f"CREATE DATABASE `{target.name}` CHARACTER SET utf8mb4")
                await cur.execute(f"USE `{target.name}`")
                for statement in _DDL["mysql"]:
                    await cur.execute(statement)
        finally:
            conn.close()
    else:
        import aiosqlite

        async with aiosqlite.connect(target.name) as conn:
            # WAL is a property of the file: every contender gets it, whatever it sets itself.
            await conn.execute("PRAGMA journal_mode=WAL")
            for statement in _DDL["sqlite"]:
                await conn.execute(statement)
            await conn.commit()


async def drop_target(target: Target) -> None:
    """Drop the contender's schema/database/file."""
    if target.backend == "postgres":
        import asyncpg

        conn = await asyncpg.connect(
            host=target.host, port=target.port, user=target.user, database=target.database
        )
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{target.name}" CASCADE')
        finally:
            await conn.close()
    elif target.backend == "mysql":
        import aiomysql

        conn = await aiomysql.connect(
            host=target.host, port=target.port, user=target.user, autocommit=True
        )
        try:
            async with conn.cursor() as cur:
                await cur.execute(f"DROP DATABASE IF EXISTS `{target.name}`")
        finally:
            conn.close()
    else:
        from pathlib import Path

        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(target.name + suffix).unlink(missing_ok=True)


# -- the contender interface -------------------------------------------------------------------


class Contender(abc.ABC):
    """One way of talking to the database; every operation is one awaited call.

    Read operations return what a user gets (objects or dicts), so ``run.py``
    can check the answers before timing anything.
    """

    name: str = ""
    #: Operations this contender cannot run on the current backend (set by start(),
    #: with the reason printed in the report).
    unsupported: dict[str, str] = {}  # noqa: RUF012 - replaced per instance, never mutated

    @abc.abstractmethod
    async def start(self, target: Target) -> None:
        """Connect (pool, engine, ORM configuration)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnect."""

    @abc.abstractmethod
    async def seed(self) -> None:
        """Insert the authors and posts (untimed), through the contender's own API."""

    @abc.abstractmethod
    async def clear_comments(self) -> None:
        """Delete every comment (untimed, between measurements)."""

    @abc.abstractmethod
    async def get_by_pk(self, pk: int) -> Any:
        """Return post ``pk``; fail if it does not exist."""

    @abc.abstractmethod
    async def filter_20(self, author_id: int) -> list[Any]:
        """Return the (20) posts of author ``author_id``."""

    @abc.abstractmethod
    async def insert_one(self, i: int, post_id: int) -> Any:
        """Insert comment ``comment_values(i, post_id)``, committed; return its new key."""

    @abc.abstractmethod
    async def bulk_insert(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (``comment_values`` tuples) in one transaction."""

    @abc.abstractmethod
    async def update_one(self, pk: int, views: int) -> None:
        """Set the views of post ``pk``, committed."""

    @abc.abstractmethod
    async def count(self) -> int:
        """Return the number of posts."""

    @abc.abstractmethod
    async def reset_skus(self) -> None:
        """Leave exactly the ``SKUS_SEEDED`` first SKUs (untimed, between measurements)."""

    @abc.abstractmethod
    async def upsert(self, rows: list[tuple[str, str, int]]) -> None:
        """Insert ``rows`` (``sku_row`` tuples), updating name and stock where the sku exists."""

    @abc.abstractmethod
    async def bulk_update(self, rows: list[tuple[int, int]]) -> None:
        """Set the views of the posts ``(id, views)`` in ``rows``, in one transaction."""

    @abc.abstractmethod
    async def select_related_20(self, after: int) -> list[tuple[str, str]]:
        """Load the 20 posts after id ``after`` with their authors in one query.

        Returns:
            ``(post title, author name)`` per post, read through the loaded relation.
        """
