"""The ceiling: the bare driver (asyncpg, aiomysql, aiosqlite) with hand-written SQL.

Rows are turned into plain dicts, the way a user of the driver would, and
the select_related result nests the author dict in the post dict. Values
have the same types the ORMs give: ``created_at`` is an aware UTC datetime
(asyncpg returns one already; MySQL's naive UTC ``DATETIME`` gets its zone,
SQLite's text is parsed), so the ceiling does the same work. Each
driver is used the way its documentation suggests: asyncpg and aiomysql
through their pools (one checkout per operation), aiosqlite through one
connection in autocommit mode (``isolation_level=None``), with
``foreign_keys=ON`` and ``synchronous=NORMAL`` as covet sets them.

Two baselines come out of this module (issue 22): ``raw``, the pooled driver
above, and ``raw1``, the physical floor: one driver connection opened at start
and used for every operation, the same SQL, no pool at all. A pool checkout
costs something on every driver (asyncpg's pool re-arms timers and sends
nothing, aiomysql's takes a condition lock), so ``raw1`` is the harder bar and
the one the ORM targets are set against. On SQLite both are one aiosqlite
connection: ``raw1`` is a second instance of the same contender.

The SQL has the shape covet emits, so that the ceiling measures the ORM's
overhead and not a different plan: ``select_related_20`` joins the author with
a ``LEFT OUTER JOIN``, as covet's select_related() does for a join that only
fetches the related row. Keep the two in step.
"""

from __future__ import annotations

import contextlib
import datetime
from typing import Any

from benchmarks.orm.common import (
    AUTHOR_COLUMNS,
    AUTHORS,
    POST_COLUMNS,
    POSTS,
    SKUS_SEEDED,
    Contender,
    Target,
    author_row,
    comment_values,
    post_row,
    sku_row,
)

#: Rows per hand-written ``UPDATE ... CASE`` (MySQL has no array parameters).
_CASE_ROWS = 200

_POST_COLS = ", ".join(POST_COLUMNS)
_JOIN_COLS = (
    ", ".join(f"p.{c}" for c in POST_COLUMNS) + ", " + ", ".join(f"a.{c}" for c in AUTHOR_COLUMNS)
)
_NP = len(POST_COLUMNS)
_UTC = datetime.UTC


def _nested(row: Any) -> dict[str, Any]:
    post = dict(zip(POST_COLUMNS, row[:_NP], strict=True))
    post["author"] = dict(zip(AUTHOR_COLUMNS, row[_NP:], strict=True))
    return post


def _mysql_post(row: Any) -> dict[str, Any]:
    post = dict(zip(POST_COLUMNS, row, strict=False))
    post["created_at"] = post["created_at"].replace(tzinfo=_UTC)
    return post


def _sqlite_post(row: Any) -> dict[str, Any]:
    post = dict(zip(POST_COLUMNS, row, strict=False))
    post["created_at"] = datetime.datetime.fromisoformat(post["created_at"]).replace(tzinfo=_UTC)
    return post


class RawPostgres(Contender):
    """asyncpg, through ``asyncpg.create_pool``."""

    name = "raw"

    async def start(self, target: Target) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(
            host=target.host,
            port=target.port,
            user=target.user,
            database=target.database,
            min_size=1,
            max_size=4,
            server_settings={"search_path": target.name},
        )

    async def stop(self) -> None:
        await self.pool.close()

    def _acquire(self) -> Any:
        return self.pool.acquire()

    async def seed(self) -> None:
        async with self._acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO bench_author (id, name, email) VALUES ($1, $2, $3)",
                [author_row(i) for i in range(1, AUTHORS + 1)],
            )
            await conn.executemany(
                f"INSERT INTO bench_post ({_POST_COLS}) VALUES ($1, $2, $3, $4, $5, $6)",
                [post_row(i) for i in range(1, POSTS + 1)],
            )
            for table in ("bench_author", "bench_post"):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT MAX(id) FROM {table}))"
                )

    async def clear_comments(self) -> None:
        await self.pool.execute("DELETE FROM bench_comment")

    async def get_by_pk(self, pk: int) -> Any:
        row = await self.pool.fetchrow(f"SELECT {_POST_COLS} FROM bench_post WHERE id = $1", pk)
        if row is None:
            raise LookupError(pk)
        return dict(row)

    async def filter_20(self, author_id: int) -> list[Any]:
        rows = await self.pool.fetch(
            f"SELECT {_POST_COLS} FROM bench_post WHERE author_id = $1", author_id
        )
        return [dict(r) for r in rows]

    async def insert_one(self, i: int, post_id: int) -> Any:
        return await self.pool.fetchval(
            "INSERT INTO bench_comment (post_id, name, body, created_at) "
            "VALUES ($1, $2, $3, $4) RETURNING id",
            *comment_values(i, post_id),
        )

    async def bulk_insert(self, rows: list[tuple[Any, ...]]) -> None:
        async with self._acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO bench_comment (post_id, name, body, created_at) "
                "VALUES ($1, $2, $3, $4)",
                rows,
            )

    async def update_one(self, pk: int, views: int) -> None:
        await self.pool.execute("UPDATE bench_post SET views = $1 WHERE id = $2", views, pk)

    async def reset_skus(self) -> None:
        async with self._acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM bench_sku")
            await conn.executemany(
                "INSERT INTO bench_sku (sku, name, stock) VALUES ($1, $2, $3)",
                [sku_row(j) for j in range(SKUS_SEEDED)],
            )

    async def upsert(self, rows: list[tuple[str, str, int]]) -> None:
        # One statement, one array per column (the fastest asyncpg form).
        skus, names, stocks = (list(c) for c in zip(*rows, strict=True))
        await self.pool.execute(
            "INSERT INTO bench_sku (sku, name, stock) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) "
            "ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, stock = EXCLUDED.stock",
            skus, names, stocks,
        )  # fmt: skip

    async def bulk_update(self, rows: list[tuple[int, int]]) -> None:
        ids, views = (list(c) for c in zip(*rows, strict=True))
        await self.pool.execute(
            "UPDATE bench_post SET views = v.views FROM unnest($1::bigint[], $2::int[]) "
            "AS v(id, views) WHERE bench_post.id = v.id",
            ids, views,
        )  # fmt: skip

    async def count(self) -> int:
        return int(await self.pool.fetchval("SELECT COUNT(*) FROM bench_post"))

    async def select_related_20(self, after: int) -> list[tuple[str, str]]:
        rows = await self.pool.fetch(
            f"SELECT {_JOIN_COLS} FROM bench_post p LEFT OUTER JOIN bench_author a "
            "ON a.id = p.author_id WHERE p.id > $1 ORDER BY p.id LIMIT 20",
            after,
        )
        posts = [_nested(r) for r in rows]
        return [(p["title"], p["author"]["name"]) for p in posts]


class RawPostgresOne(RawPostgres):
    """asyncpg, one connection for everything (the floor: no pool)."""

    name = "raw1"

    async def start(self, target: Target) -> None:
        import asyncpg

        # An asyncpg Connection has the pool's fetchrow()/fetch()/fetchval()/execute():
        # every operation of RawPostgres runs on it unchanged.
        self.pool = await asyncpg.connect(
            host=target.host,
            port=target.port,
            user=target.user,
            database=target.database,
            server_settings={"search_path": target.name},
        )

    def _acquire(self) -> Any:
        return contextlib.nullcontext(self.pool)


class RawMySQL(Contender):
    """aiomysql, through ``aiomysql.create_pool(autocommit=True)``."""

    name = "raw"

    async def start(self, target: Target) -> None:
        import aiomysql

        self.pool = await aiomysql.create_pool(
            host=target.host,
            port=target.port,
            user=target.user,
            db=target.name,
            minsize=1,
            maxsize=4,
            autocommit=True,
            charset="utf8mb4",
        )

    async def stop(self) -> None:
        self.pool.close()
        await self.pool.wait_closed()

    def _acquire(self) -> Any:
        return self.pool.acquire()

    async def _fetch(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        async with self._acquire() as conn, conn.cursor() as cur:
            await cur.execute(sql, args)
            return list(await cur.fetchall())

    async def _execute(self, sql: str, args: tuple[Any, ...]) -> Any:
        async with self._acquire() as conn, conn.cursor() as cur:
            await cur.execute(sql, args)
            return cur.lastrowid

    async def seed(self) -> None:
        async with self._acquire() as conn:
            await conn.begin()
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO bench_author (id, name, email) VALUES (%s, %s, %s)",
                    [author_row(i) for i in range(1, AUTHORS + 1)],
                )
                await cur.executemany(
                    f"INSERT INTO bench_post ({_POST_COLS}) VALUES (%s, %s, %s, %s, %s, %s)",
                    [_naive(post_row(i)) for i in range(1, POSTS + 1)],
                )
            await conn.commit()

    async def clear_comments(self) -> None:
        await self._execute("DELETE FROM bench_comment", ())

    async def reset_skus(self) -> None:
        async with self._acquire() as conn, conn.cursor() as cur:
            await cur.execute("DELETE FROM bench_sku")
            await cur.executemany(
                "INSERT INTO bench_sku (sku, name, stock) VALUES (%s, %s, %s)",
                [sku_row(j) for j in range(SKUS_SEEDED)],
            )

    async def upsert(self, rows: list[tuple[str, str, int]]) -> None:
        # aiomysql's executemany() folds an INSERT ... VALUES into one multi-row statement.
        async with self._acquire() as conn, conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO bench_sku (sku, name, stock) VALUES (%s, %s, %s) "
                "ON DUPLICATE KEY UPDATE name = VALUES(name), stock = VALUES(stock)",
                rows,
            )

    async def bulk_update(self, rows: list[tuple[int, int]]) -> None:
        # executemany() of an UPDATE is one round trip per row: CASE batches instead.
        async with self._acquire() as conn:
            await conn.begin()
            async with conn.cursor() as cur:
                for start in range(0, len(rows), _CASE_ROWS):
                    batch = rows[start : start + _CASE_ROWS]
                    whens = " ".join(["WHEN %s THEN %s"] * len(batch))
                    keys = ", ".join(["%s"] * len(batch))
                    args = [v for row in batch for v in row] + [i for i, _ in batch]
                    await cur.execute(
                        f"UPDATE bench_post SET views = CASE id {whens} END WHERE id IN ({keys})",
                        args,
                    )
            await conn.commit()

    async def get_by_pk(self, pk: int) -> Any:
        rows = await self._fetch(f"SELECT {_POST_COLS} FROM bench_post WHERE id = %s", (pk,))
        if not rows:
            raise LookupError(pk)
        return _mysql_post(rows[0])

    async def filter_20(self, author_id: int) -> list[Any]:
        rows = await self._fetch(
            f"SELECT {_POST_COLS} FROM bench_post WHERE author_id = %s", (author_id,)
        )
        return [_mysql_post(r) for r in rows]

    async def insert_one(self, i: int, post_id: int) -> Any:
        return await self._execute(
            "INSERT INTO bench_comment (post_id, name, body, created_at) VALUES (%s, %s, %s, %s)",
            _naive(comment_values(i, post_id)),
        )

    async def bulk_insert(self, rows: list[tuple[Any, ...]]) -> None:
        async with self._acquire() as conn:
            await conn.begin()
            try:
                async with conn.cursor() as cur:
                    # aiomysql rewrites an INSERT ... VALUES executemany into multi-row INSERTs.
                    await cur.executemany(
                        "INSERT INTO bench_comment (post_id, name, body, created_at) "
                        "VALUES (%s, %s, %s, %s)",
                        [_naive(r) for r in rows],
                    )
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise

    async def update_one(self, pk: int, views: int) -> None:
        await self._execute("UPDATE bench_post SET views = %s WHERE id = %s", (views, pk))

    async def count(self) -> int:
        rows = await self._fetch("SELECT COUNT(*) FROM bench_post")
        return int(rows[0][0])

    async def select_related_20(self, after: int) -> list[tuple[str, str]]:
        rows = await self._fetch(
            f"SELECT {_JOIN_COLS} FROM bench_post p LEFT OUTER JOIN bench_author a "
            "ON a.id = p.author_id WHERE p.id > %s ORDER BY p.id LIMIT 20",
            (after,),
        )
        posts = [_nested(r) for r in rows]
        for p in posts:
            p["created_at"] = p["created_at"].replace(tzinfo=_UTC)
        return [(p["title"], p["author"]["name"]) for p in posts]


class RawMySQLOne(RawMySQL):
    """aiomysql, one connection for everything (the floor: no pool)."""

    name = "raw1"

    async def start(self, target: Target) -> None:
        import aiomysql

        self.conn = await aiomysql.connect(
            host=target.host,
            port=target.port,
            user=target.user,
            db=target.name,
            autocommit=True,
            charset="utf8mb4",
        )

    async def stop(self) -> None:
        self.conn.close()

    def _acquire(self) -> Any:
        return contextlib.nullcontext(self.conn)


def _naive(values: tuple[Any, ...]) -> tuple[Any, ...]:
    # MySQL DATETIME has no zone: store UTC wall time (what covet and Tortoise store too).
    return tuple(v.replace(tzinfo=None) if hasattr(v, "tzinfo") else v for v in values)


def _sqlite_value(value: Any) -> Any:
    if hasattr(value, "tzinfo"):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


class RawSQLite(Contender):
    """aiosqlite, one connection in autocommit mode."""

    name = "raw"

    async def start(self, target: Target) -> None:
        import aiosqlite

        self.conn = await aiosqlite.connect(target.name, isolation_level=None)
        await self.conn.execute("PRAGMA foreign_keys=ON")
        await self.conn.execute("PRAGMA synchronous=NORMAL")

    async def stop(self) -> None:
        await self.conn.close()

    async def seed(self) -> None:
        await self.conn.execute("BEGIN")
        await self.conn.executemany(
            "INSERT INTO bench_author (id, name, email) VALUES (?, ?, ?)",
            [author_row(i) for i in range(1, AUTHORS + 1)],
        )
        await self.conn.executemany(
            f"INSERT INTO bench_post ({_POST_COLS}) VALUES (?, ?, ?, ?, ?, ?)",
            [tuple(map(_sqlite_value, post_row(i))) for i in range(1, POSTS + 1)],
        )
        await self.conn.execute("COMMIT")

    async def clear_comments(self) -> None:
        await self.conn.execute("DELETE FROM bench_comment")

    async def get_by_pk(self, pk: int) -> Any:
        rows = await self.conn.execute_fetchall(
            f"SELECT {_POST_COLS} FROM bench_post WHERE id = ?", (pk,)
        )
        if not rows:
            raise LookupError(pk)
        return _sqlite_post(next(iter(rows)))

    async def filter_20(self, author_id: int) -> list[Any]:
        rows = await self.conn.execute_fetchall(
            f"SELECT {_POST_COLS} FROM bench_post WHERE author_id = ?", (author_id,)
        )
        return [_sqlite_post(r) for r in rows]

    async def insert_one(self, i: int, post_id: int) -> Any:
        rows = await self.conn.execute_fetchall(
            "INSERT INTO bench_comment (post_id, name, body, created_at) "
            "VALUES (?, ?, ?, ?) RETURNING id",
            tuple(map(_sqlite_value, comment_values(i, post_id))),
        )
        return next(iter(rows))[0]

    async def bulk_insert(self, rows: list[tuple[Any, ...]]) -> None:
        await self.conn.execute("BEGIN IMMEDIATE")
        try:
            await self.conn.executemany(
                "INSERT INTO bench_comment (post_id, name, body, created_at) VALUES (?, ?, ?, ?)",
                [tuple(map(_sqlite_value, r)) for r in rows],
            )
        except BaseException:
            await self.conn.execute("ROLLBACK")
            raise
        await self.conn.execute("COMMIT")

    async def update_one(self, pk: int, views: int) -> None:
        await self.conn.execute("UPDATE bench_post SET views = ? WHERE id = ?", (views, pk))

    async def _in_transaction(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        await self.conn.execute("BEGIN IMMEDIATE")
        try:
            await self.conn.executemany(sql, rows)
        except BaseException:
            await self.conn.execute("ROLLBACK")
            raise
        await self.conn.execute("COMMIT")

    async def reset_skus(self) -> None:
        await self.conn.execute("DELETE FROM bench_sku")
        await self._in_transaction(
            "INSERT INTO bench_sku (sku, name, stock) VALUES (?, ?, ?)",
            [sku_row(j) for j in range(SKUS_SEEDED)],
        )

    async def upsert(self, rows: list[tuple[str, str, int]]) -> None:
        # executemany() runs every row inside the worker thread: no round trip per row.
        await self._in_transaction(
            "INSERT INTO bench_sku (sku, name, stock) VALUES (?, ?, ?) ON CONFLICT (sku) "
            "DO UPDATE SET name = excluded.name, stock = excluded.stock",
            rows,
        )

    async def bulk_update(self, rows: list[tuple[int, int]]) -> None:
        await self._in_transaction(
            "UPDATE bench_post SET views = ? WHERE id = ?", [(v, i) for i, v in rows]
        )

    async def count(self) -> int:
        rows = await self.conn.execute_fetchall("SELECT COUNT(*) FROM bench_post")
        return int(next(iter(rows))[0])

    async def select_related_20(self, after: int) -> list[tuple[str, str]]:
        rows = await self.conn.execute_fetchall(
            f"SELECT {_JOIN_COLS} FROM bench_post p LEFT OUTER JOIN bench_author a "
            "ON a.id = p.author_id WHERE p.id > ? ORDER BY p.id LIMIT 20",
            (after,),
        )
        posts = [_nested(r) for r in rows]
        for p in posts:
            p["created_at"] = datetime.datetime.fromisoformat(p["created_at"]).replace(tzinfo=_UTC)
        return [(p["title"], p["author"]["name"]) for p in posts]


class RawSQLiteOne(RawSQLite):
    """The SQLite floor: the same single aiosqlite connection as ``raw``."""

    name = "raw1"


def make(backend: str) -> Contender:
    """Return the pooled raw-driver contender for ``backend``."""
    return {"postgres": RawPostgres, "mysql": RawMySQL, "sqlite": RawSQLite}[backend]()


def make_single(backend: str) -> Contender:
    """Return the one-connection raw-driver contender for ``backend`` (the floor)."""
    return {"postgres": RawPostgresOne, "mysql": RawMySQLOne, "sqlite": RawSQLiteOne}[backend]()
